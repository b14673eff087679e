"""The mutation list (benchmarks/mutations.py) still applies: each snippet occurs exactly once.

The script itself takes minutes and runs only when invoked; this fast guard keeps its list from
rotting as the source changes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("mutations", ROOT / "benchmarks" / "mutations.py")
mutations = importlib.util.module_from_spec(spec)
sys.modules["mutations"] = mutations  # dataclasses look their module up while the class is made
spec.loader.exec_module(mutations)


def test_every_planted_bug_applies_cleanly_to_the_current_source():
    assert mutations.check_applies() == []


def test_the_list_covers_at_least_the_29_kinds_of_the_issue():
    assert len(mutations.MUTATIONS) >= 29
    files = {m.file for m in mutations.MUTATIONS}
    assert {"minigrad/gradcheck.py", "minigrad/optim.py", "minigrad/serialization.py", "models/truncation.py"} <= files
