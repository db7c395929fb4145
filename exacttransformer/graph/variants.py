"""Variants of the block's steps that sources use, as graph nodes (docs/nodes.md).

Layer: orchestration, beside :mod:`.model` (which calls these builders).  Each builder
returns the nodes of one step in one of its written forms:

* :func:`linear_nodes`: ``x W + b`` as one node, or as the product ``x W`` and then ``+ b``
  when a claim names ``<node>_product``;
* :func:`sum_normalization`: ``softmax = "sum"``, each row divided by its sum;
* :func:`separate_inputs`: ``MultiHead(Q, K, V)`` with three different inputs, ``x`` for the
  queries, ``x_k`` for the keys and ``x_v`` for the values;
* :func:`direct_ffn`: ``ffn_input = "attention"``, a feed-forward reading the attention output;
* :func:`contribution_nodes`: the per-key contributions ``weights[i, j] · v[j, :]`` side by
  side (``contrib``, asked for by a claim), and ``z`` as their sum.

``meanings`` is the table of :data:`exacttransformer.graph.model.MEANINGS`, passed in so that
this module does not import the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

from ..errors import InputError
from ..exact.backends.base import Backend
from ..exact.linalg import Matrix, add_bias, shape
from ..steps import attention as A
from .config import ModelConfig
from .graph import Node, StepFn
from .trace import Dep, Key

Param = tuple[str, Matrix | None]


def mask_for(config: ModelConfig, s: Matrix) -> A.Mask:
    """The attention mask for scores ``s`` under ``config.mask``."""
    n, m = shape(s)
    return A.causal_mask(n, m) if config.mask == "causal" else A.full_mask(n, m)


def node(meanings: Mapping[str, str], key: Key, inputs: Sequence[Key], formula: str,
         fn: StepFn, deps: Sequence[Dep], params: Sequence[Param] = (),
         required: Sequence[str] = (), meaning: str | None = None) -> Node:
    """A :class:`~.graph.Node` whose meaning comes from ``meanings`` unless given."""
    return Node(key=key, inputs=tuple(inputs), formula=formula, fn=fn, deps=tuple(deps),
                params=tuple(params), required=tuple(required),
                meaning=meanings.get(key[0], "") if meaning is None else meaning)


def _bias(p: Mapping[str, Matrix | None], name: str) -> tuple[object, ...] | None:
    m = p.get(name)
    return None if m is None else m[0]


def _linear(w: str, b: str | None, be: Backend, ins: Sequence[Matrix],
            p: Mapping[str, Matrix | None]) -> Matrix:
    weight = p[w]
    assert weight is not None
    return A.project(be, ins[0], weight, None if b is None else _bias(p, b))  # type: ignore[arg-type]


def _add_bias(b: str, be: Backend, ins: Sequence[Matrix], p: Mapping[str, Matrix | None]) -> Matrix:
    return add_bias(be, ins[0], _bias(p, b))  # type: ignore[arg-type]


def _plus(term: str, present: object) -> str:
    return f" + {term}" if present is not None else ""


def linear_nodes(meanings: Mapping[str, str], key: Key, src: Key, w: Param, b: Param,
                 asked: frozenset[str]) -> list[Node]:
    """``key = src W + b`` as one node; or, when a claim names ``<name>_product``, the
    product ``src W`` and then ``+ b`` as two (docs/nodes.md: products before the bias)."""
    wn, (bn, bm) = w[0], b
    name = key[0]
    if f"{name}_product" not in asked:
        return [node(meanings, key, [src], f"{src[0]} {wn}{_plus(bn, bm)}",
                     partial(_linear, wn, bn), [("row",)], params=[w, b], required=[wn])]
    prod: Key = (f"{name}_product", key[1], key[2])
    return [
        node(meanings, prod, [src], f"{src[0]} {wn}", partial(_linear, wn, None), [("row",)],
             params=[w], required=[wn],
             meaning=f"the product {src[0]} {wn}, before the bias {bn} is added"),
        node(meanings, key, [prod], f"{prod[0]}{_plus(bn, bm)}", partial(_add_bias, bn),
             [("same",)], params=[b]),
    ]


def sum_normalization(config: ModelConfig, src: Key, total: Key, out: Key,
                      meanings: Mapping[str, str], masked: bool = True) -> list[Node]:
    """``softmax = "sum"``: ``total = rowsum(src)`` and ``out = src / total`` (0 where masked)."""
    def mask(s: Matrix) -> A.Mask:
        return mask_for(config, s) if masked else A.full_mask(*shape(s))

    note = " (0 where masked)" if masked and config.mask == "causal" else ""
    return [
        node(meanings, total, [src], f"rowsum({src[0]}){note}",
             lambda be, i, p: A.masked_sum(be, i[0], mask(i[0])), [("row",)]),
        node(meanings, out, [src, total], f"{src[0]} / {total[0]}{note}",
             lambda be, i, p: A.sum_normalized(be, i[0], i[1], mask(i[0]), src[0]),
             [("same",), ("rowscalar",)],
             meaning=f"each row of {src[0]} divided by its sum (softmax = \"sum\")"),
    ]


def contributions(be: Backend, w: Matrix, v: Matrix) -> Matrix:
    """``contrib[i, j·d + c] = w[i, j] · v[j, c]``: query ``i``'s row holds one block of
    ``d`` columns per key ``j`` (n × m·d).

    >>> from exacttransformer.exact.backends import EXACT
    >>> from sympy import Integer as I, Rational as R
    >>> contributions(EXACT, ((R(1, 4), R(3, 4)),), ((I(1), I(0)), (I(2), I(4))))
    ((1/4, 0, 3/2, 3),)
    """
    return tuple(tuple(be.mul(a, x) for a, vrow in zip(wrow, v, strict=True) for x in vrow)
                 for wrow in w)


def sum_blocks(be: Backend, c: Matrix, d: int) -> Matrix:
    """The sum of the ``d``-wide blocks of each row: ``z`` from its contributions."""
    return tuple(tuple(be.total([row[b * d + j] for b in range(len(row) // d)])
                       for j in range(d)) for row in c)


def contribution_nodes(meanings: Mapping[str, str], layer: int, head: int,
                       d: int) -> list[Node]:
    """``contrib`` (n × m·d) and ``z`` = the sum of its blocks, for one head."""
    def hk(n: str) -> Key:
        return (n, layer, head)

    return [
        node(meanings, hk("contrib"), [hk("weights"), hk("v")],
             "weights[i, j] · v[j, :], one block per key j",
             lambda be, i, p: contributions(be, i[0], i[1]), [("block", d), ("blockrow", d)],
             meaning="what each key adds to the query's output: its weight times its value "
                     "(one block of columns per key)"),
        node(meanings, hk("z"), [hk("contrib")], "Σ_j contrib[:, block j]",
             lambda be, i, p: sum_blocks(be, i[0], d), [("stride", d)]),
    ]


OTHER_ROWS = ("x_kv", "k", "v", "pos", "x_k", "x_v")
"""Given nodes whose rows need not be one per token (keys, values, a positional table)."""

KEY_INPUT: Key = ("x_k", None, None)
VALUE_INPUT: Key = ("x_v", None, None)


def separate_inputs() -> list[Node]:
    """The given ``x_k`` and ``x_v`` (the queries read ``x``, as usual)."""
    return [Node(key=KEY_INPUT, inputs=(), formula="given", fn=None,
                 meaning="the hidden states the keys read (K in MultiHead(Q, K, V))"),
            Node(key=VALUE_INPUT, inputs=(), formula="given", fn=None,
                 meaning="the hidden states the values read (V in MultiHead(Q, K, V))")]


def kv_width(given: Mapping[Key, Matrix]) -> int | None:
    """The width of what the keys and values read (``x_kv``, or ``x_k`` and ``x_v``), after
    checking that ``x_k`` and ``x_v`` come together, with the same shape, without ``x_kv``."""
    k, v = given.get(KEY_INPUT), given.get(VALUE_INPUT)
    if (k is None) != (v is None):
        missing = "x_v" if v is None else "x_k"
        raise InputError("separate key and value inputs need both x_k and x_v",
                         key=f"input.{missing}")
    if k is not None and v is not None:
        if ("x_kv", None, None) in given:
            raise InputError("give x_kv (keys and values read the same) or x_k and x_v, "
                             "not both", key="input.x_kv")
        if shape(k) != shape(v):
            raise InputError(f"x_k is {shape(k)[0]}×{shape(k)[1]} but x_v is "
                             f"{shape(v)[0]}×{shape(v)[1]}: one row per key, of one width",
                             key="input.x_v")
        return shape(k)[1]
    kv = given.get(("x_kv", None, None))
    return None if kv is None else shape(kv)[1]


def direct_ffn(meanings: Mapping[str, str], layer: int, has_w_o: bool,
               ffn: Sequence[Node]) -> list[Node]:
    """``ffn_in`` = the attention output (``attn_out``, or ``concat`` without ``W_O``), the
    feed-forward nodes ``ffn``, and ``out`` = ``ffn_out``: no residual connections, so an
    error in the attention output is carried into the feed-forward."""
    src: Key = ("attn_out" if has_w_o else "concat", layer, None)

    def same(name: str, of: Key) -> Node:
        return node(meanings, (name, layer, None), [of], of[0], lambda be, i, p: i[0],
                    [("same",)])

    return [same("ffn_in", src), *ffn, same("out", ("ffn_out", layer, None))]
