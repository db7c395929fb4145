"""The transformer as one readable graph: the nodes of SPEC §3, from the inputs to the head.

Layer: graph.  :func:`model_nodes` lists the transformer's nodes in order, reading like
the paper (``x = x + attn(ln_1(x))``); :func:`run` evaluates nodes into a
:class:`~exacttransformer.graph.trace.Trace` (the whole graph with decoding, geometry and
training, and ``forward``, are in :mod:`exacttransformer.graph.forward`).  Nothing here does
arithmetic itself: the nodes call the step modules with the backend they are given.

>>> from sympy import Integer as I
>>> cfg = ModelConfig(norm="pre")
>>> x = ((I(1), I(2), I(2), I(1)),)
>>> inputs = Inputs(given={("x", 0, None): x})
>>> t = run(model_nodes(cfg, Params(), inputs), cfg, inputs)
>>> t.value("ln1", 0)
((-1, 1, 1, -1),)
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, fields
from functools import partial
from types import MappingProxyType
from typing import Any

from ..exact.backends import EXACT
from ..exact.backends.base import Backend
from ..exact.linalg import Matrix, Vector, add, columns, shape
from ..steps import attention as A
from ..steps import decoding as D
from ..steps import feedforward as F
from ..steps import logits as LG
from ..steps import norm as N
from ..steps import positions as P
from ..steps.tokens import Tokenization
from . import binary as B
from . import variants as V
from .config import ModelConfig
from .graph import Guard, Node, Patch, StepFn, evaluate
from .params import LayerParams, Params
from .trace import Dep, Key, Step, Trace

MEANINGS: dict[str, str] = {
    "ids": "each token's row number in the vocabulary",
    "embed": "each token's row of the embedding table E",
    "pos": "the positional encoding of each position",
    "x": "the hidden states entering the layer, one row per token",
    "ln1_mean": "the mean of each row, for the first layer norm",
    "ln1_var": "the biased variance of each row, for the first layer norm",
    "ln1": "the first layer norm: each row centred and divided by its standard deviation",
    "ln2_mean": "the mean of each row, for the second layer norm",
    "ln2_var": "the biased variance of each row, for the second layer norm",
    "ln2": "the second layer norm",
    "attn_in": "what attention reads",
    "q": "the queries: what each token is looking for",
    "k": "the keys: what each token offers to be found by",
    "v": "the values: what each token passes on when attended to",
    "scores": "how well each query matches each key (dot products)",
    "sqrt_dk": "the square root of the head width d_k",
    "scale": "the number the scores are multiplied by",
    "scaled_scores": "the scores multiplied by the scale",
    "shifted_scores": "the scaled scores minus each row's maximum (for a stable softmax)",
    "exp_scores": "e to the power of each score (exactly 0 where masked)",
    "exp_sum": "the sum of each row of exponentials",
    "weights": "the attention weights: each row of exponentials divided by its sum",
    "score_sum": "the sum of each row of scaled scores (softmax = \"sum\")",
    "logit_sum": "the sum of each row of scaled logits (softmax = \"sum\")",
    "z": "the weighted sum of the value vectors",
    "concat": "the heads' outputs side by side",
    "attn_out": "the attention output, projected back to the model width",
    "resid_mid": "the residual connection: the layer input plus the attention output",
    "ffn_in": "what the feed-forward network reads",
    "ffn_pre": "the hidden neurons before the activation",
    "ffn_act": "the hidden neurons after the activation",
    "ffn_out": "the feed-forward output, back at the model width",
    "resid_post": "the second residual connection",
    "out": "the block's output, the hidden states leaving the layer",
    "q_pre": "the queries before the rotary position rotation",
    "k_pre": "the keys before the rotary position rotation",
    "rope_angle": "the rotation angle of each position and pair of dimensions (RoPE)",
    "lnf_mean": "the mean of each row, for the final layer norm",
    "lnf_var": "the biased variance of each row, for the final layer norm",
    "lnf": "the final layer norm",
    "final": "what the unembedding reads: the last hidden states",
    "logits": "one score per word of the vocabulary, for the word after each token",
    "scaled_logits": "the logits divided by the temperature",
    "shifted_logits": "the scaled logits minus each row's maximum (for a stable softmax)",
    "exp_logits": "e to the power of each scaled logit",
    "exp_logits_sum": "the sum of each row of exponentials",
    "probs": "the probability of each word coming next",
    "sigmoid": "the probability of the positive class for each logit (sigmoid)",
    "bce": "the binary cross-entropy of the sigmoid outputs against the labels",
    "greedy": "the most probable next word (greedy decoding)",
    "top_k_probs": "the probabilities kept by top-k, renormalized",
    "top_p_sorted": "the next-word probabilities, largest first",
    "top_p_cumsum": "their running sums, compared with p",
    "top_p_probs": "the probabilities kept by top-p (the nucleus), renormalized",
    "filtered_probs": "the probabilities kept by both top-k and top-p, renormalized",
    "sample_cdf": "the cumulative probabilities in vocabulary order",
    "sample": "the word drawn by the given uniform number u (inverse CDF)",
    "loss": "the cross-entropy: minus the log-probability of the target word",
    "cosine": "the cosine similarity of each pair of token embeddings",
    "analogy": "the analogy vector E[a] − E[b] + E[c]",
    "analogy_cosine": "the cosine of the analogy vector with every word's embedding",
    "analogy_nearest": "the word nearest to the analogy vector",
}


@dataclass(frozen=True)
class Inputs:
    """What enters the model: tokens, and any nodes the file gives directly."""

    tokens: tuple[str, ...] = ()
    given: Mapping[Key, Matrix] = field(default_factory=dict)
    vocab: tuple[str, ...] = ()
    kv_tokens: tuple[str, ...] = ()
    unk: str | None = None
    tokenization: Tokenization | None = None
    target: int | None = None
    decoding: D.DecodingConfig | None = None
    analogy: tuple[str, str, str] | None = None
    asked: frozenset[str] = frozenset()
    labels: Matrix | None = None
    """``[input] labels`` of the binary head (``head = "sigmoid"``)."""
    """Names of nodes that exist only when a claim asks for them (:mod:`.asked`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "given", MappingProxyType(dict(self.given)))


def _node(
    key: Key,
    inputs: Sequence[Key],
    formula: str,
    fn: StepFn,
    deps: Sequence[Dep],
    params: Sequence[tuple[str, Matrix | None]] = (),
    required: Sequence[str] = (),
) -> Node:
    return Node(
        key=key,
        inputs=tuple(inputs),
        formula=formula,
        fn=fn,
        deps=tuple(deps),
        params=tuple(params),
        required=tuple(required),
        meaning=MEANINGS.get(key[0], ""),
    )


def _vec(p: Mapping[str, Matrix | None], name: str) -> Vector | None:
    m = p.get(name)
    return None if m is None else m[0]


def _as_row(v: Vector | None) -> Matrix | None:
    return None if v is None else (tuple(v),)


def _head_slice(m: Matrix | None, h: int, heads: int) -> Matrix | None:
    if m is None:
        return None
    width = shape(m)[1] // heads
    return columns(m, h * width, (h + 1) * width)


def _bias_slice(b: Vector | None, h: int, heads: int) -> Matrix | None:
    if b is None:
        return None
    width = len(b) // heads
    return (tuple(b[h * width:(h + 1) * width]),)


def _plus(term: str, present: object) -> str:
    return f" + {term}" if present is not None else ""


# --- step functions with the graph's calling convention -------------------------------

def _layernorm_out(eps: object, be: Backend, ins: Sequence[Matrix], p: Mapping[str, Matrix | None]) -> Matrix:
    gamma = next((v for k, v in p.items() if k.startswith("gamma")), None)
    beta = next((v for k, v in p.items() if k.startswith("beta")), None)
    return N.normalize(
        be, ins[0], ins[1], ins[2], be.const(eps),
        None if gamma is None else gamma[0], None if beta is None else beta[0],
    )


def _layernorm_nodes(
    config: ModelConfig, prefix: str, layer: int | None, src: Key,
    gamma: tuple[str, Vector | None], beta: tuple[str, Vector | None],
) -> list[Node]:
    mean_k: Key = (f"{prefix}_mean", layer, None)
    var_k: Key = (f"{prefix}_var", layer, None)
    g, b = gamma[1], beta[1]
    affine = (" ⊙ " + gamma[0] if g is not None else "") + _plus(beta[0], b)
    return [
        _node(mean_k, [src], f"mean({src[0]})", lambda be, i, p: N.mean(be, i[0]), [("row",)]),
        _node(var_k, [src, mean_k], f"mean(({src[0]} - {mean_k[0]})^2)",
              lambda be, i, p: N.variance(be, i[0], i[1]), [("row",), ("rowscalar",)]),
        _node((prefix, layer, None), [src, mean_k, var_k],
              f"({src[0]} - {mean_k[0]}) / sqrt({var_k[0]} + eps){affine}",
              partial(_layernorm_out, config.norm_eps),
              [("same",), ("rowscalar",), ("rowscalar",)],
              params=[(gamma[0], _as_row(g)), (beta[0], _as_row(b))]),
    ]


def _identity(name: str) -> StepFn:
    return lambda be, ins, p: ins[0]


def _scale_nodes(config: ModelConfig, layer: int) -> list[Node]:
    nodes: list[Node] = []
    sqrt_k: Key = ("sqrt_dk", layer, None)
    scale_k: Key = ("scale", layer, None)
    nodes.append(_node(sqrt_k, [("k", layer, 0)], "sqrt(d_k), d_k = the width of k",
                       lambda be, i, p: A.sqrt_dk(be, i[0]), [("shape",)]))
    if config.scale == "sqrt_dk":
        nodes.append(_node(scale_k, [sqrt_k], "1 / sqrt_dk",
                           lambda be, i, p: A.scale_from_sqrt_dk(be, i[0]), [("scalar",)]))
    else:
        number = 1 if config.scale == "none" else config.scale
        nodes.append(_node(scale_k, [], str(number),
                           lambda be, i, p: ((be.const(number) if not isinstance(number, int)
                                              else be.integer(number),),), []))
    return nodes


def _softmax_nodes(config: ModelConfig, layer: int, h: int) -> list[Node]:
    """``shifted_scores`` (stable), ``exp_scores``, ``exp_sum`` and ``weights`` of one head."""
    def hk(n: str) -> Key:
        return (n, layer, h)

    nodes: list[Node] = []
    pre = hk("scaled_scores")
    if config.softmax == "stable":
        nodes.append(_node(hk("shifted_scores"), [pre], "scaled_scores - rowmax(scaled_scores)",
                           lambda be, i, p: A.shifted_scores(be, i[0], V.mask_for(config, i[0])),
                           [("row",)]))
        pre = hk("shifted_scores")
    mask_note = " (0 where masked)" if config.mask == "causal" else ""
    nodes.append(_node(hk("exp_scores"), [pre], f"exp({pre[0]}){mask_note}",
                       lambda be, i, p: A.exp_scores(be, i[0], V.mask_for(config, i[0])),
                       [("same",)]))
    nodes.append(_node(hk("exp_sum"), [hk("exp_scores")], "rowsum(exp_scores)",
                       lambda be, i, p: A.exp_sum(be, i[0]), [("row",)]))
    nodes.append(_node(hk("weights"), [hk("exp_scores"), hk("exp_sum")],
                       "exp_scores / exp_sum",
                       lambda be, i, p: A.weights(be, i[0], i[1]), [("same",), ("rowscalar",)]))
    return nodes


def _value_width(lp: LayerParams, heads: int, given: Mapping[Key, Matrix], v: Key) -> int | None:
    """``d_v`` of one head, from ``W_V`` or a given ``v`` (None: neither is known yet)."""
    if v in given:
        return shape(given[v])[1]
    return shape(lp.W_V)[1] // heads if lp.W_V is not None else None


def _attention_nodes(config: ModelConfig, layer: int, lp: LayerParams, kv: Key,
                     asked: frozenset[str] = frozenset(),
                     given: Mapping[Key, Matrix] = MappingProxyType({})) -> list[Node]:
    heads = config.heads
    x_in: Key = ("attn_in", layer, None)
    scale_k: Key = ("scale", layer, None)
    nodes: list[Node] = []
    rope = config.positional == "rope"
    for h in range(heads):
        v_src = V.VALUE_INPUT if kv == V.KEY_INPUT else kv  # MultiHead(Q, K, V): x_k, x_v
        for name, w, b, src in (("q", "W_Q", "b_Q", x_in), ("k", "W_K", "b_K", kv),
                                ("v", "W_V", "b_V", v_src)):
            wm = _head_slice(getattr(lp, w), h, heads)
            bm = _bias_slice(getattr(lp, b), h, heads)
            rotated = rope and name in ("q", "k")
            key: Key = (f"{name}_pre" if rotated else name, layer, h)
            nodes += V.linear_nodes(MEANINGS, key, src, (w, wm), (b, bm), asked)
            if rotated:
                angle: Key = ("rope_angle", None, None)
                nodes.append(_node((name, layer, h), [key, angle],
                                   f"rotate each pair of {key[0]} by rope_angle",
                                   lambda be, i, p: P.rope(be, i[0], i[1][:len(i[0])]),
                                   [("pair",), ("half",)]))
        def hk(n: str, h: int = h) -> Key:
            return (n, layer, h)

        nodes.append(_node(hk("scores"), [hk("q"), hk("k")], "q kᵀ",
                           lambda be, i, p: A.scores(be, i[0], i[1]), [("row",), ("rowT",)]))
        if h == 0:
            nodes += _scale_nodes(config, layer)
        nodes.append(_node(hk("scaled_scores"), [hk("scores"), scale_k], "scores · scale",
                           lambda be, i, p: A.scaled_scores(be, i[0], i[1]),
                           [("same",), ("scalar",)]))
        if config.softmax == "sum":
            nodes += V.sum_normalization(config, hk("scaled_scores"), hk("score_sum"),
                                         hk("weights"), MEANINGS)
        else:
            nodes += _softmax_nodes(config, layer, h)
        d_v = _value_width(lp, heads, given, hk("v"))
        if "contrib" in asked and d_v is not None:
            nodes += V.contribution_nodes(MEANINGS, layer, h, d_v)
        else:
            nodes.append(_node(hk("z"), [hk("weights"), hk("v")], "weights v",
                               lambda be, i, p: A.mix(be, i[0], i[1]), [("row",), ("col",)]))
    z_keys = [("z", layer, h) for h in range(heads)]
    dv = shape(lp.W_V)[1] // heads if lp.W_V is not None else None
    if heads == 1:
        cat_deps: list[Dep] = [("same",)]
    else:
        cat_deps = [("hcat", h * dv, dv) if dv is not None else ("all",) for h in range(heads)]
    nodes.append(_node(("concat", layer, None), z_keys,
                       "[" + ", ".join(f"z_{h}" for h in range(heads)) + "]",
                       lambda be, i, p: A.concat(i), cat_deps))
    nodes += V.linear_nodes(MEANINGS, ("attn_out", layer, None), ("concat", layer, None),
                           ("W_O", lp.W_O), ("b_O", _as_row(lp.b_O)), asked)
    return nodes


def _add_node(key: Key, a: Key, b: Key) -> Node:
    return _node(key, [a, b], f"{a[0]} + {b[0]}", _residual, [("same",), ("same",)])


def _residual(be: Backend, ins: Sequence[Matrix], p: Mapping[str, Matrix | None]) -> Matrix:
    """``a + b`` elementwise, each sum in the backend's form for a value used many times: the
    residual stream is read by every later layer, and the structured engine would otherwise
    carry each layer's terms into all the following ones."""
    return tuple(tuple(be.keep(x) for x in row) for row in add(be, ins[0], ins[1]))


def _layer_nodes(config: ModelConfig, layer: int, lp: LayerParams, kv: Key | None,
                 asked: frozenset[str] = frozenset(),
                 given: Mapping[Key, Matrix] = MappingProxyType({})) -> list[Node]:
    L = layer
    k = lambda n: (n, L, None)  # noqa: E731
    nodes: list[Node] = []
    if L > 0:
        nodes.append(_node(k("x"), [("out", L - 1, None)], f"out of layer {L - 1}",
                           _identity("x"), [("same",)]))
    ln1 = (("gamma1", lp.gamma1), ("beta1", lp.beta1))
    ln2 = (("gamma2", lp.gamma2), ("beta2", lp.beta2))
    if config.norm == "pre":
        nodes += _layernorm_nodes(config, "ln1", L, k("x"), *ln1)
        nodes.append(_node(k("attn_in"), [k("ln1")], "ln1", _identity("attn_in"), [("same",)]))
    else:
        nodes.append(_node(k("attn_in"), [k("x")], "x", _identity("attn_in"), [("same",)]))
    nodes += _attention_nodes(config, L, lp, kv if kv is not None else k("attn_in"), asked,
                              given)
    if config.ffn_input == "attention":
        return nodes + V.direct_ffn(MEANINGS, L, lp.W_O is not None, [
            *V.linear_nodes(MEANINGS, k("ffn_pre"), k("ffn_in"), ("W1", lp.W1),
                            ("b1", _as_row(lp.b1)), asked),
            _node(k("ffn_act"), [k("ffn_pre")], f"{config.activation}(ffn_pre)",
                  lambda be, i, p: F.activate(be, i[0], config.activation), [("same",)]),
            *V.linear_nodes(MEANINGS, k("ffn_out"), k("ffn_act"), ("W2", lp.W2),
                            ("b2", _as_row(lp.b2)), asked)])
    nodes.append(_add_node(k("resid_mid"), k("x"), k("attn_out")))
    if config.norm == "post":
        nodes += _layernorm_nodes(config, "ln1", L, k("resid_mid"), *ln1)
        stream = k("ln1")
    elif config.norm == "pre":
        nodes += _layernorm_nodes(config, "ln2", L, k("resid_mid"), *ln2)
        stream = k("resid_mid")
    else:
        stream = k("resid_mid")
    ffn_src = k("ln2") if config.norm == "pre" else stream
    nodes.append(_node(k("ffn_in"), [ffn_src], ffn_src[0], _identity("ffn_in"), [("same",)]))
    nodes += V.linear_nodes(MEANINGS, k("ffn_pre"), k("ffn_in"), ("W1", lp.W1),
                            ("b1", _as_row(lp.b1)), asked)
    act = config.activation
    nodes.append(_node(k("ffn_act"), [k("ffn_pre")], f"{act}(ffn_pre)",
                       lambda be, i, p: F.activate(be, i[0], act), [("same",)]))
    nodes += V.linear_nodes(MEANINGS, k("ffn_out"), k("ffn_act"), ("W2", lp.W2),
                            ("b2", _as_row(lp.b2)), asked)
    nodes.append(_add_node(k("resid_post"), stream, k("ffn_out")))
    if config.norm == "post":
        nodes += _layernorm_nodes(config, "ln2", L, k("resid_post"), *ln2)
        nodes.append(_node(k("out"), [k("ln2")], "ln2", _identity("out"), [("same",)]))
    else:
        nodes.append(_node(k("out"), [k("resid_post")], "resid_post", _identity("out"),
                           [("same",)]))
    return nodes


def _bpe_nodes(tok: Tokenization, vocab: tuple[str, ...], unk: str | None) -> list[Node]:
    """One step per learned merge (the pair counts), one per word of the text (its ids)."""
    from ..steps.tokens import lookup

    nodes: list[Node] = []
    for m in tok.merges:
        if not m.pairs:
            continue
        counts = ((tuple(c for _, c in m.pairs)),)
        pairs = ", ".join(f"{a} {b}" for (a, b), _ in m.pairs)
        tie = (f"; tied with {', '.join(f'{a} {b}' for a, b in m.tied)}, which come later"
               if m.tied else "")
        nodes.append(Node(
            key=(f"bpe.merge.{m.rank}", None, None), inputs=(),
            formula=f"count of each adjacent pair ({pairs}); the most frequent, "
                    f"{m.left} {m.right} ({m.count} times), becomes {m.symbol}{tie}",
            fn=lambda be, i, p, counts=counts: tuple(  # type: ignore[misc]
                tuple(be.integer(c) for c in r)
                                                     for r in counts),
            meaning=f"BPE training, merge {m.rank}"))
    for w, enc in enumerate(tok.words):
        ids = lookup(enc.pieces, vocab, unk)
        applied = [r for _, r in enc.stages[1:] if r is not None]
        via = f" (merges {', '.join(map(str, applied))})" if applied else " (no merge applies)"
        nodes.append(Node(
            key=(f"bpe.word.{w}", None, None), inputs=(), formula=enc.chain() + via,
            fn=lambda be, i, p, ids=ids: (  # type: ignore[misc]
                tuple(be.integer(t) for t in ids),),
            meaning=f"BPE encoding of {enc.word!r}: the ids of its pieces"))
    return nodes


def _front_nodes(config: ModelConfig, params: Params, inputs: Inputs) -> list[Node]:
    from ..steps.tokens import lookup

    nodes: list[Node] = []
    n = len(inputs.tokens)
    x0: Key = ("x", 0, None)
    parts: list[Key] = []
    vocab = inputs.vocab or (inputs.tokenization.vocab if inputs.tokenization else ())
    if inputs.tokenization is not None:
        nodes += _bpe_nodes(inputs.tokenization, vocab, inputs.unk)
    if vocab and inputs.tokens and (params.E is not None or inputs.tokenization is not None
                                    or inputs.unk is not None):
        ids = tuple((t,) for t in lookup(inputs.tokens, vocab, inputs.unk))
        nodes.append(_node(("ids", None, None), [], "vocab.index(token)",
                           lambda be, i, p: tuple((be.integer(r[0]),) for r in ids), []))
    if params.E is not None and inputs.vocab:
        table = params.E
        nodes.append(_node(("embed", None, None), [("ids", None, None)], "E[ids]",
                           lambda be, i, p: P.embed(i[0], _req(p, "E")), [("row",)],
                           params=[("E", table)]))
        parts.append(("embed", None, None))
    d = config.d_model or (shape(params.E)[1] if params.E is not None else None)
    if config.positional in ("sinusoidal", "sinusoidal_guide") and d is not None and n:
        guide = config.positional == "sinusoidal_guide"
        base = config.positional_base
        exponent = "j/d" if guide else "2i/d"
        nodes.append(_node(("pos", None, None), [], f"sin/cos(p / base^({exponent}))",
                           lambda be, i, p: P.sinusoidal(be, n, d, base, guide=guide), []))
        parts.append(("pos", None, None))
    elif config.positional == "learned" and params.P is not None and n:
        table_p = params.P
        nodes.append(_node(("pos", None, None), [], "P[0 … n-1]",
                           lambda be, i, p: P.learned(n, _req(p, "P")), [], params=[("P", table_p)]))
        parts.append(("pos", None, None))
    elif config.positional == "rope" and n:
        nodes += _rope_nodes(config, params, inputs)
    if parts == [("embed", None, None), ("pos", None, None)]:
        nodes.append(_add_node(x0, parts[0], parts[1]))
    elif parts and parts[0][0] == "embed":
        nodes.append(_node(x0, parts, "embed", _identity("x"), [("same",)]))
    else:
        nodes.append(Node(key=x0, inputs=(), formula="given", fn=None, meaning=MEANINGS["x"]))
    return nodes


def _rope_nodes(config: ModelConfig, params: Params, inputs: Inputs) -> list[Node]:
    """The angle table shared by every layer and head (``d_head`` from ``W_Q``)."""
    lp = params.layers[0] if params.layers else None
    if lp is None or lp.W_Q is None:
        return []
    d_head = shape(lp.W_Q)[1] // config.heads
    kv = inputs.given.get(("x_kv", None, None))
    rows = max(len(inputs.tokens), len(inputs.kv_tokens), len(kv) if kv else 0)
    base = config.positional_base
    return [_node(("rope_angle", None, None), [], "p / base^(2i/d_head)",
                  lambda be, i, p: P.rope_angles(be, rows, d_head, base), [])]


def _head_nodes(config: ModelConfig, params: Params, last: Key, inputs: Inputs) -> list[Node]:
    """``final``, ``logits`` and the softmax over the vocabulary (SPEC §3)."""
    nodes: list[Node] = []
    g = MODEL_KEY
    has_norm = config.final_norm or params.gamma_f is not None or params.beta_f is not None
    has_head = params.W_U is not None or (config.tie_embeddings and params.E is not None)
    if has_norm or has_head:
        src = last
        if has_norm:
            nodes += _layernorm_nodes(config, "lnf", None, last, ("gamma_f", params.gamma_f),
                                      ("beta_f", params.beta_f))
            src = g("lnf")
        nodes.append(_node(g("final"), [src], src[0], _identity("final"), [("same",)]))
    if config.tie_embeddings and params.E is not None:
        table = params.E
        nodes.append(_node(g("logits"), [g("final")], "final Eᵀ (tied embeddings)",
                           lambda be, i, p: LG.tied(be, i[0], _req(p, "E")), [("row",)],
                           params=[("E", table)]))
    else:
        nodes += V.linear_nodes(MEANINGS, g("logits"), g("final"), ("W_U", params.W_U),
                               ("b_U", _as_row(params.b_U)), inputs.asked)
    if config.head == "sigmoid":
        return nodes + [B.sigmoid_node(g("logits"))] + (
            [B.bce_node(inputs.labels)] if inputs.labels is not None else [])
    temp = config.temperature
    nodes.append(_node(g("scaled_logits"), [g("logits")], "logits / T",
                       lambda be, i, p: LG.scaled_logits(be, i[0], _req(p, "T")[0][0]), [("same",)],
                       params=[("T", ((temp,),))]))
    pre = g("scaled_logits")
    if config.softmax == "sum":
        return nodes + V.sum_normalization(config, pre, g("logit_sum"), g("probs"), MEANINGS,
                                           masked=False)
    if config.softmax == "stable":
        nodes.append(_node(g("shifted_logits"), [pre], "scaled_logits - rowmax(scaled_logits)",
                           lambda be, i, p: LG.shifted_logits(be, i[0]), [("row",)]))
        pre = g("shifted_logits")
    nodes.append(_node(g("exp_logits"), [pre], f"exp({pre[0]})",
                       lambda be, i, p: LG.exp_logits(be, i[0]), [("same",)]))
    nodes.append(_node(g("exp_logits_sum"), [g("exp_logits")], "rowsum(exp_logits)",
                       lambda be, i, p: LG.exp_logits_sum(be, i[0]), [("row",)]))
    nodes.append(_node(g("probs"), [g("exp_logits"), g("exp_logits_sum")],
                       "exp_logits / exp_logits_sum",
                       lambda be, i, p: LG.probs(be, i[0], i[1]), [("same",), ("rowscalar",)]))
    return nodes


def MODEL_KEY(name: str) -> Key:  # noqa: N802 -- reads like a constructor
    """The key of a model-wide node (no layer, no head)."""
    return (name, None, None)


def n_layers(params: Params) -> int:
    """How many blocks the graph has (at least one, for files that give nodes directly)."""
    return max(1, len(params.layers))


def model_nodes(config: ModelConfig, params: Params, inputs: Inputs) -> list[Node]:
    """The transformer's nodes, in evaluation order: the inputs, every block and the head
    (:func:`exacttransformer.graph.forward.build_graph` adds decoding, geometry and training)."""
    nodes = _front_nodes(config, params, inputs)
    kv: Key | None = ("x_kv", None, None) if ("x_kv", None, None) in inputs.given else None
    if kv is not None:
        nodes.insert(0, Node(key=kv, inputs=(), formula="given", fn=None,
                             meaning="the hidden states the keys and values read"))
    elif V.KEY_INPUT in inputs.given:
        kv = V.KEY_INPUT
        nodes[:0] = V.separate_inputs()
    layers = params.layers or (LayerParams(),)
    for layer, lp in enumerate(layers):
        nodes += _layer_nodes(config, layer, lp, kv, inputs.asked, inputs.given)
    nodes += _head_nodes(config, params, ("out", len(layers) - 1, None), inputs)
    return nodes


def run(
    nodes: Sequence[Node],
    config: ModelConfig,
    inputs: Inputs,
    backend: Backend = EXACT,
    patch: Patch | None = None,
    *,
    title: str = "",
    source: str = "",
    guard: Guard | None = None,
) -> Trace:
    """Evaluate ``nodes`` and return the trace of every node that could be computed
    (``guard``: see :func:`exacttransformer.graph.graph.evaluate`)."""
    structured = backend.name == "structured"
    with _structured_pass() if structured else nullcontext():
        steps = evaluate(nodes, inputs.given, backend, patch,
                         guard)
    if structured:
        steps = _for_display(steps)
    return Trace(
        steps=steps, tokens=inputs.tokens, kv_tokens=inputs.kv_tokens, config=config,
        backend=backend.name, title=title, source=source,
        vocab=inputs.vocab or (inputs.tokenization.vocab if inputs.tokenization else ()),
    )


def _req(p: Mapping[str, Matrix | None], name: str) -> Matrix:
    """A parameter the node lists as present (the node only runs when it is)."""
    value = p[name]
    assert value is not None, name
    return value


_PAUSES = [0, False]  # passes running now, and whether the collector was on before the first
_PAUSES_LOCK = threading.Lock()


@contextmanager
def _structured_pass() -> Iterator[None]:
    """Around a structured engine's evaluation.

    The engine makes millions of small objects that live as long as the trace; the cyclic
    collector's passes over them were about a third of a large forward pass, so it is off
    while any structured pass runs (in any thread) and back to its earlier state when the
    last one ends.  The only cycles the engine makes (a sum kept whole caches its atom, whose
    argument is the sum) are collected then.  The row bases shared within the pass are
    dropped at its end.
    """
    from ..exact.rows import forget_rows

    with _PAUSES_LOCK:
        if _PAUSES[0] == 0:
            _PAUSES[1] = gc.isenabled()
            gc.disable()
        _PAUSES[0] += 1
    try:
        yield
    finally:
        forget_rows()
        with _PAUSES_LOCK:
            _PAUSES[0] -= 1
            if _PAUSES[0] == 0 and _PAUSES[1]:
                gc.enable()


def _for_display(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """The structured engine's steps, each showing small values as sympy closed forms.

    The conversion is made when a step's value or operands are first read (a renderer, the
    checker), not here: a caller that reads one node converts one node.  Matrices shared
    between steps are converted once.
    """
    from ..exact.lazy import for_display

    done: dict[int, tuple[Matrix, Matrix]] = {}

    def conv(m: Matrix) -> Matrix:
        hit = done.get(id(m))
        if hit is None or hit[0] is not m:
            hit = (m, tuple(tuple(for_display(x) for x in row) for row in m))
            done[id(m)] = hit
        return hit[1]

    out = []
    for s in steps:
        step = _ShownStep(**{f.name: getattr(s, f.name) for f in fields(Step)})
        step.__dict__["_conv"] = conv
        out.append(step)
    return tuple(out)


class _Shown:
    """A field of :class:`_ShownStep`: the raw structured value is stored, and the display
    form is made on the first read and kept."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __set__(self, obj: Step, value: Any) -> None:
        obj.__dict__["_raw_" + self.name] = value
        obj.__dict__.pop("_shown_" + self.name, None)

    def __get__(self, obj: Step | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        key = "_shown_" + self.name
        if key not in d:
            raw = d["_raw_" + self.name]
            conv = d.get("_conv")
            if conv is None:
                d[key] = raw
            elif self.name == "value":
                d[key] = conv(raw)
            else:
                d[key] = tuple((label, conv(v)) for label, v in raw)
        return d[key]


class _ShownStep(Step):
    """A :class:`Step` of the structured engine whose value and operands are converted for
    display when first read."""

    value = _Shown()  # type: ignore[assignment]
    operands = _Shown()  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        """Equal to any :class:`Step` with the same fields (as shown)."""
        if not isinstance(other, Step):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(Step))

    __hash__ = Step.__hash__
