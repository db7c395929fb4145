"""Frozen weights: one :class:`LayerParams` per block, plus the model-wide tables.

Layer: records.  Shapes are checked once, by :func:`check_shapes`, with messages that name
both matrices and their shapes.  Weights are row-vector convention (``d_in × d_out``);
the file loader has already transposed a ``vectors = "column"`` file.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import InputError
from ..exact.linalg import Matrix, Vector, shape
from .config import ModelConfig

LAYER_MATRICES = ("W_Q", "W_K", "W_V", "W_O", "W1", "W2")
LAYER_VECTORS = ("b_Q", "b_K", "b_V", "b_O", "b1", "b2", "gamma1", "beta1", "gamma2", "beta2")
MODEL_MATRICES = ("E", "P", "W_U")
MODEL_VECTORS = ("b_U", "gamma_f", "beta_f")


@dataclass(frozen=True)
class LayerParams:
    """One block's weights; any may be absent (``None``)."""

    W_Q: Matrix | None = None
    W_K: Matrix | None = None
    W_V: Matrix | None = None
    W_O: Matrix | None = None
    W1: Matrix | None = None
    W2: Matrix | None = None
    b_Q: Vector | None = None
    b_K: Vector | None = None
    b_V: Vector | None = None
    b_O: Vector | None = None
    b1: Vector | None = None
    b2: Vector | None = None
    gamma1: Vector | None = None
    beta1: Vector | None = None
    gamma2: Vector | None = None
    beta2: Vector | None = None

    def present(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


@dataclass(frozen=True)
class Params:
    """All weights of a model."""

    layers: tuple[LayerParams, ...] = ()
    E: Matrix | None = None
    P: Matrix | None = None
    W_U: Matrix | None = None
    b_U: Vector | None = None
    gamma_f: Vector | None = None
    beta_f: Vector | None = None


def _dims(m: Matrix) -> str:
    r, c = shape(m)
    return f"{r}×{c}"


def check_shapes(
    params: Params,
    config: ModelConfig,
    d_model: int | None,
    d_kv: int | None,
    where: str = "weights",
    multi: bool = False,
) -> None:
    """Refuse weights that do not fit together, naming both sides and their shapes.

    ``d_model`` is the width of the hidden states (``None`` when unknown), ``d_kv`` the
    width of ``x_kv`` for cross-attention.
    """
    for n, layer in enumerate(params.layers):
        prefix = f"layers[{n}]" if multi else where
        _check_layer(layer, config, d_model, d_kv if d_kv is not None else d_model, prefix)


def _need(cond: bool, key: str, message: str) -> None:
    if not cond:
        raise InputError(message, key=key)


def _check_layer(
    p: LayerParams, config: ModelConfig, d: int | None, d_kv: int | None, prefix: str
) -> None:
    h = config.heads
    attn = [n for n in ("W_Q", "W_K", "W_V") if getattr(p, n) is not None]
    if attn and len(attn) < 3:
        missing = [n for n in ("W_Q", "W_K", "W_V") if getattr(p, n) is None]
        raise InputError(
            f"attention needs W_Q, W_K and W_V; {', '.join(attn)} given but not {', '.join(missing)}",
            key=f"{prefix}.{missing[0]}",
        )
    if (p.W1 is None) != (p.W2 is None):
        absent = "W1" if p.W1 is None else "W2"
        raise InputError("a feed-forward network needs both W1 and W2", key=f"{prefix}.{absent}")
    direct = config.ffn_input == "attention"  # the feed-forward reads the attention output
    if attn and p.W1 is not None and p.W_O is None and not direct:
        raise InputError(
            "the block has attention and a feed-forward network but no output projection W_O "
            "to join them", key=f"{prefix}.W_O",
        )
    if p.W_Q is not None and p.W_K is not None and p.W_V is not None:
        q, k, v = shape(p.W_Q), shape(p.W_K), shape(p.W_V)
        if d is not None:
            _need(q[0] == d, f"{prefix}.W_Q",
                  f"W_Q is {_dims(p.W_Q)} but x has {d} columns: W_Q needs {d} rows")
        if d_kv is not None:
            _need(k[0] == d_kv, f"{prefix}.W_K",
                  f"W_K is {_dims(p.W_K)} but the keys read {d_kv} columns: W_K needs {d_kv} rows")
            _need(v[0] == d_kv, f"{prefix}.W_V",
                  f"W_V is {_dims(p.W_V)} but the values read {d_kv} columns: W_V needs {d_kv} rows")
        _need(q[1] == k[1], f"{prefix}.W_K",
              f"W_Q is {_dims(p.W_Q)} and W_K is {_dims(p.W_K)}: they need the same number of columns")
        for name, cols in (("W_Q", q[1]), ("W_V", v[1])):
            _need(cols % h == 0, f"{prefix}.{name}",
                  f"{name} has {cols} columns, which {h} heads cannot split evenly")
        if p.W_O is not None:
            o = shape(p.W_O)
            _need(o[0] == v[1], f"{prefix}.W_O",
                  f"W_O is {_dims(p.W_O)} but concat (heads · d_v) has {v[1]} columns: W_O needs {v[1]} rows")
            if d is not None and p.W1 is not None and not direct:
                _need(o[1] == d, f"{prefix}.W_O",
                      f"W_O is {_dims(p.W_O)} but the residual stream has {d} columns")
    if p.W1 is not None and p.W2 is not None:
        w1, w2 = shape(p.W1), shape(p.W2)
        reads = d
        if direct and p.W_V is not None:
            reads = shape(p.W_O)[1] if p.W_O is not None else shape(p.W_V)[1]
        if reads is not None and p.W_Q is not None:
            _need(w1[0] == reads, f"{prefix}.W1", f"W1 is {_dims(p.W1)} but the feed-forward "
                                                  f"reads {reads} columns: W1 needs {reads} rows")
        _need(w2[0] == w1[1], f"{prefix}.W2",
              f"W1 is {_dims(p.W1)} and W2 is {_dims(p.W2)}: W2 needs {w1[1]} rows")
    widths = {
        "b_Q": p.W_Q, "b_K": p.W_K, "b_V": p.W_V, "b_O": p.W_O, "b1": p.W1, "b2": p.W2,
    }
    for bias, w in widths.items():
        b = getattr(p, bias)
        if b is not None:
            _need(w is not None, f"{prefix}.{bias}", f"{bias} is given without its weight matrix")
            assert w is not None
            _need(len(b) == shape(w)[1], f"{prefix}.{bias}",
                  f"{bias} has {len(b)} entries but {_matrix_of(bias)} is {_dims(w)}: "
                  f"it needs {shape(w)[1]}")
    for vec in ("gamma1", "beta1", "gamma2", "beta2"):
        g = getattr(p, vec)
        if g is not None and d is not None:
            _need(len(g) == d, f"{prefix}.{vec}",
                  f"{vec} has {len(g)} entries but the hidden states have {d} columns")


def _matrix_of(bias: str) -> str:
    return {"b_Q": "W_Q", "b_K": "W_K", "b_V": "W_V", "b_O": "W_O", "b1": "W1", "b2": "W2"}[bias]
