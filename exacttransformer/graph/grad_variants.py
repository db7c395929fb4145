"""Gradient rules and update nodes for the variants of docs/nodes.md (issue 16).

Layer: orchestration of steps, beside :mod:`.training_nodes`: the quotient rule of
``softmax = "sum"`` and the ``delta.<param>`` / ``new.<param>`` pair.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..exact.backends.base import Backend, Num
from ..exact.linalg import Matrix, shape
from ..steps import attention as A
from ..steps.training import add_all, as_backend, zeros
from ..steps.training import descent_step as step
from .config import ModelConfig
from .grad_kernels import Contribution, grad_key, param_key
from .graph import Node


def sum_normalized_contribution(c: Node, idx: int, config: ModelConfig) -> Contribution:
    """``softmax = "sum"``: ``w = s / S`` with ``S`` the row sum of the unmasked ``s``.

    ``grad.s`` receives ``G / S`` from ``w`` and ``grad.S`` from ``S`` (each 0 where masked);
    ``grad.S = −Σⱼ Gⱼ sⱼ / S²`` over the unmasked keys.
    """
    name = c.key[0]
    g = grad_key(c.key)
    masked = config.mask == "causal" and name in ("weights", "score_sum")

    def allowed(rows: int, cols: int) -> A.Mask:
        return A.causal_mask(rows, cols) if masked else A.full_mask(rows, cols)

    def keep(be: Backend, m: list[list[Num]]) -> Matrix:
        ok = allowed(len(m), len(m[0]))
        return tuple(tuple(x if a else be.integer(0) for x, a in zip(r, o, strict=True))
                     for r, o in zip(m, ok, strict=True))

    if name in ("score_sum", "logit_sum"):
        return Contribution(((g, ("rowscalar",)), (c.inputs[0], ("shape",))),
                            lambda be, v: keep(be, [[r[0]] * shape(v[1])[1] for r in v[0]]),
                            f"{g[0]} (one per row, to every unmasked entry)")
    if idx == 0:
        return Contribution(((g, ("same",)), (c.inputs[1], ("rowscalar",))),
                            lambda be, v: keep(be, [[be.div(x, s[0]) for x in r]
                                                    for r, s in zip(v[0], v[1], strict=True)]),
                            f"{g[0]} / {c.inputs[1][0]}")

    def denominator(be: Backend, v: Sequence[Matrix]) -> Matrix:
        gm, sm, tm = v
        ok = allowed(*shape(sm))
        return tuple((be.div(be.sub(be.integer(0), be.dot(
            [x for x, a in zip(gr, o, strict=True) if a],
            [y for y, a in zip(sr, o, strict=True) if a])), be.mul(t[0], t[0])),)
            for gr, sr, t, o in zip(gm, sm, tm, ok, strict=True))

    return Contribution(((g, ("row",)), (c.inputs[0], ("row",)), (c.inputs[1], ("rowscalar",))),
                        denominator, f"−Σ {g[0]} ⊙ {c.inputs[0][0]} / {c.inputs[1][0]}²")


def update_nodes(name: str, layer: int | None, full: Matrix, lr: Num,
                 with_delta: bool) -> list[Node]:
    """``new.<name>``, and before it ``delta.<name>`` = ``−learning_rate · grad.<name>``
    when a claim names the update (then ``new`` adds the delta, so that the replay carries
    a printed update into the new weight)."""
    grad = param_key(name, layer)
    new = param_key(name, layer, "new")
    rate = ("learning_rate", ((lr,),))
    meaning = f"{name} after one step of gradient descent"
    if not with_delta:
        return [Node(key=new, inputs=(grad,), formula=f"{name} − learning_rate · grad.{name}",
                     fn=lambda be, i, p: step(be, as_backend(be, full), i[0], lr),
                     deps=(("same",),), params=((name, full), rate), meaning=meaning)]
    delta = param_key(name, layer, "delta")
    return [
        Node(key=delta, inputs=(grad,), formula=f"−learning_rate · grad.{name}",
             fn=lambda be, i, p: step(be, zeros(be, *shape(full)), i[0], lr),
             deps=(("same",),), params=(rate,),
             meaning=f"the change of {name} in one step of gradient descent"),
        Node(key=new, inputs=(delta,), formula=f"{name} + delta.{name}",
             fn=lambda be, i, p: add_all(be, [as_backend(be, full), i[0]]),
             deps=(("same",),), params=((name, full),), meaning=meaning),
    ]


def contrib_contribution(c: Node, idx: int) -> Contribution:
    """Per-key contributions (``contrib[i, j·d + c] = w[i, j] v[j, c]``) and ``z`` as their
    sum: ``grad.contrib[i, j·d + c] = G_z[i, c]``, ``grad.w[i, j] = Σ_c G[i, j·d + c] v[j, c]``,
    ``grad.v[j, c] = Σ_i G[i, j·d + c] w[i, j]``."""
    g = grad_key(c.key)
    d = c.deps[0][1]
    if c.key[0] == "z":
        return Contribution(((g, ("mod", d)), (c.inputs[0], ("shape",))),
                            lambda be, v: tuple(tuple(r[j % d] for j in range(shape(v[1])[1]))
                                                for r in v[0]),
                            f"{g[0]} (one copy per key)")
    if idx == 0:
        return Contribution(((g, ("blockof", d)), (c.inputs[1], ("rowT",))),
                            lambda be, v: tuple(tuple(be.dot(gr[j * d:(j + 1) * d], vr)
                                                      for j, vr in enumerate(v[1]))
                                                for gr in v[0]),
                            f"Σ_c {g[0]}[i, j·d + c] v[j, c]")
    return Contribution(((g, ("blockcol", d)), (c.inputs[0], ("colT",))),
                        lambda be, v: tuple(tuple(be.dot([gr[j * d + k] for gr in v[0]],
                                                         [wr[j] for wr in v[1]])
                                                  for k in range(d))
                                            for j in range(len(v[1][0]))),
                        f"Σ_i {g[0]}[i, j·d + c] weights[i, j]")


def binary_contribution(c: Node) -> Contribution:
    """The binary head: ``bce = −mean(y log p + (1 − y) log(1 − p))`` gives
    ``grad.sigmoid = (p − y) / (N p (1 − p))``, and ``p = sigmoid(ℓ)`` gives
    ``grad.logits = G ⊙ p (1 − p)`` (their product is ``(p − y) / N``)."""
    g = grad_key(c.key)
    if c.key[0] == "sigmoid":
        return Contribution(((g, ("same",)), (c.key, ("same",))),
                            lambda be, v: tuple(tuple(be.mul(a, be.mul(p, be.sub(be.integer(1), p)))
                                                      for a, p in zip(ga, pa, strict=True))
                                                for ga, pa in zip(v[0], v[1], strict=True)),
                            f"{g[0]} ⊙ sigmoid (1 − sigmoid)")
    labels = dict(c.params)["labels"]
    assert labels is not None

    def fn(be: Backend, v: Sequence[Matrix]) -> Matrix:
        p = v[0]
        n = be.integer(sum(len(r) for r in p))
        one = be.integer(1)
        return tuple(tuple(be.div(be.sub(q, be.const(y)), be.mul(n, be.mul(q, be.sub(one, q))))
                           for q, y in zip(pr, yr, strict=True))
                     for pr, yr in zip(p, labels, strict=True))

    # The loss is where backpropagation starts: its own gradient is 1, not a node.
    return Contribution(((c.inputs[0], ("same",)),), fn,
                        "(sigmoid − labels) / (N sigmoid (1 − sigmoid))")
