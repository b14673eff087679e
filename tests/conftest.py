"""Shared test settings.

Hypothesis runs deterministically (``derandomize=True``: the same examples on
every run and every machine, so CI never flakes) with a modest number of
examples so the whole suite stays fast. Run more locally with
``HYPOTHESIS_PROFILE=thorough pytest``.
"""

import os

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
