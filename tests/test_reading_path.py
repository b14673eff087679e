"""The reading path stays short: tensor.py is the lesson, machinery lives elsewhere.

    python tests/test_reading_path.py        # prints the counts these tests check

A line of code is a line holding a Python token other than a comment, where docstrings
(a string literal standing alone as a statement) do not count.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

MINIGRAD = Path(__file__).resolve().parents[1] / "minigrad"
CORE_BUDGET, BACKWARD_BUDGET = 300, 40


def code_lines(source: str, first: int = 1, last: int | None = None) -> int:
    """Lines first..last of ``source`` that hold code (no blanks, comments or docstrings)."""
    tree = ast.parse(source)
    docstring_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            docstring_lines.update(range(node.lineno, node.end_lineno + 1))
    lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in skip:
            lines.update(n for n in range(tok.start[0], tok.end[0] + 1) if n not in docstring_lines)
    last = last or len(source.splitlines())
    return sum(1 for n in lines if first <= n <= last)


def function_lines(source: str, name: str) -> int:
    """Code lines of the module-level function ``name``, its ``def`` line included."""
    fn = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name)
    return code_lines(source, fn.lineno, fn.end_lineno)


def test_the_line_counter_skips_comments_blank_lines_and_docstrings():
    src = 'def f(x):\n    """Doc\n    string."""\n    # a comment\n\n    return (x +\n            1)  # trailing\n'
    assert code_lines(src) == 3  # def, and the return spread over two lines
    assert function_lines(src, "f") == 3


def test_tensor_py_the_core_of_the_reading_path_stays_within_its_budget():
    n = code_lines((MINIGRAD / "tensor.py").read_text())
    assert n <= CORE_BUDGET, f"minigrad/tensor.py has {n} lines of code (budget {CORE_BUDGET}): move machinery out"


def test_the_backward_walk_reads_in_one_screen():
    n = function_lines((MINIGRAD / "tensor.py").read_text(), "backward")
    assert n <= BACKWARD_BUDGET, f"backward() has {n} lines of code (budget {BACKWARD_BUDGET})"


if __name__ == "__main__":
    for path in sorted(MINIGRAD.glob("*.py")):
        print(f"{path.name:20s} {code_lines(path.read_text()):4d} lines of code")
    print(f"backward()           {function_lines((MINIGRAD / 'tensor.py').read_text(), 'backward'):4d} lines of code")
