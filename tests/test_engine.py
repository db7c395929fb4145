"""The ``auto`` engine: sympy under a size budget, then the structured engine (issue 12).

The budget counts tree nodes, so the choice is the same on every machine.  Every worked
example stays within it (its outputs stay byte-identical), and a small model whose sympy
trees explode (the one that ran for hours before) moves to the structured engine at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy
from corpus import ISSUE12
from strategies import time_limit

import exacttransformer as et
from exacttransformer.check import check
from exacttransformer.exact.printing import to_sig
from exacttransformer.graph.engine import SYMPY_BUDGET, OutgrewSympy, SizeBudget, choose
from exacttransformer.graph.reference import reference_forward

EXAMPLES = sorted(Path(__file__).resolve().parent.parent.joinpath("worked_examples").glob("*.toml"))

HANG = ISSUE12
"""Before issue 12's size budget, ``auto`` ran this with sympy for hours without a word."""


def test_the_budget_stops_at_the_first_value_over_it() -> None:
    small = sympy.exp(sympy.sqrt(2))
    big = sympy.Add(*[sympy.exp(sympy.sqrt(k)) for k in range(2, 2 + SYMPY_BUDGET)])
    guard = SizeBudget()
    guard(("scores", 0, 0), ((small, small),))  # within: nothing happens
    with pytest.raises(OutgrewSympy) as caught:
        guard(("weights", 1, 0), ((small, big),))
    assert caught.value.key == ("weights", 1, 0)
    assert caught.value.size == SYMPY_BUDGET + 1  # counted up to one past the budget
    SizeBudget(limit=10 ** 9)(("weights", 1, 0), ((big,),))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_worked_example_keeps_the_engine_its_size_gives(path: Path) -> None:
    """No worked example reaches the budget, so each keeps its engine and its output."""
    walk = et.load(path)
    static = choose(walk.config, walk.params, walk.inputs, "auto")
    assert walk.forward().backend == static.name


def test_auto_moves_to_the_structured_engine_when_sympy_trees_explode() -> None:
    walk = et.loads(HANG, "hang.toml")
    assert choose(walk.config, walk.params, walk.inputs, "auto").name == "exact"  # by size
    with time_limit(120):  # a safety net against a hang, not a timing assertion
        trace = walk.forward()
    assert trace.backend == "structured"
    forced = walk.forward(engine="structured")
    for a, b in zip(trace, forced, strict=True):
        assert a.key == b.key
        assert [[to_sig(x, 15) for x in r] for r in a.value] == \
            [[to_sig(x, 15) for x in r] for r in b.value]
    for row in trace.value("probs", None, None):
        assert sum(row) == 1  # exactly


def test_auto_under_the_budget_agrees_with_the_float_reference() -> None:
    walk = et.loads(HANG, "hang.toml")
    with time_limit(120):
        trace = walk.forward()
    ref = reference_forward(walk.config, walk.params, walk.inputs)
    exact = [float(to_sig(p, 17)) for p in trace.value("probs", None, None)[-1]]
    floats = ref[("probs", None, None)][-1]
    # float64 through two pre-norm layers and a softmax: a few hundred roundings, each at most
    # 2^-53 relative; 1e-12 is a generous bound for these well-conditioned probabilities.
    assert all(abs(a - b) <= 1e-12 * abs(a) for a, b in zip(exact, floats, strict=True))


def test_the_checker_replays_on_the_engine_that_made_the_trace() -> None:
    walk = et.loads(HANG, "hang.toml")
    with time_limit(120):
        loss = walk.forward().value("loss", None, None)[0][0]
    printed = to_sig(loss, 4)
    claims = f'\n[[claims]]\nname = "loss"\nvalue = "{printed}"\n'
    with time_limit(120):
        report = check(et.loads(HANG + claims, "hang.toml"))
    assert report.trace.backend == "structured"
    assert [c.verdict for c in report.claims] == ["rounded"]

