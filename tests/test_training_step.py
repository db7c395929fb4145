"""The worked training step: new weights exactly ``param − rate · grad``, and the loss after
the step proven smaller (a certified sign of the exact difference, not a float)."""

from __future__ import annotations

from pathlib import Path

import exacttransformer as et
from exacttransformer import training as TR
from exacttransformer.numbers import sign

STEP = Path(__file__).parent.parent / "worked_examples" / "journey_training_step.toml"


def test_new_weights_are_the_old_minus_rate_times_gradient_exactly() -> None:
    walk = et.load(STEP)
    trace = walk.forward()
    rate = walk.config.learning_rate
    checked = 0
    for step in trace:
        if not step.name.startswith("new."):
            continue
        grad = trace.find("grad." + step.name[4:], step.layer, step.head)
        assert grad is not None
        old = walk.params.layers[step.layer] if step.layer is not None else walk.params
        before = getattr(old, step.name[4:])
        for row_new, row_old, row_grad in zip(step.value, before, grad.value, strict=True):
            for a, b, g in zip(row_new, row_old, row_grad, strict=True):
                assert a == b - rate * g
                checked += 1
    assert checked >= 40


def test_the_worked_step_makes_the_loss_smaller_proven() -> None:
    walk = et.load(STEP)
    trace = walk.forward()
    assert sign(TR.loss_change(walk.config, walk.params, walk.inputs, trace)) == -1
