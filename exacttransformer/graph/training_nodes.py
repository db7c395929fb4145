"""One training step, exactly: the loss, every gradient by hand-written reverse-mode rules,
and the parameters after one step of gradient descent.

Layer: orchestration of steps.  ``loss = −log probs[last token, target]`` (cross-entropy:
the target is the token that should follow the last input token).  Backpropagation is
written as more nodes of the same graph, named ``grad.<node>`` (the gradient of ``loss``
with respect to every entry of that node) and ``grad.<param>``; ``new.<param>`` is
``param − learning_rate · grad.<param>``.  Each gradient node is a pure function of
forward values and the gradients of the nodes that read it: a node read by several others
(``x`` feeds attention and the residual) sums their contributions, as the chain rule says.

The local rules (``G`` is the gradient arriving from the consumer):

==================  =======================================================================
``y = x W + b``     ``grad.x = G Wᵀ``, ``grad.W = xᵀ G``, ``grad.b`` = column sums of ``G``
``y = a + b``       both inputs receive ``G``
``scores = q kᵀ``   ``grad.q = G k``, ``grad.k = Gᵀ q``
``exp``             ``G ⊙ exp`` (0 where masked)
``w = e / S``       ``grad.e = G / S`` and ``grad.S = −Σⱼ Gⱼ eⱼ / S²`` (row by row)
``z = w v``         ``grad.w = G vᵀ``, ``grad.v = wᵀ G``
``shifted``         ``G`` unchanged: a softmax's input gradient sums to 0 along each row,
                    so the subtracted row maximum receives exactly 0
layer norm          the three named steps each by their own rule (mean: ``G/d``; variance:
                    ``2G(x − μ)/d``; output: ``G γ/σ`` to ``x``, ``−Σ G γ/σ`` to the mean,
                    ``−½ Σ G γ (x − μ) σ⁻³`` to the variance).  The variance's own
                    dependence on the mean contributes ``Σ(x − μ) = 0`` exactly.
activations         ``G ⊙ f′(ffn_pre)``; ReLU′(0) = 0 as in PyTorch
RoPE                the inverse rotation of ``G``
``loss``            ``grad.probs`` is ``−1/p`` at ``[last, target]`` and 0 elsewhere; at
                    temperature ``T`` this gives ``grad.logits = (probs − onehot)/T`` on
                    the last row and 0 on the others
embedding           ``grad.E`` adds ``grad.embed``'s rows into the rows of their ids (and,
                    with tied embeddings, ``grad.logitsᵀ final``)
==================  =======================================================================

Constants get no gradient: ``ids``, ``sqrt_dk``, ``scale``, ``rope_angle`` and the
temperature.

Size.  Backpropagation multiplies: a gradient entry is a sum over paths of products of
forward values, and sympy writes each one out as a tree.  Through a softmax whose weights
are irrational, a layer norm whose standard deviation is the square root of such a sum,
and a second norm on top, a two-token block with ``d_model`` 3 reaches trees of millions
of nodes at ``grad.E`` (the values share subtrees in memory, so computing them takes
seconds, but printing one, or asking sympy a question about it, walks every copy).  A
walkthrough meant to be read chooses numbers that keep the forms short (rational standard
deviations, an attention row of equal scores: ``worked_examples/journey_training_step.toml``).
The loss *after* the step needs no printing, only a proven sign: :func:`loss_after_step`
computes it in :data:`UNSIMPLIFIED` form, whose certified enclosure visits each distinct
subtree once.

>>> import exacttransformer as et
>>> t = et.loads('''
... [model]
... learning_rate = "1/2"
... [input]
... logits = [[0, 0]]
... target = 1
... ''').forward()
>>> t.value("loss", None, None), t.value("grad.logits", None, None)
(((log(2),),), ((1/2, -1/2),))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import sympy

from ..exact.backends.base import Backend, Num
from ..exact.backends.exact import ExactBackend
from ..exact.linalg import Matrix, matmul, shape, transpose
from ..steps import positions as P
from ..steps.training import (
    add_all,
    as_backend,
    broadcast,
    colsum,
    derivative,
    hadamard,
    loss_grad,
    scatter,
    softmax_denominator,
    std_of,
    times,
    variance_grad,
    zeros,
)
from . import grad_variants as GV
from .config import ModelConfig
from .grad_kernels import LAYER_PARAMS, Contribution, grad_key, param_key
from .graph import Node, evaluate
from .model import model_nodes
from .params import LAYER_VECTORS, MODEL_VECTORS, Params
from .trace import Dep, Key

NO_GRAD = frozenset(("ids", "sqrt_dk", "scale", "rope_angle"))
"""Constants: nothing to learn, no gradient."""

IDENTITY = frozenset(("attn_in", "ffn_in", "out", "final", "shifted_scores", "shifted_logits"))
ADDITION = frozenset(("resid_mid", "resid_post"))
LINEAR = frozenset(("q", "k", "v", "q_pre", "k_pre", "attn_out", "ffn_pre", "ffn_out", "logits"))
VECTORS = frozenset(LAYER_VECTORS + MODEL_VECTORS)


def _is_linear(name: str) -> bool:
    """``x W (+ b)``, or the product ``x W`` alone (``q_product``: docs/nodes.md)."""
    return name in LINEAR or (name.endswith("_product") and name[:-len("_product")] in LINEAR)


def _adds_bias(c: Node) -> bool:
    """The second half of a split linear step: ``<name>_product + b``."""
    return bool(c.inputs) and c.inputs[0][0] == f"{c.key[0]}_product"


# --------------------------------------------------------------------------- local rules


def _norm_parts(node: Node) -> tuple[Matrix | None, Matrix | None]:
    gamma = next((v for k, v in node.params if k.startswith("gamma")), None)
    beta = next((v for k, v in node.params if k.startswith("beta")), None)
    return gamma, beta


def contribution(c: Node, idx: int, config: ModelConfig) -> Contribution | None:
    """What consumer ``c`` adds to the gradient of its ``idx``-th input (None: nothing)."""
    name = c.key[0]
    g = grad_key(c.key)
    src = c.inputs[idx]
    if src[0] in NO_GRAD:
        return None
    if name in IDENTITY or name in ADDITION or name == "x" or _adds_bias(c):
        return Contribution(((g, ("same",)),), lambda be, v: v[0], g[0])
    if name in ("q", "k") and len(c.inputs) == 2 and c.inputs[1][0] == "rope_angle":
        if idx != 0:
            return None
        return Contribution(((g, ("pair",)), (c.inputs[1], ("half",))),
                            lambda be, v: P.rope(be, v[0], v[1][:len(v[0])], inverse=True),
                            f"rope⁻¹({g[0]})")
    if _is_linear(name):
        w_name, w = c.params[0]
        if w is None:
            return None
        if w_name == "E":
            return Contribution(((g, ("row",)),),
                                lambda be, v: matmul(be, v[0], as_backend(be, w)), f"{g[0]} E")
        return Contribution(((g, ("row",)),),
                            lambda be, v: matmul(be, v[0], transpose(as_backend(be, w))),
                            f"{g[0]} {w_name}ᵀ")
    if name == "scores":
        if idx == 0:
            return Contribution(((g, ("row",)), (c.inputs[1], ("col",))),
                                lambda be, v: matmul(be, v[0], v[1]), f"{g[0]} k")
        return Contribution(((g, ("colT",)), (c.inputs[0], ("col",))),
                            lambda be, v: matmul(be, transpose(v[0]), v[1]), f"{g[0]}ᵀ q")
    if name == "scaled_scores":
        return Contribution(((g, ("same",)), (c.inputs[1], ("scalar",))),
                            lambda be, v: times(be, v[0], v[1][0][0]), f"{g[0]} · scale")
    if name == "scaled_logits":
        temp = dict(c.params)["T"]
        assert temp is not None
        return Contribution(((g, ("same",)),),
                            lambda be, v: tuple(tuple(be.div(x, be.const(temp[0][0])) for x in r)
                                                for r in v[0]), f"{g[0]} / T")
    if name in ("exp_scores", "exp_logits"):
        return Contribution(((g, ("same",)), (c.key, ("same",))),
                            lambda be, v: hadamard(be, v[0], v[1]), f"{g[0]} ⊙ {name}")
    if name in ("exp_sum", "exp_logits_sum"):
        return Contribution(((g, ("rowscalar",)), (src, ("shape",))),
                            lambda be, v: broadcast(be, v[0], shape(v[1])[1]),
                            f"{g[0]} (one per row, to every entry)")
    if config.softmax == "sum" and name in ("weights", "probs", "score_sum", "logit_sum"):
        return GV.sum_normalized_contribution(c, idx, config)
    if name in ("weights", "probs"):
        if idx == 0:
            return Contribution(((g, ("same",)), (c.inputs[1], ("rowscalar",))),
                                lambda be, v: tuple(tuple(be.div(x, s[0]) for x in r)
                                                    for r, s in zip(v[0], v[1], strict=True)),
                                f"{g[0]} / {c.inputs[1][0]}")
        return Contribution(((g, ("row",)), (c.inputs[0], ("row",)), (src, ("rowscalar",))),
                            softmax_denominator,
                            f"−Σ {g[0]} ⊙ {c.inputs[0][0]} / {src[0]}²")
    if name in ("sigmoid", "bce"):
        return GV.binary_contribution(c)
    if name == "contrib" or (name == "z" and c.inputs[0][0] == "contrib"):
        return GV.contrib_contribution(c, idx)
    if name == "z":
        if idx == 0:
            return Contribution(((g, ("row",)), (c.inputs[1], ("rowT",))),
                                lambda be, v: matmul(be, v[0], transpose(v[1])), f"{g[0]} vᵀ")
        return Contribution(((g, ("col",)), (c.inputs[0], ("colT",))),
                            lambda be, v: matmul(be, transpose(v[1]), v[0]),
                            f"weightsᵀ {g[0]}")
    if name == "concat":
        dep = c.deps[idx]
        c0 = dep[1] if dep[0] == "hcat" else 0
        return Contribution(((g, ("offset", c0)), (src, ("shape",))),
                            lambda be, v: tuple(r[c0:c0 + shape(v[1])[1]] for r in v[0]),
                            f"{g[0]}[:, {c0}…]")
    if name.endswith("_mean"):
        return Contribution(((g, ("rowscalar",)), (src, ("shape",))),
                            lambda be, v: tuple(tuple(be.div(r[0], be.integer(shape(v[1])[1]))
                                                      for _ in range(shape(v[1])[1]))
                                                for r in v[0]),
                            f"{g[0]} / d")
    if name.endswith("_var"):
        if idx == 1:
            return None  # Σ (x − μ) = 0: the mean's own contribution vanishes exactly
        return Contribution(((g, ("rowscalar",)), (src, ("same",)), (c.inputs[1], ("rowscalar",))),
                            variance_grad, f"2 {g[0]} (x − mean) / d")
    if name in ("ln1", "ln2", "lnf"):
        gamma, _ = _norm_parts(c)
        eps = config.norm_eps
        return _layernorm_contribution(c, idx, g, gamma, eps)
    if name == "ffn_act":
        kind = config.activation
        return Contribution(((g, ("same",)), (src, ("same",))),
                            lambda be, v: tuple(tuple(be.mul(a, derivative(be, kind, x))
                                                      for a, x in zip(ra, rx, strict=True))
                                                for ra, rx in zip(v[0], v[1], strict=True)),
                            f"{g[0]} ⊙ {kind}′(ffn_pre)")
    if name == "loss":
        target = dict(c.params)["target"]
        assert target is not None
        t = int(target[0][0])
        return Contribution(((src, ("at", -1, t)), (c.key, ("shape",))),
                            lambda be, v: loss_grad(be, v[0], t), "−1/probs at [last, target]")
    return None


def _layernorm_contribution(c: Node, idx: int, g: Key, gamma: Matrix | None,
                            eps: Num) -> Contribution | None:
    x_k, mean_k, var_k = c.inputs

    def scaled(be: Backend, gr: Sequence[Num]) -> list[Num]:
        if gamma is None:
            return list(gr)
        gam = as_backend(be, gamma)[0]
        return [be.mul(a, gam[j]) for j, a in enumerate(gr)]

    if idx == 0:
        def fx(be: Backend, v: Sequence[Matrix]) -> Matrix:
            return tuple(tuple(be.div(a, std_of(be, var[0], be.const(eps))) for a in scaled(be, gr))
                         for gr, var in zip(v[0], v[1], strict=True))
        return Contribution(((g, ("same",)), (var_k, ("rowscalar",))), fx, f"{g[0]} γ / σ")
    if idx == 1:
        def fm(be: Backend, v: Sequence[Matrix]) -> Matrix:
            return tuple((be.div(be.sub(be.integer(0), be.total(scaled(be, gr))),
                                 std_of(be, var[0], be.const(eps))),)
                         for gr, var in zip(v[0], v[1], strict=True))
        return Contribution(((g, ("row",)), (var_k, ("rowscalar",))), fm, f"−Σ {g[0]} γ / σ")

    def fv(be: Backend, v: Sequence[Matrix]) -> Matrix:
        out = []
        for gr, xr, mu, var in zip(v[0], v[1], v[2], v[3], strict=True):
            sigma = std_of(be, var[0], be.const(eps))
            dev = [be.sub(a, mu[0]) for a in xr]
            s = be.dot(scaled(be, gr), dev)
            out.append((be.div(be.mul(be.div(be.integer(-1), be.integer(2)), s),
                               be.mul(be.mul(sigma, sigma), sigma)),))
        return tuple(out)
    return Contribution(((g, ("row",)), (x_k, ("row",)), (mean_k, ("rowscalar",)),
                         (var_k, ("rowscalar",))), fv, f"−½ Σ {g[0]} γ (x − mean) / σ³")


# --------------------------------------------------------------------------- parameters


def param_contributions(c: Node, config: ModelConfig) -> list[tuple[str, Contribution]]:
    """The parameter gradients that consumer ``c`` contributes to."""
    name = c.key[0]
    g = grad_key(c.key)
    out: list[tuple[str, Contribution]] = []
    params = [(p, v) for p, v in c.params if v is not None]
    if _is_linear(name):
        x = c.inputs[0]
        heads = config.heads if c.key[2] is not None else 1
        h = c.key[2] or 0
        for p, v in params:
            width = shape(v)[1]
            c0 = h * width if heads > 1 else 0
            gdep: Dep = ("hcol", c0, width) if heads > 1 else ("col",)
            if p == "E":  # tied: logits = final Eᵀ
                out.append((p, Contribution(((g, ("colT",)), (x, ("col",))),
                                            lambda be, v: matmul(be, transpose(v[0]), v[1]),
                                            f"{g[0]}ᵀ final")))
            elif p.startswith("W"):
                out.append((p, Contribution(((x, ("colT",)), (g, gdep)),
                                            lambda be, v: matmul(be, transpose(v[0]), v[1]),
                                            f"{x[0]}ᵀ {g[0]}", c0)))
            else:
                out.append((p, Contribution(((g, gdep),), lambda be, v: colsum(be, v[0]),
                                            f"column sums of {g[0]}", c0)))
    elif name in ("ln1", "ln2", "lnf"):
        x_k, mean_k, var_k = c.inputs
        eps = config.norm_eps
        for p, _ in params:
            if p.startswith("gamma"):
                def fg(be: Backend, v: Sequence[Matrix]) -> Matrix:
                    rows = [[be.div(be.mul(a, be.sub(x, mu[0])), std_of(be, var[0], be.const(eps)))
                             for a, x in zip(gr, xr, strict=True)]
                            for gr, xr, mu, var in zip(v[0], v[1], v[2], v[3], strict=True)]
                    return (tuple(be.total(list(col)) for col in zip(*rows, strict=True)),)
                out.append((p, Contribution(((g, ("col",)), (x_k, ("col",)), (mean_k, ("all",)),
                                             (var_k, ("all",))), fg,
                                            f"column sums of {g[0]} ⊙ (x − mean) / σ")))
            else:
                out.append((p, Contribution(((g, ("col",)),), lambda be, v: colsum(be, v[0]),
                                            f"column sums of {g[0]}")))
    elif name == "embed":
        table = dict(c.params)["E"]
        assert table is not None
        vocab = shape(table)[0]
        out.append(("E", Contribution(((g, ("col",)), (c.inputs[0], ("all",))),
                                      lambda be, v: scatter(be, v[0], v[1], vocab),
                                      f"{g[0]} rows added into the rows of their ids")))
    elif name == "pos" and params and params[0][0] == "P":
        rows = shape(params[0][1])[0]
        out.append(("P", Contribution(((g, ("clip",)),),
                                      lambda be, v: tuple(v[0]) + zeros(be, rows - len(v[0]),
                                                                        shape(v[0])[1]),
                                      f"{g[0]} (0 for unused positions)")))
    return out


# --------------------------------------------------------------------------- the graph


def _sum_node(key: Key, target: Key, parts: list[Contribution], meaning: str) -> Node:
    reads = [r for p in parts for r in p.reads]
    sizes = [len(p.reads) for p in parts]

    def fn(be: Backend, ins: Sequence[Matrix], _p: object) -> Matrix:
        out, at = [], 1
        for part, n in zip(parts, sizes, strict=True):
            out.append(part.fn(be, ins[at:at + n]))
            at += n
        return add_all(be, out)

    return Node(key=key, inputs=(target,) + tuple(k for k, _ in reads), formula=" + ".join(
        p.formula for p in parts), fn=fn, deps=(("shape",),) + tuple(d for _, d in reads),
        meaning=meaning)


def _param_node(key: Key, full: Matrix, parts: list[Contribution], meaning: str) -> Node:
    reads = [r for p in parts for r in p.reads]
    sizes = [len(p.reads) for p in parts]
    rows, cols = shape(full)

    def fn(be: Backend, ins: Sequence[Matrix], _p: object) -> Matrix:
        cells: list[list[list[Num]]] = [[[] for _ in range(cols)] for _ in range(rows)]
        at = 0
        for part, n in zip(parts, sizes, strict=True):
            block = part.fn(be, ins[at:at + n])
            at += n
            for i, r in enumerate(block):
                for j, x in enumerate(r):
                    cells[i][part.column + j].append(x)
        return tuple(tuple(be.total(c) if c else be.integer(0) for c in r) for r in cells)

    return Node(key=key, inputs=tuple(k for k, _ in reads),
                formula=" + ".join(dict.fromkeys(p.formula for p in parts)), fn=fn,
                deps=tuple(d for _, d in reads), meaning=meaning)


def _param_value(params: Params, name: str, layer: int | None) -> Matrix | None:
    if name in LAYER_PARAMS:
        layers = params.layers
        if layer is None or layer >= len(layers):
            return None
        value = getattr(layers[layer], name)
    else:
        value = getattr(params, name)
    if value is None:
        return None
    return value if isinstance(value[0], tuple) else (tuple(value),)


def backward_nodes(nodes: Sequence[Node], config: ModelConfig, params: Params,
                   asked: frozenset[str] = frozenset()) -> list[Node]:
    """``grad.*`` of every node the loss depends on, of every parameter, and ``new.*``
    (and ``delta.*`` for the weights whose update a claim names: see
    :func:`.grad_variants.update_nodes`)."""
    by_key = {n.key: n for n in nodes}
    loss = next((k for k in (("loss", None, None), ("bce", None, None)) if k in by_key), None)
    if loss is None:
        return []
    wanted: set[Key] = {loss}
    edges: dict[Key, list[tuple[Node, Contribution]]] = {}
    for c in reversed(nodes):
        if c.key not in wanted:
            continue
        for idx, src in enumerate(c.inputs):
            part = contribution(c, idx, config)
            if part is None or src not in by_key:
                continue
            edges.setdefault(src, []).append((c, part))
            wanted.add(src)
    out: list[Node] = []
    for n in reversed(nodes):
        if n.key in edges and n.key != loss:
            parts = [p for _, p in edges[n.key]]
            out.append(_sum_node(grad_key(n.key), n.key, parts,
                                 f"how the loss changes with each entry of {n.key[0]}"))
    grads: dict[Key, list[Contribution]] = {}
    for c in nodes:
        if c.key in wanted and c.key != loss:
            for pname, part in param_contributions(c, config):
                grads.setdefault(param_key(pname, c.key[1]), []).append(part)
    lr = config.learning_rate
    news: list[Node] = []
    for key, parts in grads.items():
        name = key[0][5:]
        full = _param_value(params, name, key[1])
        if full is None:
            continue
        out.append(_param_node(key, full, parts,
                               f"how the loss changes with each entry of the weight {name}"))
        news += GV.update_nodes(name, key[1], full, lr, f"delta.{name}" in asked)
    return out + news


def updated_params(params: Params, new: Mapping[Key, Matrix]) -> Params:
    """``params`` with every ``new.<param>`` of a trace put in its place."""
    layers = list(params.layers)
    model_kw: dict[str, Any] = {}
    for (name, layer, _), value in new.items():
        pname = name[len("new."):]
        stored = value[0] if pname in VECTORS else value
        if pname in LAYER_PARAMS:
            assert layer is not None
            layers[layer] = replace(layers[layer], **{pname: stored})
        else:
            model_kw[pname] = stored
    return replace(params, layers=tuple(layers), **model_kw)


def loss_node(target: int) -> Node:
    """``loss = −log probs[last token, target]``."""
    def fn(be: Backend, ins: Sequence[Matrix], _p: object) -> Matrix:
        return ((be.sub(be.integer(0), be.log(ins[0][-1][target])),),)

    return Node(key=("loss", None, None), inputs=(("probs", None, None),),
                formula="−log probs[last token, target]", fn=fn, deps=(("at", -1, target),),
                params=(("target", ((sympy.Integer(target),),)),),
                meaning="the cross-entropy: minus the log-probability of the target word")


# --------------------------------------------------------------------------- after the step


class UnsimplifiedBackend(ExactBackend):
    """Exact arithmetic that writes every sum, product and quotient as it stands.

    The parameters after a step carry the softmax's exponentials, and a forward pass over
    them in :data:`~exacttransformer.exact.backends.EXACT` is slow for a reason that has nothing
    to do with the size of the answer: sympy's automatic simplification of each new ``a/b``
    or ``sqrt(s)`` asks whether the operands are zero, finite or positive, and answers by
    evaluating them numerically, walking the whole tree without sharing repeated
    subexpressions (minutes for a two-token block).  Built with ``evaluate=False`` the
    same exact value is a tree that shares its subtrees, and the certified enclosures of
    :mod:`exacttransformer.exact.interval` visit each distinct subtree once.  Nothing is
    cancelled, so a sign can be proven but a printed closed form would be unreadable: this
    backend is for proofs, not for walkthroughs.

    >>> from sympy import Integer as I, sqrt
    >>> UNSIMPLIFIED.div(UNSIMPLIFIED.add(I(1), sqrt(2)), I(2))   # sympy would write sqrt(2)/2 + 1/2
    (1 + sqrt(2))*(1/2)
    """

    def add(self, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
        return self.total((a, b))

    def sub(self, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
        return self.total((a, self.mul(sympy.Integer(-1), b)))

    def mul(self, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
        if a == 0 or b == 0:
            return sympy.Integer(0)
        if a == 1:
            return b
        if b == 1:
            return a
        return sympy.Mul(a, b, evaluate=False)

    def div(self, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
        if b == 0:
            raise ZeroDivisionError("exact division by zero")
        if b.is_Rational:
            return self.mul(a, sympy.Integer(1) / b)
        return self.mul(a, sympy.Pow(b, -1, evaluate=False))

    def total(self, xs: Sequence[sympy.Expr]) -> sympy.Expr:
        terms = [x for x in xs if x != 0]
        if not terms:
            return sympy.Integer(0)
        if len(terms) == 1:
            return terms[0]
        return sympy.Add(*terms, evaluate=False)

    def dot(self, xs: Sequence[sympy.Expr], ys: Sequence[sympy.Expr]) -> sympy.Expr:
        return self.total([self.mul(x, y) for x, y in zip(xs, ys, strict=True)])

    def sqrt(self, x: sympy.Expr) -> sympy.Expr:
        if x.is_Rational:
            return sympy.sqrt(x)
        return sympy.Pow(x, sympy.S.Half, evaluate=False)


UNSIMPLIFIED = UnsimplifiedBackend()


def loss_of(config: ModelConfig, params: Params, inputs: Any, backend: Backend) -> Num:
    """``−log probs[last token, target]`` by the forward pass alone: the graph up to
    ``probs`` and nothing after it (no decoding, no geometry, no backward pass), so any
    parameter may be a value ``backend`` can only add and multiply, say a sympy symbol.
    """
    if inputs.target is None:
        raise ValueError("a loss needs [input] target")
    nodes = model_nodes(config, params, replace(inputs, target=None))
    probs_key = ("probs", None, None)
    keys = [n.key for n in nodes]
    probs = None
    if probs_key in keys:
        steps = evaluate(nodes[:keys.index(probs_key) + 1], inputs.given, backend)
        probs = next((s.value for s in steps if s.key == probs_key), None)
    if probs is None:
        raise ValueError("the model has no vocabulary head (W_U or tied E), so no loss")
    return backend.sub(backend.integer(0), backend.log(probs[-1][inputs.target]))


def loss_after_step(config: ModelConfig, params: Params, inputs: Any, trace: Any) -> sympy.Expr:
    """The exact loss of the same input and target after the step: the forward pass run
    again on the ``new.<param>`` values of ``trace`` (in :data:`UNSIMPLIFIED` form).

    Whether the step helped is then a proven comparison with ``trace``'s ``loss``
    (:func:`exacttransformer.numbers.compare`): see :func:`loss_change`.
    """
    new = {s.key: s.value for s in trace if s.name.startswith("new.")}
    loss: sympy.Expr = loss_of(config, updated_params(params, new), inputs, UNSIMPLIFIED)
    return loss


def loss_change(config: ModelConfig, params: Params, inputs: Any, trace: Any) -> sympy.Expr:
    """``loss after the step − loss before``, exactly (negative when the step helped)."""
    before = trace.get("loss", None, None).value[0][0]
    after = loss_after_step(config, params, inputs, trace)
    return sympy.Add(after, sympy.Mul(sympy.Integer(-1), before, evaluate=False), evaluate=False)
