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

ISSUE16_SOURCES: dict[str, list[str]] = {
    # Binary head (sigmoid + mean BCE) over three samples: torch and hand gradients agree.
    "dsplog_bce_gradients.toml": [R, R, R, R],
    # One sample, x = 6.7: loss and both gradients, by hand and by autograd, 4 decimals.
    "wadhawan_bce_scalar_autograd.toml": [R, R, R, R, R],
    # The same example printed from float32 tensors with 16 digits: only 7 of them are right.
    "imayank_bce_float32_digits.toml": [R, W, W],
    # Query, keys and values as three inputs: the printed weights are not the softmax of the
    # printed scores, and the printed output is not the weights times the values.
    "onpoint_attention_by_numbers.toml": [E, W, W],
    # Weights normalized by their plain sum, and that sum printed as 1.0000.
    "olivermaerz_sum_normalization.toml": [E, R, E],
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


@pytest.mark.parametrize("name", sorted(ISSUE16_SOURCES))
def test_sources_of_the_printed_steps(name: str) -> None:
    """Sources that print the quantities of docs/nodes.md, "Numbers that walkthroughs print
    between the steps" (a binary head, sum normalization, row sums, three attention inputs)."""
    assert _verdicts(name) == ISSUE16_SOURCES[name]


def test_a_float32_result_printed_with_16_digits_is_wrong_not_float() -> None:
    report = check(EXAMPLES / "imayank_bce_float32_digits.toml")
    element = report.claims[1].elements[0]
    assert element.claimed == "6.691762447357178"
    assert element.correct == "6.691763029237441"  # the float64 value; float32 differs at 1e-7


@pytest.mark.parametrize("name", sorted(NEEDS_VOCAB_SOFTMAX))
def test_vocabulary_softmax_examples(name: str) -> None:
    assert _verdicts(name) == NEEDS_VOCAB_SOFTMAX[name]


def test_every_example_is_listed() -> None:
    files = {p.name for p in EXAMPLES.glob("*.toml")} - {"cat.toml"}
    listed = set(EXPECTED) | set(NEEDS_VOCAB_SOFTMAX) | set(ISSUE16_SOURCES)
    assert listed <= files
    assert len(listed) >= 5


def test_first_wrong_numbers_are_named() -> None:
    report = check(EXAMPLES / "skiitg_scaled_dot_product_attention.toml")
    first = report.first_wrong()
    assert first is not None
    claim, element = first
    assert claim.claim.name == "weights" and element.claimed == "0.577"
    assert element.correct == "0.576"
