"""The float-error audit: float passes (floatpass), proven errors (accuracy), the report and
its command (audit, commands/audit)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import mpmath
import pytest
import sympy
from hypothesis import assume, given
from hypothesis import strategies as st

import exacttransformer as et
from exacttransformer.audit import audit, render_json, render_latex, render_text, rounding_digits
from exacttransformer.cli import main
from exacttransformer.exact.accuracy import Error, digits, relative_error, sci
from exacttransformer.exact.floatformats import FLOAT16, FLOAT32, FLOAT64, round_to
from exacttransformer.graph.floatpass import float_pass
from exacttransformer.graph.reference import reference_forward

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "worked_examples"
SOFTMAX = EXAMPLES / "audit_float16_softmax_scores_near_12.toml"
LAYER_NORM = EXAMPLES / "audit_float16_layer_norm_tiny_variance.toml"
def have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


ARITHMETICS = ["python"] + (["torch"] if have_torch() else [])


# --- proven relative errors -------------------------------------------------------------------

def mp_relative_error(x: sympy.Expr, f: float) -> Fraction:
    """|f - x| / |x| from a 400-bit evaluation (relative error of the result below 2^-300),
    as an exact fraction."""
    with mpmath.workprec(400):
        v = mpmath.mpf(sympy.N(x, 120))
        r = abs(mpmath.mpf(f) - v) / abs(v)
        man, exp = int(r.man), int(r.exp)
    return Fraction(man) * Fraction(2) ** exp


EXPRS = [sympy.sqrt(2), sympy.exp(sympy.Rational(3, 2)) / 7, -sympy.sqrt(3) / 3,
         sympy.erf(sympy.Rational(1, 3)), sympy.Rational(1, 3), sympy.exp(12)]


@given(st.sampled_from(EXPRS), st.sampled_from([FLOAT64, FLOAT32, FLOAT16]),
       st.integers(-3, 3))
def test_relative_error_encloses_a_400_bit_evaluation(x: sympy.Expr, fmt, ulps: int) -> None:
    f = round_to(float(x), fmt)
    f = f + ulps * abs(f) * float(fmt.unit_roundoff) * 2  # a few spacings off, as a float would be
    assume(math.isfinite(f))  # e^12 overflows float16: see test_exact_zero_infinite_and_nan
    e = relative_error(x, f)
    r = mp_relative_error(x, f)
    slack = Fraction(1, 2**300)
    assert e.lo <= r * (1 + slack) and r * (1 - slack) <= e.hi
    if r > 0:
        d = 0
        while r * 10 ** (d + 1) <= 1:
            d += 1
        assert digits(e) == d


def test_exact_zero_infinite_and_nan() -> None:
    assert relative_error(sympy.Rational(1, 2), 0.5) == Error(Fraction(0), Fraction(0))
    assert relative_error(0, 0.0).exact
    assert relative_error(0, 1e-300).infinite and digits(relative_error(0, 1e-300)) == 0
    assert relative_error(sympy.exp(12), math.inf).infinite
    assert sci(relative_error(sympy.exp(12), math.nan)) == "inf"


def test_digits_count_the_decade_of_the_error() -> None:
    assert [digits(Error(Fraction(1, 10**k), Fraction(1, 10**k))) for k in (0, 1, 3)] == [0, 1, 3]
    assert digits(Error(Fraction(2, 10**4), Fraction(2, 10**4))) == 3
    assert sci(Error(Fraction(95, 1000), Fraction(95, 1000))) == "9.5e-02"
    assert sci(Error(Fraction(995, 1000), Fraction(995, 1000))) == "1.0e+00"  # carries into 10^0


# --- the float passes -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cat", str(EXAMPLES / "yangshiteng_multi_head_attention.toml"),
                                  str(EXAMPLES / "journey_positions_rope.toml"),
                                  str(EXAMPLES / "micwill_layer_norm_hello_by_hand.toml")])
def test_python_float64_pass_agrees_with_the_reference(name: str) -> None:
    """Two float64 computations of the same nodes, in different orders of summation (the
    reference rounds each sum once with fsum): within 1e-12 of the node's largest entry."""
    walk = et.load(name)
    trace = walk.forward()
    ours = float_pass(trace, FLOAT64, "python")
    try:
        ref = reference_forward(walk.config, walk.params, walk.inputs)
    except NotImplementedError:  # RoPE: compare with the exact values instead
        ref = {s.key: [[float(sympy.N(x, 30)) for x in r] for r in s.value] for s in trace.steps}
    shared = [k for k in ours if k in ref]
    assert len(shared) >= 5
    for key in shared:
        scale = max((abs(v) for r in ref[key] for v in r), default=0.0) or 1.0
        for ra, rb in zip(ours[key], ref[key], strict=True):
            for a, b in zip(ra, rb, strict=True):
                assert abs(a - b) <= 1e-12 * scale, key


@pytest.mark.parametrize("arithmetic", ARITHMETICS)
def test_every_value_is_a_value_of_the_format(arithmetic: str) -> None:
    trace = et.load("cat").forward()
    for fmt in (FLOAT32, FLOAT16):
        for rows in float_pass(trace, fmt, arithmetic).values():
            for v in (v for r in rows for v in r):
                assert round_to(v, fmt) == v


@pytest.mark.skipif(not have_torch(), reason="torch is not installed")
def test_python_emulation_is_close_to_torch_in_float32() -> None:
    """The two arithmetics round differently only in the order of sums and in exp/erf's last
    bit: within 64 float32 spacings of the node's largest entry on the cat example."""
    trace = et.load("cat").forward()
    a, b = float_pass(trace, FLOAT32, "python"), float_pass(trace, FLOAT32, "torch")
    assert a.keys() == b.keys()
    for key in a:
        scale = max(abs(v) for r in a[key] for v in r) or 1.0
        for ra, rb in zip(a[key], b[key], strict=True):
            for x, y in zip(ra, rb, strict=True):
                assert abs(x - y) <= 64 * float(FLOAT32.unit_roundoff) * scale


# --- the worked examples: float16 fails, float64 does not ----------------------------------

@pytest.mark.parametrize("arithmetic", ARITHMETICS)
def test_float16_softmax_of_scores_near_12_overflows(arithmetic: str) -> None:
    report = audit(et.load(SOFTMAX).forward(), arithmetic=arithmetic)
    exp16 = report.node("exp_scores", 0, 0).cells["float16"]
    assert exp16.digits == 0 and exp16.value == math.inf and exp16.exact.startswith("162754.7")
    assert report.node("weights", 0, 0).cells["float16"].digits == 0
    assert [n.label for n in report.losses("float16")][0] == "exp_scores[layer 0, head 0]"
    for f in ("float64", "float32"):
        assert report.node("weights", 0, 0).cells[f].digits >= (15 if f == "float64" else 6)
    assert report.node("scaled_scores", 0, 0).cells["float16"].worst.exact


@pytest.mark.parametrize("arithmetic", ARITHMETICS)
def test_float16_layer_norm_of_a_tiny_variance_loses_every_digit(arithmetic: str) -> None:
    report = audit(et.load(LAYER_NORM).forward(), arithmetic=arithmetic)
    ln = report.node("ln1", 0, None)
    assert ln.cells["float16"].digits == 0 and ln.cells["bfloat16"].digits == 0
    assert ln.cells["float32"].digits >= 3 and ln.cells["float64"].digits >= 11
    assert report.node("ln1_mean", 0, None).cells["float16"].worst.exact


def test_nodes_filter_and_unknown_names() -> None:
    trace = et.load("cat").forward()
    report = audit(trace, ("float16",), nodes=("weights",), arithmetic="python")
    assert [n.key for n in report.nodes] == [("weights", 0, 0)]
    with pytest.raises(et.InputError, match="did you mean 'weights'"):
        audit(trace, ("float16",), nodes=("wieghts",))
    with pytest.raises(et.InputError, match="unknown dtype"):
        audit(trace, ("float8",))


def test_renderings_agree_with_the_report() -> None:
    report = audit(et.load(SOFTMAX).forward(), ("float32", "float16"), arithmetic="python")
    data = json.loads(render_json(report, "s.toml"))
    assert data["formats"] == ["float32", "float16"]
    node = next(n for n in data["nodes"] if n["name"] == "exp_scores")
    assert node["formats"]["float16"]["worst_digits"] == 0
    assert node["formats"]["float16"]["worst_float"] == "inf"
    assert node["formats"]["float16"]["lost_digits"] == rounding_digits("float16") == 3
    text = render_text(report, "s.toml")
    assert "exp_scores[layer 0, head 0]" in text and "float16:\n  exp_scores" in text
    tex = render_latex(report, "s.toml")
    assert tex.count(r"\addplot") == 2 and r"\end{document}" in tex


# --- the command --------------------------------------------------------------------------------

def test_cli_text_json_and_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(SOFTMAX), "--dtype", "float16", "--node", "weights",
                 "--floats", "python"]) == 0
    out = capsys.readouterr().out
    assert "weights[layer 0, head 0]" in out and "float32" not in out
    assert main(["audit", "cat", "--format", "json", "--dtype", "float32,float16",
                 "--floats", "python"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["formats"] == ["float32", "float16"] and data["file"] == "cat"


def test_cli_bad_input_exits_2_without_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    out = tmp_path / "a.txt"
    assert main(["audit", "cat", "--node", "wieghts", "-o", str(out)]) == 2
    assert "did you mean 'weights'" in capsys.readouterr().err and not out.exists()
    assert main(["audit", "cat", "--dtype", "float8"]) == 2
    assert main(["audit", str(tmp_path / "missing.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_png_needs_matplotlib(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert main(["audit", "cat", "--format", "png", "-o", str(tmp_path / "a.png")]) == 2
        assert "needs matplotlib" in capsys.readouterr().err
        assert not (tmp_path / "a.png").exists()
    else:
        assert main(["audit", "cat", "--format", "png", "-o", str(tmp_path / "a.png")]) == 0
        assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_writes_once_and_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    args = ["audit", "cat", "--format", "json", "--floats", "python", "-o", str(out)]
    assert main(args) == 0 and json.loads(out.read_text())["file"] == "cat"
    assert main(args) == 2
    assert main(args + ["--force"]) == 0


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_document_compiles(tmp_path: Path) -> None:
    # Under a long folder name: the document names the file, wherever it is.
    deep = tmp_path / "a_checkout_in_a_rather_long_folder_name" / "worked_examples_copy"
    deep.mkdir(parents=True)
    model = deep / LAYER_NORM.name
    model.write_bytes(LAYER_NORM.read_bytes())
    out = tmp_path / "audit.tex"
    assert main(["audit", str(model), "--format", "latex", "--floats", "python",
                 "-o", str(out)]) == 0
    run = subprocess.run(["pdflatex", "-halt-on-error", "-interaction=nonstopmode",
                          "-no-shell-escape", out.name], cwd=tmp_path, capture_output=True,
                         timeout=300, check=False)
    log = (tmp_path / "audit.log").read_text(encoding="latin-1")
    assert run.returncode == 0, [ln for ln in log.splitlines() if ln.startswith("!")][:3]
    assert "Overfull" not in log
    assert (tmp_path / "audit.pdf").stat().st_size > 1000
