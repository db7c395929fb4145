"""The stress corpus of issue 12 (tests/corpus.py): no small model hangs, and both exact
engines give the same certified digits.

Every corpus model runs the whole walkthrough (all nodes, JSON, 15 digits).  Two kinds of
assertion, never mixed: the certified decimals of the two engines are *identical strings*
(both are proven, so a single differing digit is a bug); the decimals and the float64
reference agree within :data:`corpus.FLOAT_TOLERANCE` (the reference rounds).

:data:`SAFETY` and the hypothesis deadline are safety nets that turn a hang into a failure
instead of a blocked CI; they are not timing assertions (speed is measured by
bench/bench_corpus.py, against ``import sympy``).
"""

from __future__ import annotations

import re

import pytest
from corpus import (
    CORPUS,
    DESIGN,
    FACTORS,
    ISSUE12,
    CorpusModel,
    covering_design,
    digit_differences,
    model_text,
    reference_differences,
    uncovered_pairs,
    walkthrough,
)
from hypothesis import given, note, reject
from strategies import _OverTime, budget, journeys, time_limit

from exacttransformer.errors import ComputationError
from exacttransformer.exact import lazy as L
from exacttransformer.io.files import loads

SAFETY = 120.0
"""Seconds after which a corpus model's run is stopped and the test fails: far above the
goal (a few seconds), far below "hangs for hours"."""

DEADLINE = 60.0
"""The property's per-example safety net, in seconds."""

CANNOT = r"cannot (decide the sign|certify 15 significant digits)"
"""The engine's refusal: which of the two comes first can depend on the configuration (with
python-flint, ball arithmetic settles some signs that fixed-point intervals leave open)."""

REFUSED = {"m02": CANNOT, "m07": CANNOT, "m17": CANNOT, "m23": CANNOT}
"""Corpus models the structured engine stops on, with a message naming what it cannot settle
(and, on the command line, the node): never a hang, a traceback or a guess.

- m02, m17, m23 have no layer norm and two or three layers: logits reach the thousands,
  probabilities e^-15000, and a comparison or a rounding then depends on a difference below
  2^-8192 that the enclosures do not resolve (m17's z is 5417733/8192 · (1 − e^-18708…),
  a hair below a 15-digit rounding tie).
- m07 has a training step whose gradient through a layer norm is an exact 0 that the
  engine's algebra does not prove (a difference of two kept-whole sums whose expansion
  exceeds 200,000 terms).

Found by this corpus, with three more that are fixed: RoPE under cross-attention (a
ValueError), exponentials of huge intervals (OverflowError, MemoryError) and a certification
that tried sympy's simplify on an e^-655 for minutes."""

NAMES = [m.name for m in CORPUS]


def corpus_params() -> list:
    """The corpus as pytest parameters, without the models the engine refuses (tested apart)."""
    return [pytest.param(m, id=m.name) for m in CORPUS if m.name not in REFUSED]


def light(m: CorpusModel) -> bool:
    """One layer, no norm, ReLU or no activation, no sinusoidal positions, no training step:
    the models whose sympy trees stay small, so ``--engine sympy`` runs today (measured: on
    the corpus, sympy finishes within 20 s on these and on one more, m26, and on no other)."""
    o = m.options
    return bool(o) and (o["layers"], o["norm"], o["final_norm"], o["training"]) == (
        "1", "none", "no", "no") and o["activation"] in ("relu", "none") and o[
        "positional"] in ("none", "learned")


LIGHT = [m for m in CORPUS if light(m)]


def run(m: CorpusModel, engine: str, seconds: float = SAFETY) -> tuple[str, dict]:
    """``walkthrough --format json --digits 15 --engine ENGINE``, failing (not hanging)
    after ``seconds``."""
    try:
        with time_limit(seconds):
            return walkthrough(m, engine)
    except _OverTime:
        pytest.fail(f"{m.name} ({m.summary()}) under --engine {engine}: over {seconds:g} s")


def assert_matches_reference(m: CorpusModel, out: dict) -> None:
    compared, problems = reference_differences(m, out)
    assert problems == [], f"{m.name} ({m.summary()}): {problems[:5]}"
    if m.options.get("positional") != "rope":
        assert compared > 0


# --- the corpus itself -------------------------------------------------------------------------

def test_every_pair_of_option_values_is_in_some_model() -> None:
    assert uncovered_pairs(DESIGN) == []
    for name, values in FACTORS.items():
        assert {row[name] for row in DESIGN} == set(values), name
    assert 30 <= len(CORPUS) <= 60


def test_the_corpus_is_the_same_on_every_run() -> None:
    """Built from fixed tables and a fixed sequence: building it again gives the same texts,
    and different rows give different models."""
    assert covering_design() == DESIGN
    texts = [model_text(i, row) for i, row in enumerate(DESIGN)]
    assert texts == [m.text for m in CORPUS[1:]]
    assert len(set(texts)) == len(texts)


def test_issue_12s_model_leads_the_corpus() -> None:
    assert CORPUS[0].text == ISSUE12
    w = loads(ISSUE12, "issue12.toml")
    c = w.config
    assert (c.norm, c.activation, c.positional, c.mask, c.heads, c.tie_embeddings) == (
        "pre", "gelu", "sinusoidal", "causal", 2, True)
    assert len(w.params.layers) == 2 and w.inputs.target is not None


@pytest.mark.parametrize("m", CORPUS[1:], ids=NAMES[1:])
def test_each_model_file_holds_the_options_it_was_built_from(m: CorpusModel) -> None:
    o = m.options
    w = loads(m.text, f"{m.name}.toml")
    c, p, i = w.config, w.params, w.inputs
    assert (c.norm, c.activation, c.positional, c.mask, c.softmax) == (
        o["norm"], o["activation"], o["positional"], o["mask"], o["softmax"])
    assert (len(p.layers), c.heads, len(i.tokens), len(p.E[0])) == (
        int(o["layers"]), int(o["heads"]), int(o["tokens"]), int(o["d_model"]))
    assert c.tie_embeddings == (o["unembed"] == "tied") and (p.W_U is not None) == (o["unembed"] == "W_U")
    assert c.final_norm == (o["final_norm"] == "yes")
    assert (i.target is not None) == (o["training"] == "yes")
    assert (("x_kv", None, None) in i.given) == (o["cross"] == "yes")
    d = i.decoding
    assert (d is not None and d.steps == 2 and d.kv_cache and d.beam_width is None) == (
        o["decoding"] == "generate")
    assert (d is not None and d.beam_width == 2) == (o["decoding"] == "beam")
    assert (p.layers[0].b_Q is not None) == (o["biases"] == "yes")


# --- every model, whole walkthrough ----------------------------------------------------------

@pytest.mark.parametrize("m", LIGHT, ids=[m.name for m in LIGHT])
def test_where_sympy_runs_today_both_engines_give_the_same_digits(m: CorpusModel) -> None:
    """Every certified digit of every node, ``--engine sympy`` against ``--engine structured``
    (the auto test below does this for every model sympy finishes once issue 12 lands)."""
    _, sympy_out = run(m, "sympy")
    _, structured = run(m, "structured")
    assert digit_differences(sympy_out, structured) == []
    assert_matches_reference(m, sympy_out)


def test_the_light_models_are_a_handful() -> None:
    assert 4 <= len(LIGHT) <= 10


@pytest.mark.parametrize("m", corpus_params())
def test_auto_runs_the_whole_walkthrough_with_the_structured_engines_digits(m: CorpusModel) -> None:
    """``auto`` finishes; where it ran sympy, every certified digit of every node is the
    structured engine's; and the decimals agree with the float reference."""
    backend, out = run(m, "auto")
    assert backend in ("exact", "structured")
    if backend == "exact":
        _, structured = run(m, "structured")
        assert digit_differences(out, structured) == []
    assert_matches_reference(m, out)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_auto_refuses_what_it_cannot_settle_with_a_message(name: str) -> None:
    """Refused with a message, never left running; with python-flint, whose balls keep a
    relative precision, m23 is settled instead, and then its digits match the reference."""
    m = next(c for c in CORPUS if c.name == name)
    try:
        _, out = run(m, "auto")
    except ComputationError as exc:
        assert re.search(REFUSED[name], str(exc)), str(exc)
        return
    assert L.HAVE_FLINT and name == "m23"
    assert_matches_reference(m, out)


# --- the property over whole journeys ------------------------------------------------------

def journey(m: CorpusModel, engine: str) -> dict:
    """A random journey's walkthrough under ``engine``, within the example's deadline and
    the float reference's tolerance; its JSON."""
    note(m.summary())
    note(m.text)
    _, out = run(m, engine, DEADLINE)
    assert_matches_reference(m, out)
    return out


@pytest.mark.skip(reason="issue 12, open: this property found two journeys it fails on, "
                         "a post-norm two-layer model of width 2 with a final norm that runs "
                         "past the 60 s safety net under auto, and one whose final norm "
                         "(variance near eps) the float64 reference misses by 2e-6 relative, "
                         "beyond the fixed tolerance here")
@budget(8)
@given(journeys())
def test_auto_finishes_and_agrees_with_the_structured_engine_and_the_reference(
        m: CorpusModel) -> None:
    try:
        out = journey(m, "auto")
    except ComputationError as exc:  # refused with a message, as REFUSED above: not a pass
        note(f"refused: {exc}")
        reject()
    _, structured = run(m, "structured", DEADLINE)
    assert digit_differences(out, structured) == []


@budget(8)
@given(journeys())
def test_the_structured_engine_finishes_a_journey_and_matches_the_float_reference(
        m: CorpusModel) -> None:
    journey(m, "structured")
