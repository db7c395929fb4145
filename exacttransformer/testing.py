"""An exact oracle for testing your own transformer code (numpy, torch, anything with
``tolist()``), and hypothesis strategies for the small models to test it on.

Layer: reader, for users' test suites.  Not imported by ``import exacttransformer``; it needs
hypothesis (the ``[test]`` extra) for the strategies only, and numpy or torch only for the
``array`` you ask for.

Your implementation is one callable, ``impl(model) -> {node: array}``.  ``model`` is an
:class:`ArrayModel`: the file's settings and every weight as arrays of your dtype (the exact
numbers correctly rounded to it).  It returns the nodes you want compared, each under its
SPEC §3 name (see :func:`expand` for the key forms and shapes).  :func:`compare` checks them in
trace order against the exact trace and reports the first that disagrees, with both numbers;
:func:`assert_matches` raises ``AssertionError`` with that report.

The tolerance of a node is ``SAFETY · u · max(s, a)``: ``u`` the unit roundoff of your dtype,
``s`` the largest magnitude of the node's exact entries or of the terms they are sums of,
carried along the graph (``|x| @ |W| + |b|`` for a projection, ``|a| + |b|`` for a residual:
an entry that cancels to 0 is rounded, and inherits its inputs' errors, at the scale of its
terms), and ``a`` the node's largest absolute
error (proven, against the exact values) in float64 and float32 runs of the same model
(:mod:`exacttransformer.floatpass`, Python floats rounded after every operation), each divided
by its format's unit roundoff.  ``a / s`` is the node's
*measured condition*: how much rounding errors grow on the way to it, for this model.  A value
is reported only when it is proven outside the tolerance (its distance from an interval
enclosure of the exact value exceeds it).

>>> import exacttransformer as et
>>> walk = et.load("cat")
>>> def impl(m):
...     q = [[sum(a * b for a, b in zip(row, col)) for col in zip(*m.layers[0]["W_Q"])]
...          for row in m.x]
...     return {"q": q}
>>> compare(walk, impl, array="list").ok
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any

from .errors import ComputationError, suggest
from .exact import printing as numbers
from .exact.accuracy import PRECISIONS, enclosure
from .exact.floatformats import FLOAT32, FLOAT64, FORMATS, round_to
from .graph.config import ModelConfig
from .graph.floatpass import float_pass, rounded
from .graph.trace import Key, Step, Trace
from .io.files import Walkthrough, loads

SAFETY = 32
"""The factor between the measured float error of a node and its tolerance."""

EXACT_DIGITS = 12
"""Significant digits of the exact value in a failure message."""


# --- the model as arrays ------------------------------------------------------------------

@dataclass(frozen=True)
class ArrayModel:
    """A model's settings and weights as arrays, the argument of your implementation.

    ``x`` is the hidden states entering layer 0 (the exact ones, rounded to your dtype: the
    embedding and positions are not compared), ``x_kv`` what cross-attention keys and values
    read (or ``None``).  ``layers[l]`` maps ``W_Q W_K W_V W_O W1 W2 b_Q b_K b_V b_O b1 b2
    gamma1 beta1 gamma2 beta2`` to arrays or ``None``, row-vector convention (``x @ W``; a
    bias is 1-D); ``W_Q`` holds the heads side by side, head ``h`` owning columns
    ``h·d_head … (h+1)·d_head - 1``.  ``head`` has ``W_U b_U gamma_f beta_f`` and ``E`` (for tied
    embeddings).  ``scale`` is the number the scores are multiplied by, ``eps`` the layer
    norm's epsilon, ``temperature`` the vocabulary softmax's, all rounded to your dtype.
    """

    config: ModelConfig
    dtype: str
    x: Any
    x_kv: Any
    layers: tuple[dict[str, Any], ...]
    head: dict[str, Any]
    scale: float
    eps: float
    temperature: float

    @property
    def heads(self) -> int:
        return self.config.heads

    @property
    def causal(self) -> bool:
        return self.config.mask == "causal"


def _array_factory(array: str, dtype: str) -> Callable[[Any], Any]:
    """``array`` is ``numpy``, ``torch`` or ``list`` (nested lists of Python floats)."""
    if array == "numpy":
        import numpy

        if not hasattr(numpy, dtype):
            raise ValueError(f"numpy has no dtype {dtype!r}; use array='torch'")
        np_dtype = getattr(numpy, dtype)
        return lambda v: numpy.asarray(v, dtype=np_dtype)
    if array == "torch":
        import torch

        torch_dtype = getattr(torch, dtype)
        return lambda v: torch.tensor(v, dtype=torch.float64).to(torch_dtype)
    if array == "list":
        return lambda v: v
    raise ValueError(f"unknown array kind {array!r}; expected numpy, torch or list")


def array_model(walk: Walkthrough, trace: Trace, dtype: str = "float64",
                array: str = "numpy") -> ArrayModel:
    """The :class:`ArrayModel` of a walkthrough (``trace`` is its exact trace)."""
    fmt = FORMATS[dtype]
    make = _array_factory(array, dtype)

    def mat(m: Any) -> Any:
        return None if m is None else make([[rounded(x, fmt) for x in row] for row in m])

    def vec(v: Any) -> Any:
        return None if v is None else make([rounded(x, fmt) for x in v])

    layers = tuple({f.name: (vec if f.name[0] in "bg" else mat)(getattr(lp, f.name))
                    for f in fields(lp)} for lp in walk.params.layers)
    p = walk.params
    head = {"W_U": mat(p.W_U), "b_U": vec(p.b_U), "E": mat(p.E), "gamma_f": vec(p.gamma_f),
            "beta_f": vec(p.beta_f)}
    x = trace.find("x", 0, None)
    kv = trace.find("x_kv", None, None)
    scale = trace.find("scale", 0, None)
    cfg = walk.config
    return ArrayModel(
        config=cfg, dtype=dtype, x=mat(x.value) if x is not None else None,
        x_kv=mat(kv.value) if kv is not None else None, layers=layers, head=head,
        scale=rounded(scale.value[0][0], fmt) if scale is not None else math.nan,
        eps=rounded(cfg.norm_eps, fmt), temperature=rounded(cfg.temperature, fmt))


# --- comparing ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Disagreement:
    """The first entry of your output that is proven outside its node's tolerance."""

    step: Step
    index: tuple[int, int] | None
    yours: float | None
    exact: str
    difference: float
    tolerance: float
    condition: float
    problem: str = ""

    def message(self, dtype: str) -> str:
        where = self.step.label()
        if self.problem:
            return f"node {where}: {self.problem}"
        i, j = self.index or (0, 0)
        return (f"node {where} disagrees with its exact value at entry [{i}, {j}]:\n"
                f"  yours: {self.yours!r} ({dtype})\n"
                f"  exact: {self.exact}\n"
                f"  |difference| = {self.difference:.3g} > tolerance {self.tolerance:.3g} "
                f"({SAFETY} · u · max|terms| · condition {self.condition:.3g}, u = 2^-"
                f"{FORMATS[dtype].precision})")


@dataclass(frozen=True)
class OracleReport:
    """What :func:`compare` found: the nodes compared (trace order) and the first failure."""

    dtype: str
    compared: tuple[Step, ...]
    first: Disagreement | None

    @property
    def ok(self) -> bool:
        return self.first is None

    def message(self) -> str:
        if self.first is None:
            return f"all {len(self.compared)} nodes agree: " + ", ".join(
                s.label() for s in self.compared)
        before = [s.label() for s in self.compared[:self.compared.index(self.first.step)]]
        agreed = ("agreeing before it: " + ", ".join(before)) if before else "the first compared"
        return self.first.message(self.dtype) + "\n" + agreed


def expand(trace: Trace, key: str | tuple[Any, ...], value: Any) -> list[tuple[Step, Any]]:
    """Your output ``value`` under ``key``, as ``(exact step, matrix)`` pairs.

    Keys: ``"name"`` (layer 0, or the model-wide node), ``("name", layer)`` or
    ``("name", layer, head)``.  A per-head node (``q k v scores scaled_scores shifted_scores
    exp_scores exp_sum weights z``) given without a head is every head stacked,
    ``(heads, rows, cols)``, or ``(rows, cols)`` for one head.  Every matrix has the node's
    shape (SPEC §3): ``n × d`` hidden states, ``n × 1`` means, variances and sums (a 1-D
    array of ``n`` is accepted), ``n × m`` scores and weights, ``1 × 1`` ``sqrt_dk`` and
    ``scale``.
    """
    name, layer, head = (key, None, None) if isinstance(key, str) else (tuple(key) + (None, None))[:3]
    steps = [s for s in trace.steps if s.name == name]
    if not steps:
        raise ValueError(f"your output {key!r} names no node of this model; "
                         f"{suggest(str(name), trace.names())}")
    if isinstance(key, str) and steps[0].layer is not None:
        layer = 0
    picked = [s for s in steps if s.layer == layer and (head is None or s.head == head)]
    if not picked:
        raise ValueError(f"your output {key!r}: node {name!r} has no layer {layer} / head {head}")
    data = _tolist(value)
    if picked[0].head is None or head is not None:
        return [(picked[0], data)]
    if len(picked) == 1 and _depth(data) == 2:
        return [(picked[0], data)]
    if _depth(data) != 3 or len(data) != len(picked):
        return [(picked[0], None)]
    return list(zip(picked, data, strict=True))


def _tolist(value: Any) -> Any:
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    return value.tolist() if hasattr(value, "tolist") else value


def _depth(data: Any) -> int:
    d = 0
    while isinstance(data, list | tuple):
        if not data:
            return d + 1
        data, d = data[0], d + 1
    return d


def _as_matrix(step: Step, data: Any) -> list[list[float]] | None:
    rows, cols = step.shape
    if data is None:
        return None
    if _depth(data) == 1 and (cols == 1 or rows == 1) and len(data) == rows * cols:
        data = [[v] for v in data] if cols == 1 else [list(data)]
    if _depth(data) != 2 or len(data) != rows or any(len(r) != cols for r in data):
        return None
    return [[float(v) for v in r] for r in data]


def _shape_of(data: Any) -> str:
    shape = []
    while isinstance(data, list | tuple):
        shape.append(len(data))
        data = data[0] if data else None
    return "×".join(map(str, shape)) or "a scalar"


MEASURED = (FLOAT64, FLOAT32)
"""The formats of the runs that measure each node's condition."""


Box = tuple[Fraction, Fraction]


def _box(x: Any) -> Box:
    """An enclosure ``(lo, hi)`` of an exact entry (one interval evaluation, 128 bits or more)."""
    for prec in (128,) + PRECISIONS[2:]:
        box = enclosure(x, prec)
        if box is not None:
            return box
    raise ComputationError(f"cannot enclose {str(x)[:60]}")


def _far(f: float, box: Box) -> Fraction | None:
    """A proven upper bound on ``|f - x|`` for ``x`` in ``box`` (``None`` for inf or NaN)."""
    if not math.isfinite(f):
        return None
    return max(abs(Fraction(f) - box[0]), abs(Fraction(f) - box[1]))


def _near(f: float, box: Box) -> Fraction:
    """A proven lower bound on ``|f - x|`` for ``x`` in ``box``."""
    q = Fraction(f)
    return Fraction(0) if box[0] <= q <= box[1] else min(abs(q - box[0]), abs(q - box[1]))


def _abs_product(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> list[list[float]]:
    """``|a| @ |b|``."""
    cols = list(zip(*b, strict=True))
    return [[math.fsum(abs(x * y) for x, y in zip(row, col, strict=True)) for col in cols]
            for row in a]


def _magnitudes(trace: Trace, run: Mapping[Key, Any]) -> dict[Key, list[list[float]]]:
    """For each node, bounds on the size of the terms its entries are sums of, carried along
    the graph: ``M(x) @ |W| + |b|`` for a projection, ``M(a) + M(b)`` for a residual,
    ``M(q) @ M(k)ᵀ``, ``|weights| @ M(v)``; other nodes their float64 values' magnitudes.  An
    entry that cancels to (nearly) 0 is still computed from terms this large, and rounds (and
    inherits its inputs' rounding errors) at their scale."""
    out: dict[Key, list[list[float]]] = {}
    for step in trace.steps:
        value = run.get(step.key)
        if value is None:
            continue
        own = [[abs(x) for x in r] for r in value]
        ins = [out.get(k) for k in step.inputs]
        m = own
        if step.inputs and all(v is not None for v in ins):
            i0 = ins[0]
            assert i0 is not None
            params = {label: [[abs(rounded(x, FLOAT64)) for x in r] for r in mat]
                      for label, mat in step.operands[len(step.inputs):]}
            weight = next((w for label, w in params.items() if label.startswith("W")), None)
            bias = next((b for label, b in params.items() if label.startswith("b")), None)
            if len(ins) == 1 and step.name in ("x", "attn_in", "ffn_in", "out", "final", "concat"):
                m = i0
            elif step.name == "concat":
                m = [[x for part in row for x in part] for row in zip(*ins, strict=True)]
            elif len(ins) == 2 and step.name in ("x", "resid_mid", "resid_post"):
                m = [[x + y for x, y in zip(ra, rb, strict=True)]
                     for ra, rb in zip(i0, ins[1] or [], strict=True)]
            elif step.name == "scores":
                m = _abs_product(i0, list(zip(*(ins[1] or []), strict=True)))
            elif step.name == "z":
                m = _abs_product(i0, ins[1] or [])
            elif step.name == "logits" and "E" in params:
                m = _abs_product(i0, list(zip(*params["E"], strict=True)))
            elif weight is not None and len(ins) == 1 and step.name != "embed":
                m = _abs_product(i0, weight)
                if bias is not None:
                    m = [[x + b for x, b in zip(r, bias[0], strict=True)] for r in m]
        out[step.key] = [[max(a, b) for a, b in zip(ra, rb, strict=True)]
                         for ra, rb in zip(m, own, strict=True)]
    return out


def _tolerance(step: Step, boxes: list[list[Box]], runs: list[dict[Key, Any]],
               terms: list[list[float]] | None, u: Fraction) -> tuple[Fraction, float]:
    """The node's tolerance and its measured condition."""
    s = max((max(abs(b[0]), abs(b[1])) for r in boxes for b in r), default=Fraction(0))
    top = max((x for r in terms or [] for x in r), default=0.0)
    s = max(s, Fraction(top) if math.isfinite(top) else Fraction(0))
    a = Fraction(0)
    for fmt, run in zip(MEASURED, runs, strict=True):
        values = run.get(step.key)
        if values is None:
            continue
        errs = [_far(f, b) for br, fr in zip(boxes, values, strict=True)
                for b, f in zip(br, fr, strict=True)]
        if all(e is not None for e in errs):
            a = max([a] + [e / fmt.unit_roundoff for e in errs if e is not None])
    condition = float(a / s) if s else (math.inf if a else 1.0)
    return SAFETY * u * max(s, a), max(condition, 1.0)


def _first_off(step: Step, mine: list[list[float]], boxes: list[list[Box]],
               tol: Fraction, condition: float) -> Disagreement | None:
    for i, (r, br) in enumerate(zip(mine, boxes, strict=True)):
        for j, (y, b) in enumerate(zip(r, br, strict=True)):
            d = _near(y, b) if math.isfinite(y) else None
            if d is None or d > tol:
                x = step.value[i][j]
                shown = numbers.to_sig(x, EXACT_DIGITS)
                form = numbers.format_exact(x)
                exact = shown if len(form) > 40 or form == shown else f"{shown} (= {form})"
                diff = math.inf if d is None else float(d)
                return Disagreement(step, (i, j), y, exact, diff, float(tol), condition)
    return None


def compare(walk: Walkthrough | str, impl: Callable[[ArrayModel], Mapping[Any, Any]],
            dtype: str = "float64", array: str = "numpy", *, trace: Trace | None = None,
            engine: str | None = "structured") -> OracleReport:
    """Run ``impl`` on the model as arrays and compare each node it returns with the exact
    trace, in trace order; the report names the first node that disagrees.

    ``walk`` is a :class:`Walkthrough` or TOML text; ``array`` is ``numpy``, ``torch`` or
    ``list``; ``dtype`` one of float64, float32, bfloat16 (torch only), float16.  The exact
    trace is computed by the structured engine unless you pass ``trace`` or ``engine``: its
    values are the same as sympy's, and it is fast on every small model.
    """
    if isinstance(walk, str):
        walk = loads(walk)
    if dtype not in FORMATS:
        raise ValueError(f"unknown dtype {dtype!r}; {suggest(dtype, list(FORMATS))}")
    trace = trace if trace is not None else walk.forward(engine=engine)
    outputs = impl(array_model(walk, trace, dtype, array))
    pairs = [pair for key, value in outputs.items() for pair in expand(trace, key, value)]
    order = {s.key: n for n, s in enumerate(trace.steps)}
    pairs.sort(key=lambda p: order[p[0].key])
    runs = [float_pass(trace, fmt, "python") for fmt in MEASURED]
    terms = _magnitudes(trace, runs[0])
    u = FORMATS[dtype].unit_roundoff
    compared: list[Step] = []
    for step, data in pairs:
        compared.append(step)
        mine = _as_matrix(step, data)
        if mine is None:
            rows, cols = step.shape
            problem = f"your output has shape {_shape_of(data)}, the node is {rows}×{cols}"
            first = Disagreement(step, None, None, "", math.inf, 0.0, 1.0, problem)
            return OracleReport(dtype, tuple(compared), first)
        boxes = [[_box(x) for x in row] for row in step.value]
        tol, condition = _tolerance(step, boxes, runs, terms.get(step.key), u)
        off = _first_off(step, mine, boxes, tol, condition)
        if off is not None:
            return OracleReport(dtype, tuple(compared), off)
    return OracleReport(dtype, tuple(compared), None)


def assert_matches(walk: Walkthrough | str, impl: Callable[[ArrayModel], Mapping[Any, Any]],
                   dtype: str = "float64", array: str = "numpy", **kw: Any) -> OracleReport:
    """:func:`compare`, raising ``AssertionError`` with the report when a node disagrees."""
    report = compare(walk, impl, dtype, array, **kw)
    if not report.ok:
        raise AssertionError(report.message())
    return report


def round_like(x: float, dtype: str) -> float:
    """``x`` rounded to ``dtype`` (for writing an implementation in plain Python floats)."""
    return round_to(x, FORMATS[dtype])


__all__ = ["ArrayModel", "Disagreement", "OracleReport", "SAFETY", "array_model", "assert_matches",
           "compare", "expand", "model_files", "models", "round_like"]


def _strategies() -> Any:
    from . import modelfiles

    return modelfiles


def model_files(*args: Any, **kwargs: Any) -> Any:
    """Hypothesis strategy: the TOML text of a small random model (see
    :func:`exacttransformer.modelfiles.model_files`)."""
    return _strategies().model_files(*args, **kwargs)


def models(*args: Any, **kwargs: Any) -> Any:
    """Hypothesis strategy: a small random model, loaded (a :class:`Walkthrough`)."""
    return _strategies().models(*args, **kwargs)
