"""The checker: the seven verdicts, the replay, reports and exit statuses (SPEC §4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

import exacttransformer as et
from exacttransformer.check import Printed, check
from exacttransformer.cli import main
from exacttransformer.errors import ExactTransformerError, InputError

ROOT = Path(__file__).parent.parent


def verdicts(text: str) -> list[str]:
    return [e.verdict for c in check(et.loads(text, "t.toml")).claims for e in c.elements]


# --- the seed ---------------------------------------------------------------------------

CAT_VERDICTS = {
    "x": "exact", "q": "exact", "k": "exact", "v": "exact", "scores": "exact",
    "sqrt_dk": "rounded", "scaled_scores": "rounded", "exp_scores": "drift",
    "exp_sum": "drift", "weights": "rounded", "z": "exact", "attn_out": "exact",
    "resid_mid": "exact", "ffn_pre": "exact", "ffn_act": "exact", "ffn_out": "exact",
    "out": "exact",
}


def test_cat_claims_get_the_expected_verdicts() -> None:
    report = check(ROOT / "worked_examples" / "cat.toml")
    got = {c.claim.name: c.verdict for c in report.claims}
    assert got == CAT_VERDICTS
    assert report.exit_status() == 0 and report.exit_status(strict=True) == 1


def test_cat_drift_rests_on_the_printed_numbers() -> None:
    report = check("cat")
    exp_scores = next(c for c in report.claims if c.claim.name == "exp_scores")
    first = exp_scores.elements[0]
    assert first.claimed == "8.33" and first.correct == "8.34"
    assert first.exact == sympy.exp(3 * sympy.sqrt(2) / 2)
    assert first.replayed == sympy.exp(sympy.Rational(212, 100))
    assert exp_scores.rests_on_names == ("scaled_scores",)
    exp_sum = next(c for c in report.claims if c.claim.name == "exp_sum")
    assert exp_sum.elements[0].replayed == sympy.Rational(1653, 100)
    assert exp_sum.elements[0].correct == "16.57"
    assert [r[1] for r in exp_sum.elements[0].rests_on] == [(1, 0), (1, 1), (1, 2)]


def test_cat_json_matches_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(ROOT / "worked_examples" / "cat.toml"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"file", "summary", "claims"}
    assert data["summary"] == {"exact": 45, "rounded": 7, "truncated": 0, "float": 0,
                               "drift": 4, "carried": 0, "wrong": 0}
    exp_scores = next(c for c in data["claims"] if c["name"] == "exp_scores")
    assert exp_scores["verdict"] == "drift" and exp_scores["from"] == ["scaled_scores"]
    assert (exp_scores["token"], exp_scores["layer"], exp_scores["head"]) == ("cat", 0, 0)
    el = exp_scores["elements"][0]
    assert el["index"] == [1, 0] and el["claimed"] == "8.33"
    assert el["exact"] == "exp(3*sqrt(2)/2)"
    assert el["approx"] == "8.34214471647680"
    assert el["replayed"].startswith("8.33113")
    assert el["verdict"] == "drift"


def test_cat_text_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "cat"]) == 0
    out = capsys.readouterr().out
    assert "~ drift" in out and "replayed from the printed scaled_scores[cat, 0] = 2.12" in out
    assert "No wrong number." in out
    assert main(["check", "cat", "--format", "markdown", "--strict"]) == 1
    md = capsys.readouterr().out
    assert md.startswith("# Errata check") and "| 11 | exp\\_scores\\[cat\\] | 8\\.33 |" in md


# --- each verdict on a case small enough to check by hand -------------------------------

SCORES = """
[model]
scale = "none"
[input]
tokens = ["a"]
q = [["{q}"]]
k = [[1]]
v = [[1]]
"""


def claims(*entries: tuple[str, str]) -> str:
    return "".join(f'[[claims]]\nname = "{n}"\nvalue = "{v}"\n' for n, v in entries)


@pytest.mark.parametrize(
    ("q", "name", "printed", "verdict"),
    [
        ("1/2", "scores", "0.5", "exact"),
        ("3*sqrt(2)/2", "scores", "3*sqrt(2)/2", "exact"),
        ("7", "scores", "7", "exact"),
        ("3/sqrt(2)", "exp_scores", "8.34", "rounded"),
        ("-19/10", "exp_scores", "0.150", "rounded"),
        ("-19/10", "exp_scores", "0.149", "truncated"),
        ("0.58", "scores", "0.5799999999999998", "float"),
        ("0.58", "scores", "0.5799999999", "wrong"),
        ("3/sqrt(2)", "exp_scores", "8.3", "rounded"),
        ("3/sqrt(2)", "exp_scores", "8.343", "wrong"),
        ("1/3", "scores", "0.33", "rounded"),
        ("1/3", "scores", "3.3e-1", "rounded"),
        ("1/3", "scores", "3.4e-1", "wrong"),
        ("-1/3", "scores", "-0.34", "wrong"),
        ("-1/3", "scores", "-0.333", "rounded"),
        ("-2/3", "scores", "-0.66", "truncated"),
        ("1/8", "scores", "0.13", "rounded"),
        ("1/8", "scores", "0.12", "rounded"),  # exactly half a unit away: within
        ("16.6", "scores", "17", "rounded"),
        ("16.6", "scores", "16.", "truncated"),
    ],
)
def test_single_verdicts(q: str, name: str, printed: str, verdict: str) -> None:
    assert verdicts(SCORES.format(q=q) + claims((name, printed))) == [verdict]


def test_drift_needs_the_printed_inputs() -> None:
    text = SCORES.format(q="3/sqrt(2)") + claims(("scores", "2.12"), ("exp_scores", "8.33"))
    assert verdicts(text) == ["rounded", "drift"]
    # Without the printed 2.12 there is nothing to drift from: 8.33 is simply wrong.
    assert verdicts(SCORES.format(q="3/sqrt(2)") + claims(("exp_scores", "8.33"))) == ["wrong"]


def test_carried_errors_name_the_first_wrong_number() -> None:
    text = SCORES.format(q="3") + claims(("scores", "3.5"), ("exp_scores", "33.12"),
                                         ("exp_sum", "33.1"), ("weights", "1"))
    report = check(et.loads(text, "t.toml"))
    assert [c.verdict for c in report.claims] == ["wrong", "carried", "carried", "exact"]
    first = report.first_wrong()
    assert first is not None and first[1].claimed == "3.5"
    assert report.inheritors(*first) == 2
    assert report.claims[2].elements[0].origin == (("scores", 0, 0), (0, 0))
    assert report.exit_status() == 1
    from exacttransformer.render.report import render_text

    assert "First wrong number: scores = 3.5" in render_text(report)
    assert "2 later numbers inherit it" in render_text(report)


def test_a_wrong_step_from_good_inputs_is_wrong_not_carried() -> None:
    text = SCORES.format(q="3") + claims(("scores", "3"), ("exp_scores", "21.0"))
    assert verdicts(text) == ["exact", "wrong"]


def test_the_later_claim_wins_in_the_replay() -> None:
    text = SCORES.format(q="3/sqrt(2)") + claims(("scores", "2.1213"), ("scores", "2.1"),
                                                 ("exp_scores", "8.17"))
    assert verdicts(text) == ["rounded", "rounded", "drift"]


def test_printed_precision() -> None:
    assert Printed.parse("0.50").unit == sympy.Rational(1, 100)
    assert Printed.parse("0.").unit == 1
    assert Printed.parse("8.3e-3").unit == sympy.Rational(1, 10000)
    assert Printed.parse("8.3e-3").significant == 2
    assert Printed.parse("16").unit == 1
    assert Printed.parse("-0.25").value == sympy.Rational(-1, 4)
    assert Printed.parse("3*sqrt(2)/2").unit is None
    assert Printed.parse("0.5799999999999998").significant == 16


def test_check_reads_files_paths_and_walkthroughs() -> None:
    path = ROOT / "worked_examples" / "cat.toml"
    assert check(path).summary() == check(str(path)).summary() == check(et.load(path)).summary()


def test_whole_matrix_claims_and_multi_layer_claims() -> None:
    text = SCORES.format(q="2") + '[[claims]]\nname = "scores"\nvalue = [["2"]]\n'
    assert verdicts(text) == ["exact"]


# --- bad input: exit 2, one message naming file, claim number and key -------------------

BAD = [
    ('[[claims]]\nname = "weigths"\nvalue = "1"\n', "claims[0].name", "did you mean 'weights'"),
    ('[[claims]]\nname = "weights"\ntoken = "dog"\nvalue = "1"\n', "claims[0].token", "'dog'"),
    ('[[claims]]\nname = "weights"\nlayer = 3\nvalue = "1"\n', "claims[0].layer", "out of range"),
    ('[[claims]]\nname = "weights"\nhead = 1\nvalue = "1"\n', "claims[0].head", "out of range"),
    ('[[claims]]\nname = "weights"\nvalue = ["1", "2"]\n', "claims[0].value", "2 entries"),
    ('[[claims]]\nname = "scores"\nvalue = "1..2"\n', "claims[0].value", "'1..2'"),
    ('[[claims]]\nname = "scores"\nvalue = "0,5"\n', "claims[0].value", "'0,5'"),
    ('[[claims]]\nname = "scores"\nvalue = "__import__(\'os\').system(\'echo hacked\')"\n',
     "claims[0].value", "not a number"),
    ('[[claims]]\nname = "logits"\nvalue = "1"\n', "claims[0].name", "not computed"),
    ('[[claims]]\nname = "scores"\nvalue = true\n', "claims[0].value", "expected a printed"),
]


@pytest.mark.parametrize(("claim", "key", "words"), BAD)
def test_bad_claims_exit_2(claim: str, key: str, words: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SCORES.format(q="1") + claim)
    assert main(["check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}: {key}: " in captured.err and words in captured.err
    assert "Traceback" not in captured.err and len(captured.err.strip().splitlines()) == 1


def test_no_claims_says_so_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "none.toml"
    path.write_text(SCORES.format(q="1"))
    assert main(["check", str(path)]) == 0
    assert "no [[claims]]" in capsys.readouterr().out


# --- fuzzing: nothing but our own error escapes ----------------------------------------


@given(st.text(max_size=200))
def test_fuzz_number_strings(text: str) -> None:
    try:
        Printed.parse(text)
    except ExactTransformerError:
        pass


@given(st.text(max_size=400))
def test_fuzz_toml_text(text: str) -> None:
    try:
        et.loads(text, "fuzz.toml")
    except ExactTransformerError:
        pass


toml_scalars = st.one_of(st.integers(-5, 5), st.sampled_from(["1/2", "x", "1e999999", "9**9**9",
                                                                 "sqrt(2)", "", "0.50"]),
                         st.booleans(), st.floats(allow_nan=True))
toml_values = st.recursive(toml_scalars, lambda s: st.lists(s, max_size=3), max_leaves=9)


@given(st.dictionaries(st.sampled_from(["X", "q", "k", "v", "tokens", "scores", "x_kv", "bogus"]),
                       toml_values, max_size=4),
       st.dictionaries(st.sampled_from(["W_Q", "W_K", "W_V", "W_O", "b_Q", "W1", "W2"]),
                       toml_values, max_size=4),
       st.dictionaries(st.sampled_from(["heads", "mask", "scale", "norm", "norm_eps"]),
                       toml_scalars, max_size=3))
def test_fuzz_structured_files(inp: dict, weights: dict, model: dict) -> None:
    from exacttransformer.io.files import _Loader

    try:
        walk = _Loader("fuzz.toml").walkthrough({"input": inp, "weights": weights, "model": model})
        walk.forward()
    except ExactTransformerError:
        pass


def test_errors_carry_the_file_name() -> None:
    with pytest.raises(InputError, match=r"^t\.toml: claims\[0\]\.value"):
        check(et.loads(SCORES.format(q="1") + claims(("scores", "1..2")), "t.toml"))
