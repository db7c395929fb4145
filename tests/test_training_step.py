"""The worked training step: new weights exactly ``param − rate · grad``, and gradients that
agree with finite differences of the float reference (the proven loss decrease is in
test_training.py)."""

from __future__ import annotations

from pathlib import Path

import exacttransformer as et

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


def reference_loss(walk: object, params: object) -> float:
    """Cross-entropy of the target from the float64 reference's logits (written here, from
    the reference's floats: log-sum-exp of the last row minus the target's logit)."""
    import math

    from exacttransformer.graph.reference import reference_forward

    logits = reference_forward(walk.config, params, walk.inputs)[("logits", None, None)]  # type: ignore[attr-defined]
    row = logits[-1]
    top = max(row)
    return math.log(math.fsum(math.exp(x - top) for x in row)) - (row[walk.inputs.target] - top)  # type: ignore[attr-defined]


def test_gradients_match_finite_differences_of_the_float_reference() -> None:
    from dataclasses import replace

    import sympy

    from exacttransformer.exact.printing import to_float

    walk = et.load(STEP)
    trace = walk.forward()
    h = sympy.Rational(1, 10**6)
    checked = 0
    for layer, lp in enumerate(walk.params.layers):
        for name in ("W_Q", "W_K", "W_V", "W_O", "W1", "W2"):
            w = getattr(lp, name)
            grad = trace.value(f"grad.{name}", layer, None)
            for i, row in enumerate(w):
                for j in range(len(row)):
                    def moved(delta: sympy.Rational, i: int = i, j: int = j, w: tuple = w,
                              name: str = name, layer: int = layer) -> float:
                        new = tuple(tuple(x + (delta if (r, c) == (i, j) else 0) for c, x in enumerate(rw))
                                    for r, rw in enumerate(w))
                        layers = list(walk.params.layers)
                        layers[layer] = replace(layers[layer], **{name: new})
                        return reference_loss(walk, replace(walk.params, layers=tuple(layers)))
                    fd = (moved(h) - moved(-h)) / (2 * 1e-6)
                    exact = to_float(grad[i][j])
                    assert abs(fd - exact) <= 1e-5 * max(1.0, abs(exact)), (name, i, j, fd, exact)
                    checked += 1
    assert checked >= 30
