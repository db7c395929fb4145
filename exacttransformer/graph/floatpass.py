"""The forward pass again, in a floating-point format: what a float program would compute.

Layer: test oracle, separate code (like :mod:`exacttransformer.reference`, and never by
running the exact step modules on floats).  :func:`float_pass` walks an exact
:class:`~exacttransformer.trace.Trace` in order and recomputes each node it knows from the
*float* values of its inputs, in one format (float64, float32, bfloat16, float16), with one of
two arithmetics:

``torch`` (when torch is installed)
    tensors of that dtype and torch's own kernels (``@``, ``exp``, ``sum``, ...), as a model
    would run on a CPU; torch may accumulate a half-precision sum or product in float32 before
    rounding, and that is part of what is measured.
``python``
    plain Python floats, every operation rounded to the format at once
    (:func:`exacttransformer.floatformats.round_to`): sums and dot products left to right, one
    rounding per addition and per product (no fused multiply-add), a row mean as that sum
    divided by the width, ``exp``/``erf``/``tanh``/``sin``/``cos`` as :mod:`math` computes
    them in float64, rounded to the format.  Overflow gives infinities, ``0/0`` NaN.

The only nodes not recomputed are the tables a program stores rather than computes (``pos``,
``rope_angle``, ``sqrt_dk``, a numeric ``scale``) and given nodes: they, and every weight, are
the exact values correctly rounded to the format; token ``ids`` stay exact integers.  Nodes past ``probs``
(decoding, the loss, gradients, geometry, BPE) are left out.

>>> from exacttransformer.io.files import load
>>> from exacttransformer.exact.floatformats import FLOAT16
>>> values = float_pass(load("cat").forward(), FLOAT16, "python")
>>> values[("out", 0, None)][1]
[7.0, 10.0, 5.0, 6.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from ..exact import printing as numbers
from ..exact.accuracy import PRECISIONS, enclosure
from ..exact.floatformats import Format, round_to
from .trace import Key, Trace

FloatMatrix = list[list[float]]

ARITHMETICS = ("auto", "torch", "python")

TABLES = frozenset(("pos", "rope_angle", "sqrt_dk"))
"""Nodes a program keeps as stored numbers: rounded from their exact values, not recomputed.
(``ids`` are integers, kept exactly: bfloat16 could not index a row past 256.)"""


def have_torch() -> bool:
    """True when torch can be imported."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def resolve(arithmetic: str) -> str:
    """``auto`` is ``torch`` when torch is installed, else ``python``.

    >>> resolve("python")
    'python'
    """
    if arithmetic not in ARITHMETICS:
        raise ValueError(f"unknown arithmetic {arithmetic!r}; expected one of {ARITHMETICS}")
    if arithmetic == "auto":
        return "torch" if have_torch() else "python"
    return arithmetic


def exact_fraction(x: Any) -> Fraction:
    """An exact rational entry as a Fraction (only called on rational values)."""
    if isinstance(x, int | Fraction):
        return Fraction(x)
    return Fraction(int(x.p), int(x.q))


def rounded(x: Any, fmt: Format) -> float:
    """An exact value (sympy, Lazy, int, Fraction) correctly rounded to ``fmt``.

    A rational value is rounded directly; an irrational one is enclosed at rising precision
    until both ends of the enclosure round to the same value of the format (an irrational
    number is never a halfway point, so this ends).

    >>> import sympy
    >>> from exacttransformer.exact.floatformats import FLOAT16
    >>> rounded(sympy.exp(12), FLOAT16), rounded(sympy.sqrt(2), FLOAT16)
    (inf, 1.4140625)
    """
    if isinstance(x, int | Fraction) or getattr(x, "is_Rational", False):
        return round_to(exact_fraction(x), fmt)
    for prec in PRECISIONS:
        box = enclosure(x, prec)
        if box is not None:
            lo, hi = round_to(box[0], fmt), round_to(box[1], fmt)
            if lo == hi:
                return lo
    return round_to(numbers.to_float(x), fmt)  # pragma: no cover - beyond 3072 bits


# --- the two arithmetics --------------------------------------------------------------------

class PythonFloats:
    """Matrices as lists of Python floats, each operation rounded to the format."""

    name = "python"

    def __init__(self, fmt: Format):
        self.fmt = fmt

    def r(self, x: float) -> float:
        return round_to(x, self.fmt)

    def const(self, m: Sequence[Sequence[Any]]) -> FloatMatrix:
        return [[rounded(x, self.fmt) for x in row] for row in m]

    def tolist(self, m: FloatMatrix) -> FloatMatrix:
        return [list(row) for row in m]

    def ids(self, m: Sequence[Sequence[Any]]) -> FloatMatrix:
        return [[float(int(x)) for x in row] for row in m]

    def shape(self, m: FloatMatrix) -> tuple[int, int]:
        return len(m), len(m[0]) if m else 0

    def _sum(self, xs: Sequence[float]) -> float:
        total = 0.0
        for i, x in enumerate(xs):
            total = x if i == 0 else self.r(total + x)
        return total

    def _div(self, a: float, b: float) -> float:
        if b == 0.0:
            if a == 0.0 or math.isnan(a):
                return math.nan
            return math.copysign(math.inf, a) * math.copysign(1.0, b)
        return self.r(a / b)

    def _exp(self, x: float) -> float:
        try:
            return self.r(math.exp(x))
        except OverflowError:
            return math.inf

    def matmul(self, a: FloatMatrix, b: FloatMatrix) -> FloatMatrix:
        cols = list(zip(*b, strict=True))
        return [[self._sum([self.r(x * y) for x, y in zip(row, col, strict=True)]) for col in cols]
                for row in a]

    def transpose(self, a: FloatMatrix) -> FloatMatrix:
        return [list(c) for c in zip(*a, strict=True)]

    def add(self, a: FloatMatrix, b: FloatMatrix) -> FloatMatrix:
        return [[self.r(x + y) for x, y in zip(ra, rb, strict=True)] for ra, rb in zip(a, b, strict=True)]

    def add_row(self, a: FloatMatrix, row: FloatMatrix) -> FloatMatrix:
        return self.add(a, [row[0]] * len(a))

    def map(self, a: FloatMatrix, f: Callable[[float], float]) -> FloatMatrix:
        return [[f(x) for x in row] for row in a]

    def times(self, a: FloatMatrix, c: FloatMatrix) -> FloatMatrix:
        return self.map(a, lambda x: self.r(x * c[0][0]))

    def divide(self, a: FloatMatrix, c: FloatMatrix) -> FloatMatrix:
        return self.map(a, lambda x: self._div(x, c[0][0]))

    def reciprocal(self, c: FloatMatrix) -> FloatMatrix:
        return [[self._div(1.0, c[0][0])]]

    def shift(self, a: FloatMatrix, allowed: list[list[bool]]) -> FloatMatrix:
        out = []
        for row, ok in zip(a, allowed, strict=True):
            top = max(x for x, keep in zip(row, ok, strict=True) if keep)
            out.append([self.r(x - top) for x in row])
        return out

    def exp(self, a: FloatMatrix, allowed: list[list[bool]]) -> FloatMatrix:
        return [[self._exp(x) if keep else 0.0 for x, keep in zip(row, ok, strict=True)]
                for row, ok in zip(a, allowed, strict=True)]

    def row_sum(self, a: FloatMatrix) -> FloatMatrix:
        return [[self._sum(row)] for row in a]

    def div_rows(self, a: FloatMatrix, s: FloatMatrix) -> FloatMatrix:
        return [[self._div(x, t[0]) for x in row] for row, t in zip(a, s, strict=True)]

    def row_mean(self, a: FloatMatrix) -> FloatMatrix:
        return [[self._div(self._sum(row), float(len(row)))] for row in a]

    def row_var(self, a: FloatMatrix, mu: FloatMatrix) -> FloatMatrix:
        sq = [[self.r(self.r(x - m[0]) ** 2) for x in row] for row, m in zip(a, mu, strict=True)]
        return self.row_mean(sq)

    def normalize(self, a: FloatMatrix, mu: FloatMatrix, var: FloatMatrix, eps: float,
                  gamma: FloatMatrix | None, beta: FloatMatrix | None) -> FloatMatrix:
        out = []
        for row, (m,), (s,) in zip(a, mu, var, strict=True):
            t = self.r(s + eps)
            root = self.r(math.sqrt(t)) if t >= 0 else math.nan
            y = [self._div(self.r(x - m), root) for x in row]
            if gamma is not None:
                y = [self.r(v * g) for v, g in zip(y, gamma[0], strict=True)]
            if beta is not None:
                y = [self.r(v + b) for v, b in zip(y, beta[0], strict=True)]
            out.append(y)
        return out

    def activate(self, a: FloatMatrix, name: str) -> FloatMatrix:
        r = self.r
        half = 0.5
        if name == "relu":
            return self.map(a, lambda x: x if x > 0 else 0.0)
        if name == "gelu":
            root2 = r(math.sqrt(2.0))
            return self.map(a, lambda x: r(r(half * x) * r(1.0 + r(math.erf(self._div(x, root2))))))
        if name == "gelu_tanh":
            c = r(math.sqrt(2.0 / math.pi))
            k = r(0.044715)

            def g(x: float) -> float:
                inner = r(c * r(x + r(k * r(r(x * x) * x))))
                return r(r(half * x) * r(1.0 + r(math.tanh(inner))))
            return self.map(a, g)
        if name == "silu":
            return self.map(a, lambda x: self._div(x, r(1.0 + self._exp(-x))))
        return a

    def hcat(self, parts: Sequence[FloatMatrix]) -> FloatMatrix:
        return [[x for p in row for x in p] for row in zip(*parts, strict=True)]

    def rows(self, table: FloatMatrix, ids: FloatMatrix) -> FloatMatrix:
        return [list(table[int(i[0])]) for i in ids]

    def rope(self, x: FloatMatrix, angles: FloatMatrix) -> FloatMatrix:
        r = self.r
        out = []
        for row, theta in zip(x, angles, strict=True):
            vals: list[float] = []
            for i, t in enumerate(theta[:len(row) // 2]):
                a, b = row[2 * i], row[2 * i + 1]
                c, s = r(math.cos(t)), r(math.sin(t))
                vals += [r(r(a * c) - r(b * s)), r(r(a * s) + r(b * c))]
            out.append(vals)
        return out


class TorchFloats:
    """Matrices as 2-D torch tensors of one dtype, computed with torch's kernels."""

    name = "torch"

    def __init__(self, fmt: Format):
        import torch

        self.torch = torch
        self.fmt = fmt
        self.dtype = getattr(torch, fmt.name)

    def const(self, m: Sequence[Sequence[Any]]) -> Any:
        # Rounded here, exactly, then stored: torch's own float64 -> bfloat16 conversion
        # goes through float32 and can round twice.
        values = [[rounded(x, self.fmt) for x in row] for row in m]
        return self.torch.tensor(values, dtype=self.torch.float64).to(self.dtype)

    def tolist(self, m: Any) -> FloatMatrix:
        out: FloatMatrix = m.to(self.torch.float64).tolist()
        return out

    def ids(self, m: Sequence[Sequence[Any]]) -> Any:
        return self.torch.tensor([[int(x) for x in row] for row in m], dtype=self.torch.long)

    def shape(self, m: Any) -> tuple[int, int]:
        return int(m.shape[0]), int(m.shape[1])

    def _mask(self, allowed: list[list[bool]]) -> Any:
        return self.torch.tensor(allowed, dtype=self.torch.bool)

    def matmul(self, a: Any, b: Any) -> Any:
        return a @ b

    def transpose(self, a: Any) -> Any:
        return a.T

    def add(self, a: Any, b: Any) -> Any:
        return a + b

    def add_row(self, a: Any, row: Any) -> Any:
        return a + row

    def times(self, a: Any, c: Any) -> Any:
        return a * c

    def divide(self, a: Any, c: Any) -> Any:
        return a / c

    def reciprocal(self, c: Any) -> Any:
        return 1 / c

    def shift(self, a: Any, allowed: list[list[bool]]) -> Any:
        hidden = self.torch.full_like(a, -math.inf)
        top = self.torch.where(self._mask(allowed), a, hidden).amax(dim=-1, keepdim=True)
        return a - top

    def exp(self, a: Any, allowed: list[list[bool]]) -> Any:
        return self.torch.where(self._mask(allowed), self.torch.exp(a), self.torch.zeros_like(a))

    def row_sum(self, a: Any) -> Any:
        return a.sum(dim=-1, keepdim=True)

    def div_rows(self, a: Any, s: Any) -> Any:
        return a / s

    def row_mean(self, a: Any) -> Any:
        return a.mean(dim=-1, keepdim=True)

    def row_var(self, a: Any, mu: Any) -> Any:
        return ((a - mu) ** 2).mean(dim=-1, keepdim=True)

    def normalize(self, a: Any, mu: Any, var: Any, eps: float, gamma: Any, beta: Any) -> Any:
        y = (a - mu) / self.torch.sqrt(var + self.torch.tensor(eps, dtype=self.dtype))
        if gamma is not None:
            y = y * gamma
        if beta is not None:
            y = y + beta
        return y

    def activate(self, a: Any, name: str) -> Any:
        f = self.torch.nn.functional
        if name == "relu":
            return self.torch.relu(a)
        if name == "gelu":
            return f.gelu(a)
        if name == "gelu_tanh":
            return f.gelu(a, approximate="tanh")
        if name == "silu":
            return f.silu(a)
        return a

    def hcat(self, parts: Sequence[Any]) -> Any:
        return self.torch.cat(list(parts), dim=-1)

    def rows(self, table: Any, ids: Any) -> Any:
        return table[ids[:, 0]]

    def rope(self, x: Any, angles: Any) -> Any:
        t = angles[:, : x.shape[1] // 2]
        a, b = x[:, 0::2], x[:, 1::2]
        c, s = self.torch.cos(t), self.torch.sin(t)
        return self.torch.stack((a * c - b * s, a * s + b * c), dim=-1).reshape(x.shape)


def arithmetic(fmt: Format, name: str = "auto") -> PythonFloats | TorchFloats:
    """The arithmetic ``name`` (``auto``, ``torch`` or ``python``) in the format ``fmt``."""
    return TorchFloats(fmt) if resolve(name) == "torch" else PythonFloats(fmt)


# --- the nodes ------------------------------------------------------------------------------

def causal(n: int, m: int) -> list[list[bool]]:
    """Query ``i`` reads keys ``0 … i + (m - n)`` (SPEC §3)."""
    return [[j <= i + (m - n) for j in range(m)] for i in range(n)]


def _everywhere(n: int, m: int) -> list[list[bool]]:
    return [[True] * m for _ in range(n)]


Kernel = Callable[[Any, Any, list[Any], Mapping[str, Any], tuple[int, int]], Any]
"""``kernel(arith, config, inputs, params, (rows, cols)) -> value``."""


def _linear(ar: Any, cfg: Any, ins: list[Any], p: Mapping[str, Any], shape: Any) -> Any:
    weights = [v for k, v in p.items() if k.startswith("W")]
    biases = [v for k, v in p.items() if k.startswith("b")]
    if "E" in p:  # tied embeddings: final Eᵀ
        return ar.matmul(ins[0], ar.transpose(p["E"]))
    y = ar.matmul(ins[0], weights[0])
    return ar.add_row(y, biases[0]) if biases else y


def _projection(ar: Any, cfg: Any, ins: list[Any], p: Mapping[str, Any], shape: Any) -> Any:
    if len(ins) == 2:  # RoPE: q_pre/k_pre turned by rope_angle
        return ar.rope(ins[0], ins[1])
    return _linear(ar, cfg, ins, p, shape)


def _attention_mask(cfg: Any, shape: tuple[int, int]) -> list[list[bool]]:
    return causal(*shape) if cfg.mask == "causal" else _everywhere(*shape)


def _norm_out(ar: Any, cfg: Any, ins: list[Any], p: Mapping[str, Any], shape: Any) -> Any:
    gamma = next((v for k, v in p.items() if k.startswith("gamma")), None)
    beta = next((v for k, v in p.items() if k.startswith("beta")), None)
    eps = rounded(cfg.norm_eps, ar.fmt)
    return ar.normalize(ins[0], ins[1], ins[2], eps, gamma, beta)


def _identity_or_sum(ar: Any, cfg: Any, ins: list[Any], p: Mapping[str, Any], shape: Any) -> Any:
    return ins[0] if len(ins) == 1 else ar.add(ins[0], ins[1])


KERNELS: dict[str, Kernel] = {
    "x": _identity_or_sum,
    "attn_in": _identity_or_sum,
    "ffn_in": _identity_or_sum,
    "out": _identity_or_sum,
    "final": _identity_or_sum,
    "resid_mid": _identity_or_sum,
    "resid_post": _identity_or_sum,
    "embed": lambda ar, cfg, i, p, s: ar.rows(p["E"], i[0]),
    "q": _projection, "k": _projection, "v": _projection, "q_pre": _linear, "k_pre": _linear,
    "attn_out": _linear, "ffn_pre": _linear, "ffn_out": _linear, "logits": _linear,
    "scores": lambda ar, cfg, i, p, s: ar.matmul(i[0], ar.transpose(i[1])),
    "scale": lambda ar, cfg, i, p, s: ar.reciprocal(i[0]),
    "scaled_scores": lambda ar, cfg, i, p, s: ar.times(i[0], i[1]),
    "shifted_scores": lambda ar, cfg, i, p, s: ar.shift(i[0], _attention_mask(cfg, s)),
    "exp_scores": lambda ar, cfg, i, p, s: ar.exp(i[0], _attention_mask(cfg, s)),
    "exp_sum": lambda ar, cfg, i, p, s: ar.row_sum(i[0]),
    "weights": lambda ar, cfg, i, p, s: ar.div_rows(i[0], i[1]),
    "z": lambda ar, cfg, i, p, s: ar.matmul(i[0], i[1]),
    "concat": lambda ar, cfg, i, p, s: ar.hcat(i),
    "ffn_act": lambda ar, cfg, i, p, s: ar.activate(i[0], cfg.activation),
    "scaled_logits": lambda ar, cfg, i, p, s: ar.divide(i[0], p["T"]),
    "shifted_logits": lambda ar, cfg, i, p, s: ar.shift(i[0], _everywhere(*s)),
    "exp_logits": lambda ar, cfg, i, p, s: ar.exp(i[0], _everywhere(*s)),
    "exp_logits_sum": lambda ar, cfg, i, p, s: ar.row_sum(i[0]),
    "probs": lambda ar, cfg, i, p, s: ar.div_rows(i[0], i[1]),
}
for _prefix in ("ln1", "ln2", "lnf"):
    KERNELS[f"{_prefix}_mean"] = lambda ar, cfg, i, p, s: ar.row_mean(i[0])
    KERNELS[f"{_prefix}_var"] = lambda ar, cfg, i, p, s: ar.row_var(i[0], i[1])
    KERNELS[_prefix] = _norm_out


def float_pass(trace: Trace, fmt: Format, arithmetic_name: str = "auto") -> dict[Key, FloatMatrix]:
    """Every node of ``trace`` this module computes, in ``fmt``, keyed ``(name, layer, head)``.

    Each value is a list of rows of Python floats, each float exactly a value of ``fmt``
    (or an infinity or NaN).
    """
    ar = arithmetic(fmt, arithmetic_name)
    known: dict[Key, Any] = {}
    for step in trace.steps:
        kernel = KERNELS.get(step.name)
        constant = step.name in TABLES or (step.name == "scale" and not step.inputs)
        if step.name == "ids":
            known[step.key] = ar.ids(step.value)
        elif step.given or constant:
            known[step.key] = ar.const(step.value)
        elif kernel is not None and step.inputs and all(k in known for k in step.inputs):
            ins = [known[k] for k in step.inputs]
            params = {label: ar.const(v) for label, v in step.operands[len(step.inputs):]}
            # The mask's shape is the first input's (every masked node keeps its input's shape);
            # reading step.shape would convert a structured value for display just for it.
            known[step.key] = kernel(ar, trace.config, ins, params, ar.shape(ins[0]))
    return {k: ar.tolist(v) for k, v in known.items()}
