"""An independent float64 forward pass: the oracle the exact engine is tested against.

Layer: test oracle, separate code.  Nothing here uses the backends, :mod:`linalg` or the
step modules (:mod:`attention`, :mod:`norm`, ...): it is written again from SPEC §3 in
plain Python floats and :mod:`math`, the way micrograd's tests check its engine against
PyTorch.  Exact parameters are turned into floats once, at the edge (:func:`to_float`);
sums use :func:`math.fsum` so the only rounding is one per operation.

It computes the nodes of :data:`NAMES` (SPEC §3 from ``ids`` to ``probs``) that
:func:`exacttransformer.graph.forward.build_graph` computes, under the same keys
``(name, layer, head)``, and honours ``inputs.given`` the same way: a given node's value
replaces the computed one, and a node is computed only when all of its inputs are known
(evaluated to a fixpoint, so it does not depend on the order nodes are listed in).

>>> from exacttransformer.graph.config import ModelConfig
>>> from exacttransformer.graph.params import Params
>>> from exacttransformer.graph.model import Inputs
>>> x = ((1, 2, 2, 1),)
>>> r = reference_forward(ModelConfig(norm="pre"), Params(), Inputs(given={("x", 0, None): x}))
>>> r[("ln1_mean", 0, None)], r[("ln1_var", 0, None)], r[("ln1", 0, None)]
([[1.5]], [[0.25]], [[-1.0, 1.0, 1.0, -1.0]])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from ..exact import printing as numbers
from .config import ModelConfig
from .model import Inputs
from .params import LayerParams, Params

Key = tuple[str, int | None, int | None]
FloatMatrix = list[list[float]]
Row = list[float]

GELU_TANH_C = 0.044715
"""The cubic coefficient of the tanh approximation of GELU (Hendrycks & Gimpel)."""


# --- the edge: exact numbers in, floats out --------------------------------------------

def to_float(x: Any) -> float:
    """An exact number (sympy, int, Fraction) as the nearest float64.

    Sympy values go through the certified :func:`exacttransformer.numbers.to_float`
    (correctly rounded even where ``float(expr)``'s 15-digit evaluation would cancel).
    """
    if isinstance(x, int | float | Fraction):
        return float(x)
    return numbers.to_float(x)


def to_floats(m: Iterable[Iterable[Any]]) -> FloatMatrix:
    """A matrix of exact numbers as float64.

    >>> to_floats([[1, Fraction(1, 4)]])
    [[1.0, 0.25]]
    """
    return [[to_float(x) for x in row] for row in m]


def _vec(v: Sequence[Any] | None) -> Row | None:
    return None if v is None else [to_float(x) for x in v]


def _mat(m: Sequence[Sequence[Any]] | None) -> FloatMatrix | None:
    return None if m is None else to_floats(m)


# --- float linear algebra -----------------------------------------------------------

def matmul(a: FloatMatrix, b: FloatMatrix) -> FloatMatrix:
    """``a @ b``, each entry one correctly rounded :func:`math.fsum`.

    >>> matmul([[1.0, 2.0]], [[3.0], [4.0]])
    [[11.0]]
    """
    cols = list(zip(*b, strict=True))
    return [[math.fsum(x * y for x, y in zip(row, col, strict=True)) for col in cols] for row in a]


def linear(x: FloatMatrix, w: FloatMatrix, b: Row | None = None) -> FloatMatrix:
    """``x W + b`` with the bias added to every row."""
    y = matmul(x, w)
    if b is None:
        return y
    return [[v + c for v, c in zip(row, b, strict=True)] for row in y]


def transpose(m: FloatMatrix) -> FloatMatrix:
    """Rows become columns."""
    return [list(c) for c in zip(*m, strict=True)]


def _projection(w: FloatMatrix | None, b: Row | None) -> Callable[..., FloatMatrix] | None:
    """The step ``x ↦ x W + b``, or ``None`` (never computed) when ``W`` is absent."""
    if w is None:
        return None
    return lambda x: linear(x, w, b)


def _linear(run: _Run, key: Key, src: Key, w: FloatMatrix | None, b: Row | None,
            asked: frozenset[str]) -> None:
    """``key = src w + b``; split into the product and ``+ b`` when the file asks for
    ``<name>_product`` (the node a source prints before it adds the bias)."""
    prod = f"{key[0]}_product"
    if prod not in asked:
        run.node(key, [src], _projection(w, b))
        return
    run.node((prod, key[1], key[2]), [src], _projection(w, None))
    run.node(key, [(prod, key[1], key[2])],
             lambda m: m if b is None else [[x + y for x, y in zip(r, b, strict=True)] for r in m])


def plus(a: FloatMatrix, b: FloatMatrix) -> FloatMatrix:
    """Elementwise ``a + b``."""
    return [[x + y for x, y in zip(ra, rb, strict=True)] for ra, rb in zip(a, b, strict=True)]


def _cols(m: FloatMatrix | None, h: int, heads: int) -> FloatMatrix | None:
    """Head ``h``'s block of columns."""
    if m is None:
        return None
    w = len(m[0]) // heads
    return [row[h * w:(h + 1) * w] for row in m]


def _part(b: Row | None, h: int, heads: int) -> Row | None:
    if b is None:
        return None
    w = len(b) // heads
    return b[h * w:(h + 1) * w]


# --- layer norm -----------------------------------------------------------------------

def row_means(x: FloatMatrix) -> FloatMatrix:
    """Row means (n×1)."""
    return [[math.fsum(r) / len(r)] for r in x]


def row_variances(x: FloatMatrix, mu: FloatMatrix) -> FloatMatrix:
    """Biased (population) row variances (n×1), as PyTorch's ``LayerNorm``."""
    return [[math.fsum((a - m[0]) ** 2 for a in r) / len(r)] for r, m in zip(x, mu, strict=True)]


def normalize(
    x: FloatMatrix, mu: FloatMatrix, var: FloatMatrix, eps: float,
    gamma: Row | None = None, beta: Row | None = None,
) -> FloatMatrix:
    """``(x - mean)/sqrt(var + eps) * gamma + beta``; a zero ``var + eps`` raises
    :class:`ZeroDivisionError`."""
    rows = []
    for i, (r, (m,), (s,)) in enumerate(zip(x, mu, var, strict=True)):
        if s + eps == 0:
            raise ZeroDivisionError(f"layer norm of row {i}: variance 0 and norm_eps 0")
        root = math.sqrt(s + eps)
        y = [(a - m) / root for a in r]
        if gamma is not None:
            y = [a * g for a, g in zip(y, gamma, strict=True)]
        if beta is not None:
            y = [a + b for a, b in zip(y, beta, strict=True)]
        rows.append(y)
    return rows


def layer_norm(
    x: FloatMatrix, eps: float, gamma: Row | None = None, beta: Row | None = None
) -> tuple[FloatMatrix, FloatMatrix, FloatMatrix]:
    """Row means, biased variances and the normalized rows.

    >>> layer_norm([[1.0, 3.0]], 0.0)
    ([[2.0]], [[1.0]], [[-1.0, 1.0]])
    """
    mu = row_means(x)
    var = row_variances(x, mu)
    return mu, var, normalize(x, mu, var, eps, gamma, beta)


# --- attention --------------------------------------------------------------------------

def causal(n: int, m: int) -> list[list[bool]]:
    """Query ``i`` may read key ``j`` when ``j <= i + (m - n)`` (the last ``n`` of ``m``).

    >>> causal(2, 3)
    [[True, True, False], [True, True, True]]
    """
    return [[j <= i + (m - n) for j in range(m)] for i in range(n)]


def _everywhere(s: FloatMatrix) -> list[list[bool]]:
    """No mask (the vocabulary softmax; attention with ``mask = "none"``)."""
    return [[True] * len(row) for row in s]


def _allowed(config: ModelConfig, s: FloatMatrix) -> list[list[bool]]:
    return causal(len(s), len(s[0])) if config.mask == "causal" else _everywhere(s)


def shift(s: FloatMatrix, allowed: list[list[bool]]) -> FloatMatrix:
    """Each row minus its largest unmasked entry.

    >>> shift([[1.0, 3.0, 9.0]], [[True, True, False]])
    [[-2.0, 0.0, 6.0]]
    """
    out = []
    for row, ok in zip(s, allowed, strict=True):
        seen = [x for x, a in zip(row, ok, strict=True) if a]
        if not seen:
            raise ZeroDivisionError("a row of the mask hides every key")
        top = max(seen)
        out.append([x - top for x in row])
    return out


def exps(s: FloatMatrix, allowed: list[list[bool]]) -> FloatMatrix:
    """``exp`` of each unmasked entry, 0.0 where masked."""
    return [[math.exp(x) if a else 0.0 for x, a in zip(row, ok, strict=True)]
            for row, ok in zip(s, allowed, strict=True)]


def softmax_rows(e: FloatMatrix, sums: FloatMatrix) -> FloatMatrix:
    """``e / sum`` row by row (raises :class:`ZeroDivisionError` for a zero sum)."""
    return [[x / total[0] for x in row] for row, total in zip(e, sums, strict=True)]


# --- activations -------------------------------------------------------------------------

def _sum_normalize(run: _Run, src: Key, total: Key, out: Key, config: ModelConfig,
                   masked: bool) -> None:
    """``softmax = "sum"``: each row divided by the sum of its unmasked entries."""
    def ok(s: FloatMatrix) -> list[list[bool]]:
        return _allowed(config, s) if masked else _everywhere(s)

    run.node(total, [src], lambda s: [[math.fsum(x for x, a in zip(r, o, strict=True) if a)]
                                      for r, o in zip(s, ok(s), strict=True)])
    run.node(out, [src, total], lambda s, t: [[x / t[i][0] if a else 0.0
                                               for x, a in zip(r, o, strict=True)]
                                              for i, (r, o) in enumerate(zip(s, ok(s), strict=True))])


def _silu(x: float) -> float:
    # Written so that exp never overflows: x·σ(x) with σ from the side where it is small.
    if x >= 0:
        return x / (1.0 + math.exp(-x))
    e = math.exp(x)
    return x * e / (1.0 + e)


ACTIVATIONS: dict[str, Callable[[float], float]] = {
    "relu": lambda x: x if x > 0 else 0.0,
    "gelu": lambda x: 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0))),
    "gelu_tanh": lambda x: 0.5 * x * (
        1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + GELU_TANH_C * x**3))
    ),
    "silu": _silu,
    "none": lambda x: x,
}
"""Activations by their ``[model] activation`` names.

>>> ACTIVATIONS["relu"](-2.0), ACTIVATIONS["silu"](0.0), round(ACTIVATIONS["gelu"](1.0), 6)
(0.0, 0.0, 0.841345)
"""


# --- positions ---------------------------------------------------------------------------

def sinusoidal(n: int, d: int, base: float, guide: bool = False) -> FloatMatrix:
    """``pos[p, 2i] = sin(p / base^(2i/d))``, ``pos[p, 2i+1] = cos(...)``; the guide
    variant uses the exponent ``j/d`` for dimension ``j``.

    >>> sinusoidal(2, 2, 100.0)[1] == [math.sin(1.0), math.cos(1.0)]
    True
    """
    rows = []
    for p in range(n):
        row = []
        for j in range(d):
            expo = (j if guide else 2 * (j // 2)) / d
            angle = p / base**expo
            row.append(math.sin(angle) if j % 2 == 0 else math.cos(angle))
        rows.append(row)
    return rows


# --- the walk over the graph ------------------------------------------------------------

class _Run:
    """The graph as a list of ``(key, inputs, fn)``, evaluated to a fixpoint.

    A given value wins; any other node is computed once all of its inputs are known.
    The result does not depend on the order the nodes were declared in, so an ordering
    slip in the engine's graph shows up as a difference instead of being copied.
    """

    def __init__(self, given: Mapping[Key, Any]):
        self.given = {k: to_floats(v) for k, v in given.items()}
        self.specs: list[tuple[Key, tuple[Key, ...], Callable[..., FloatMatrix] | None]] = []

    def node(self, key: Key, inputs: Sequence[Key], fn: Callable[..., FloatMatrix] | None) -> None:
        """Declare ``key = fn(*inputs)``; ``fn=None`` means it can only be given."""
        self.specs.append((key, tuple(inputs), fn))

    def values(self) -> dict[Key, FloatMatrix]:
        declared = {key for key, _, _ in self.specs}
        known = {k: v for k, v in self.given.items() if k in declared}
        pending = [s for s in self.specs if s[0] not in known and s[2] is not None]
        progress = True
        while progress:
            progress = False
            for spec in list(pending):
                key, inputs, fn = spec
                if fn is not None and all(k in known for k in inputs):
                    known[key] = fn(*(known[k] for k in inputs))
                    pending.remove(spec)
                    progress = True
        order = {key: i for i, (key, _, _) in enumerate(self.specs)}
        return {k: known[k] for k in sorted(known, key=order.__getitem__)}


def _front(run: _Run, config: ModelConfig, params: Params, inputs: Inputs) -> None:
    n = len(inputs.tokens)
    parts: list[str] = []
    if params.E is not None and inputs.vocab:
        table = to_floats(params.E)
        ids = [[float(inputs.vocab.index(t))] for t in inputs.tokens]
        run.node(("ids", None, None), [], lambda: ids)
        run.node(("embed", None, None), [("ids", None, None)],
                 lambda i: [list(table[int(r[0])]) for r in i])
        parts.append("embed")
    d = config.d_model or (len(params.E[0]) if params.E is not None else None)
    if config.positional in ("sinusoidal", "sinusoidal_guide") and d is not None and n:
        guide = config.positional == "sinusoidal_guide"
        base = to_float(config.positional_base)
        run.node(("pos", None, None), [], lambda: sinusoidal(n, d, base, guide))
        parts.append("pos")
    elif config.positional == "learned" and params.P is not None and n:
        table_p = to_floats(params.P)
        run.node(("pos", None, None), [], lambda: [list(r) for r in table_p[:n]])
        parts.append("pos")
    x0: Key = ("x", 0, None)
    if parts == ["embed", "pos"]:
        run.node(x0, [("embed", None, None), ("pos", None, None)], plus)
    elif parts and parts[0] == "embed":
        run.node(x0, [("embed", None, None)], lambda e: e)
    else:
        run.node(x0, [], None)  # the hidden states can only be given


def _norm(run: _Run, config: ModelConfig, prefix: str, layer: int | None, src: Key,
          gamma: Row | None, beta: Row | None) -> None:
    eps = to_float(config.norm_eps)
    mean_k: Key = (f"{prefix}_mean", layer, None)
    var_k: Key = (f"{prefix}_var", layer, None)
    run.node(mean_k, [src], row_means)
    run.node(var_k, [src, mean_k], row_variances)
    run.node((prefix, layer, None), [src, mean_k, var_k],
             lambda x, mu, var: normalize(x, mu, var, eps, gamma, beta))


def _attention(run: _Run, config: ModelConfig, L: int, lp: LayerParams, kv: Key,
               asked: frozenset[str]) -> None:
    heads = config.heads
    W = {name: _mat(getattr(lp, name)) for name in ("W_Q", "W_K", "W_V", "W_O")}
    B = {name: _vec(getattr(lp, name)) for name in ("b_Q", "b_K", "b_V", "b_O")}
    sqrt_k: Key = ("sqrt_dk", L, None)
    scale_k: Key = ("scale", L, None)
    run.node(sqrt_k, [("k", L, 0)], lambda k: [[math.sqrt(len(k[0]))]])
    if config.scale == "sqrt_dk":
        run.node(scale_k, [sqrt_k], lambda r: [[1.0 / r[0][0]]])
    else:
        c = 1.0 if config.scale == "none" else to_float(config.scale)
        run.node(scale_k, [], lambda: [[c]])

    def hk(name: str, h: int) -> Key:
        return (name, L, h)

    for h in range(heads):
        v_src: Key = ("x_v", None, None) if kv == ("x_k", None, None) else kv
        for name, src in (("q", ("attn_in", L, None)), ("k", kv), ("v", v_src)):
            w = _cols(W[f"W_{name.upper()}"], h, heads)
            b = _part(B[f"b_{name.upper()}"], h, heads)
            _linear(run, hk(name, h), src, w, b, asked)
        run.node(hk("scores", h), [hk("q", h), hk("k", h)], lambda q, k: matmul(q, transpose(k)))
        run.node(hk("scaled_scores", h), [hk("scores", h), scale_k],
                 lambda s, c: [[x * c[0][0] for x in row] for row in s])
        pre = hk("scaled_scores", h)
        if config.softmax == "sum":
            _sum_normalize(run, pre, hk("score_sum", h), hk("weights", h), config, True)
        elif config.softmax == "stable":
            run.node(hk("shifted_scores", h), [pre], lambda s: shift(s, _allowed(config, s)))
            pre = hk("shifted_scores", h)
        if config.softmax != "sum":
            run.node(hk("exp_scores", h), [pre], lambda s: exps(s, _allowed(config, s)))
            run.node(hk("exp_sum", h), [hk("exp_scores", h)],
                     lambda e: [[math.fsum(r)] for r in e])
            run.node(hk("weights", h), [hk("exp_scores", h), hk("exp_sum", h)], softmax_rows)
        if "contrib" in asked:  # per-key contributions, then z as their sum
            run.node(hk("contrib", h), [hk("weights", h), hk("v", h)],
                     lambda w, v: [[a * x for a, vr in zip(wr, v, strict=True) for x in vr]
                                   for wr in w])
            run.node(hk("z", h), [hk("contrib", h), hk("v", h)],
                     lambda c, v: [[math.fsum(r[b * len(v[0]) + j] for b in range(len(v)))
                                    for j in range(len(v[0]))] for r in c])
        else:
            run.node(hk("z", h), [hk("weights", h), hk("v", h)], matmul)
    run.node(("concat", L, None), [("z", L, h) for h in range(heads)],
             lambda *zs: [[x for z in parts for x in z] for parts in zip(*zs, strict=True)])
    _linear(run, ("attn_out", L, None), ("concat", L, None), W["W_O"], B["b_O"], asked)


def _ffn(run: _Run, config: ModelConfig, k: Callable[[str], Key], lp: LayerParams,
         asked: frozenset[str]) -> None:
    act = ACTIVATIONS[config.activation]
    _linear(run, k("ffn_pre"), k("ffn_in"), _mat(lp.W1), _vec(lp.b1), asked)
    run.node(k("ffn_act"), [k("ffn_pre")], lambda h: [[act(v) for v in r] for r in h])
    _linear(run, k("ffn_out"), k("ffn_act"), _mat(lp.W2), _vec(lp.b2), asked)


def _layer(run: _Run, config: ModelConfig, L: int, lp: LayerParams, kv: Key | None,
           asked: frozenset[str] = frozenset()) -> None:
    def k(name: str) -> Key:
        return (name, L, None)

    ident: Callable[[FloatMatrix], FloatMatrix] = lambda m: m  # noqa: E731
    if L > 0:
        run.node(k("x"), [("out", L - 1, None)], ident)
    g1, b1n, g2, b2n = (_vec(lp.gamma1), _vec(lp.beta1), _vec(lp.gamma2), _vec(lp.beta2))
    if config.norm == "pre":
        _norm(run, config, "ln1", L, k("x"), g1, b1n)
        run.node(k("attn_in"), [k("ln1")], ident)
    else:
        run.node(k("attn_in"), [k("x")], ident)
    _attention(run, config, L, lp, kv if kv is not None else k("attn_in"), asked)
    if config.ffn_input == "attention":  # no residual: the feed-forward reads attention
        run.node(k("ffn_in"), [k("attn_out") if lp.W_O is not None else k("concat")], ident)
        _ffn(run, config, k, lp, asked)
        run.node(k("out"), [k("ffn_out")], ident)
        return
    run.node(k("resid_mid"), [k("x"), k("attn_out")], plus)
    stream = k("resid_mid")
    if config.norm == "post":
        _norm(run, config, "ln1", L, k("resid_mid"), g1, b1n)
        stream = k("ln1")
    elif config.norm == "pre":
        _norm(run, config, "ln2", L, k("resid_mid"), g2, b2n)
    run.node(k("ffn_in"), [k("ln2") if config.norm == "pre" else stream], ident)
    _ffn(run, config, k, lp, asked)
    run.node(k("resid_post"), [stream, k("ffn_out")], plus)
    if config.norm == "post":
        _norm(run, config, "ln2", L, k("resid_post"), g2, b2n)
        run.node(k("out"), [k("ln2")], ident)
    else:
        run.node(k("out"), [k("resid_post")], ident)


def _binary_head(run: _Run, labels: FloatMatrix | None) -> None:
    """``sigmoid`` of the logits and, with labels, their mean binary cross-entropy."""
    def bce(p: FloatMatrix) -> FloatMatrix:
        assert labels is not None
        terms = [y * math.log(q) if y else 0.0 for pr, yr in zip(p, labels, strict=True)
                 for q, y in zip(pr, yr, strict=True)]
        terms += [(1 - y) * math.log1p(-q) if y != 1 else 0.0
                  for pr, yr in zip(p, labels, strict=True) for q, y in zip(pr, yr, strict=True)]
        return [[-math.fsum(terms) / sum(len(r) for r in p)]]

    run.node(("sigmoid", None, None), [("logits", None, None)],
             lambda m: [[1.0 / (1.0 + math.exp(-x)) for x in r] for r in m])
    if labels is not None:
        run.node(("bce", None, None), [("sigmoid", None, None)], bce)


def _vocab_head(run: _Run, config: ModelConfig, params: Params, last: Key,
                asked: frozenset[str] = frozenset(), labels: FloatMatrix | None = None) -> None:
    """``final``, ``logits`` and the softmax over the vocabulary at ``temperature``."""
    def g(name: str) -> Key:
        return (name, None, None)

    has_norm = config.final_norm or params.gamma_f is not None or params.beta_f is not None
    tied = config.tie_embeddings and params.E is not None
    if has_norm or params.W_U is not None or tied:
        src = last
        if has_norm:
            _norm(run, config, "lnf", None, last, _vec(params.gamma_f), _vec(params.beta_f))
            src = g("lnf")
        run.node(g("final"), [src], lambda m: m)
    if tied and params.E is not None:
        run.node(g("logits"), [g("final")], _projection(transpose(to_floats(params.E)), None))
    else:
        _linear(run, g("logits"), g("final"), _mat(params.W_U), _vec(params.b_U), asked)
    if config.head == "sigmoid":
        _binary_head(run, labels)
        return
    temperature = to_float(config.temperature)
    run.node(g("scaled_logits"), [g("logits")],
             lambda s: [[x / temperature for x in row] for row in s])
    pre = g("scaled_logits")
    if config.softmax == "sum":
        _sum_normalize(run, pre, g("logit_sum"), g("probs"), config, False)
        return
    if config.softmax == "stable":
        run.node(g("shifted_logits"), [pre], lambda s: shift(s, _everywhere(s)))
        pre = g("shifted_logits")
    run.node(g("exp_logits"), [pre], lambda s: exps(s, _everywhere(s)))
    run.node(g("exp_logits_sum"), [g("exp_logits")], lambda e: [[math.fsum(r)] for r in e])
    run.node(g("probs"), [g("exp_logits"), g("exp_logits_sum")], softmax_rows)


NAMES = frozenset((
    "ids", "embed", "pos", "x", "x_kv", "x_k", "x_v", "attn_in",
    "ln1_mean", "ln1_var", "ln1", "ln2_mean", "ln2_var", "ln2",
    "q", "k", "v", "scores", "sqrt_dk", "scale", "scaled_scores", "shifted_scores",
    "exp_scores", "exp_sum", "weights", "z", "concat", "attn_out", "resid_mid",
    "ffn_in", "ffn_pre", "ffn_act", "ffn_out", "resid_post", "out",
    "lnf_mean", "lnf_var", "lnf", "final", "logits", "scaled_logits", "shifted_logits",
    "exp_logits", "exp_logits_sum", "probs",
    "score_sum", "logit_sum", "sigmoid", "bce",
    # asked for by a claim (docs/nodes.md, "Numbers that walkthroughs print between the steps")
    "contrib",
    "q_product", "k_product", "v_product", "attn_out_product", "ffn_pre_product",
    "ffn_out_product", "logits_product",
))
"""The node names this reference computes: SPEC §3 up to ``probs`` (not decoding, the loss
or gradients; and ``positional = "rope"`` is refused with :class:`NotImplementedError`)."""


def reference_forward(
    config: ModelConfig, params: Params, inputs: Inputs
) -> dict[Key, FloatMatrix]:
    """Every node of :data:`NAMES` that the exact graph computes, in float64, keyed
    ``(name, layer, head)``.

    The cat walkthrough's ``out`` row for "cat" (SPEC's seed example):

    >>> from exacttransformer.io.files import load
    >>> w = load("cat")
    >>> reference_forward(w.config, w.params, w.inputs)[("out", 0, None)][1]
    [7.0, 10.0, 5.0, 6.0]

    A failed step (a constant row under layer norm with ``norm_eps = 0``, a row of the
    mask that hides every key) raises :class:`ZeroDivisionError`.
    """
    run = _Run(inputs.given)
    kv: Key | None = ("x_kv", None, None) if ("x_kv", None, None) in inputs.given else None
    if kv is None and ("x_k", None, None) in inputs.given:  # MultiHead(Q, K, V)
        kv = ("x_k", None, None)
        run.node(("x_v", None, None), [], None)
    if kv is not None:
        run.node(kv, [], None)
    _front(run, config, params, inputs)
    if config.positional == "rope":
        raise NotImplementedError("the float reference does not implement RoPE")
    layers = params.layers or (LayerParams(),)
    for layer, lp in enumerate(layers):
        _layer(run, config, layer, lp, kv, inputs.asked)
    _vocab_head(run, config, params, ("out", len(layers) - 1, None), inputs.asked,
                None if inputs.labels is None else to_floats(inputs.labels))
    _statistics(run, inputs.asked)
    return run.values()


def _row_stat(stat: str, row: Row) -> float:
    d = len(row)
    mu = math.fsum(row) / d
    spread = math.fsum((x - mu) ** 2 for x in row) / d
    return {"rowsum": math.fsum(row), "mean": mu, "var": spread, "std": math.sqrt(spread)}[stat]


def _statistics(run: _Run, asked: frozenset[str]) -> None:
    """``rowsum(node)``, ``mean(node)``, ``var(node)``, ``std(node)`` asked for by claims."""
    for name in sorted(asked):
        stat, paren, rest = name.partition("(")
        if not paren:
            continue
        inner = rest[:-1]
        for key in [k for k, _, _ in run.specs if k[0] == inner]:
            run.node((name, key[1], key[2]), [key],
                     lambda m, stat=stat: [[_row_stat(stat, r)] for r in m])


def reference_loss(config: ModelConfig, params: Params, inputs: Inputs) -> float:
    """The cross-entropy of ``inputs.target`` after the last token, in float64.

    Written from the logits, not from ``probs``, as ``log Σⱼ exp(sⱼ − s_max) − (s_t − s_max)``
    with ``s`` the last row of the logits divided by the temperature (the log-sum-exp form:
    a probability is never rounded, or flushed to 0, before its logarithm is taken).
    Finite differences of this function are the float check of the exact gradients.

    >>> from exacttransformer.graph.params import Params
    >>> from exacttransformer.graph.model import Inputs
    >>> round(reference_loss(ModelConfig(), Params(),
    ...                      Inputs(given={("logits", None, None): ((0, 0),)}, target=1)), 12)
    0.69314718056
    """
    if inputs.target is None:
        raise ValueError("a loss needs a target")
    logits = reference_forward(config, params, inputs).get(("logits", None, None))
    if logits is None:
        raise ValueError("the model has no vocabulary head, so no loss")
    temperature = to_float(config.temperature)
    s = [x / temperature for x in logits[-1]]
    top = max(s)
    return math.log(math.fsum(math.exp(x - top) for x in s)) - (s[inputs.target] - top)
