"""The README's promises: its test command is the one CI runs, its code example runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_test_command_the_readme_gives():
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"TEST_COMMAND='(.*)'", ci).group(1)
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    assert blocks[1] == command


def test_readme_first_command_runs_the_demo():
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    assert blocks[0].endswith("minigrad demo")


def test_readme_reverse_mode_example_runs(capsys):
    code = re.search(r"```python\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    assert "tanh" in capsys.readouterr().out


def test_readme_bptt_and_picture_examples_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(blocks[1], "README.md", "exec"), scope)  # the LSTM with truncate=10
    assert scope["rnn"].weight_hh_l1.grad is not None
    viz = __import__("viz")
    scope["viz"] = viz
    dot_only = blocks[2].replace('"rnn.svg"', '"rnn.dot"')  # .dot needs no Graphviz binary
    exec(compile(dot_only, "README.md", "exec"), scope)
    assert "digraph" in (tmp_path / "rnn.dot").read_text()
