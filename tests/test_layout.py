"""The layers of the project: imports run one way, minigrad <- models <- viz (and the command on top).

Each import check runs in a fresh Python, because this test process has long since imported
everything. Importing a package must also leave the environment alone: a library that sets,
say, OMP_NUM_THREADS when imported changes the program that imported it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [("minigrad", ("models", "viz")), ("models", ("viz",))]  # (package, the packages above it)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

IMPORT_ALL = """
import importlib, json, os, pkgutil, sys

def import_all(name):
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(info.name)
"""


def _fresh_python(code: str, env: dict[str, str] | None = None) -> object:
    """Run ``code`` in a new interpreter started in the checkout; the JSON it prints last."""
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


def _loaded(imports: str, packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` in sys.modules after ``imports`` ran in a fresh Python."""
    names = _fresh_python(IMPORT_ALL + imports + "\nprint(json.dumps(sorted(sys.modules)))")
    return [n for n in names if n.split(".")[0] in packages]


@pytest.mark.parametrize("package,above", LAYERS)
def test_importing_a_package_loads_nothing_above_it(package, above):
    assert _loaded(f"import {package}", above) == []
    assert _loaded(f"import_all({package!r})", above) == []  # every module of it, not only its __init__


def test_the_command_on_top_loads_every_layer_so_the_check_above_can_see_them():
    loaded = _loaded("import viz.cli", ("minigrad", "models", "viz"))
    assert {"minigrad", "models", "viz", "viz.cli"} <= set(loaded)


def test_importing_minigrad_models_and_viz_changes_no_environment_variable():
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}  # unset, so a setdefault of them shows
    code = IMPORT_ALL + (
        "before = dict(os.environ)\n"
        "for name in ('minigrad', 'models', 'viz'):\n"
        "    import_all(name)\n"
        "changed = {k: [before.get(k), os.environ.get(k)] for k in before.keys() | os.environ.keys()\n"
        "           if before.get(k) != os.environ.get(k)}\n"
        "print(json.dumps(changed))"
    )
    assert _fresh_python(code, env) == {}


def _upward_imports(package: str, above: tuple[str, ...]) -> list[str]:
    """Every import in ``package/`` of a package above it, wherever it stands (inside functions too)."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:  # relative imports stay in the package
                names = [node.module or ""]
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names = [str(node.args[0].value)]
            else:
                continue
            found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in above]
    return found


@pytest.mark.parametrize("package,above", LAYERS)
def test_no_module_imports_a_package_above_its_own_not_even_inside_a_function(package, above):
    assert _upward_imports(package, above) == []
