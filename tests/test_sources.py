"""Published worked examples (see worked_examples/SOURCES.md): the verdict of every claim.

Each file transcribes a real source's inputs and printed numbers; the verdicts were
predicted by hand (sympy) when the file was written and are recorded here so that any
change in the checker's judgement shows up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exacttransformer.check import check

EXAMPLES = Path(__file__).parent.parent / "worked_examples"

E, R, T, F, D, W = "exact", "rounded", "truncated", "float", "drift", "wrong"

EXPECTED: dict[str, list[str]] = {
    # Raschka, Build a LLM From Scratch, ch. 3: unscaled attention, PyTorch 4-decimal prints.
    "raschka_ch03_simplified_attention.toml": [E, R, R, E, R, R],
    # Karim, "Illustrated: Self-Attention": weights rounded to one decimal, then reused.
    "karim_illustrated_self_attention.toml": [E, E, E, E, R, T, D, D, R],
    # skiitg: scaled attention; its 0.577 for e/(2+e) = 0.576117… is wrong.
    "skiitg_scaled_dot_product_attention.toml": [E, E, E, E, E, E, W, T],
    # Two-head attention, unscaled, with a head-averaging W_O.
    "yangshiteng_multi_head_attention.toml": [E, E, R, R, E, R, R, E, E, E, E, R, R, R, E],
    # Sinusoidal table with base 100, NumPy 8-decimal print.
    "inhukim_positional_encoding_base100.toml": [E, R, R, R],
    # Layer norm printed with Python's full float64 reprs.
    "ankitath_layer_norm_float64.toml": [E, E, F, E, F, F],
    # Layer norm by hand: each row divided by a printed std that matches no variance.
    "micwill_layer_norm_hello_by_hand.toml": [E, E, R, E, E, E, E, E, W],
    "micwill_layer_norm_expected_output.toml": [E, E, E, E, E, E, W, E, R],
}

NEEDS_VOCAB_SOFTMAX: dict[str, list[str]] = {
    # Softmax over a vocabulary at a temperature (nodes of the full pipeline).
    "nitinkc_softmax_temperature.toml": [R],
    "freeacademy_softmax_steps.toml": [R, R, T],
    "freeacademy_softmax_temperature_T2.toml": [E, W],
}


def _verdicts(name: str) -> list[str]:
    return [c.verdict for c in check(EXAMPLES / name).claims]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_published_example_verdicts(name: str) -> None:
    assert _verdicts(name) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(NEEDS_VOCAB_SOFTMAX))
def test_vocabulary_softmax_examples(name: str) -> None:
    assert _verdicts(name) == NEEDS_VOCAB_SOFTMAX[name]


def test_every_example_is_listed() -> None:
    files = {p.name for p in EXAMPLES.glob("*.toml")} - {"cat.toml"}
    listed = set(EXPECTED) | set(NEEDS_VOCAB_SOFTMAX)
    assert listed <= files
    assert len(listed) >= 5


def test_first_wrong_numbers_are_named() -> None:
    report = check(EXAMPLES / "skiitg_scaled_dot_product_attention.toml")
    first = report.first_wrong()
    assert first is not None
    claim, element = first
    assert claim.claim.name == "weights" and element.claimed == "0.577"
    assert element.correct == "0.576"
