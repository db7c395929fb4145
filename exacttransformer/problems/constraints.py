"""What makes a variant's numbers nice, declared per topic and checked on the exact trace.

Layer: a reader of traces.  Every :class:`Constraint` reads the trace of the variant's
walkthrough file (never the generator's own numbers), so a variant is accepted only when
the engine itself shows the property.  Comparisons are exact for rationals; for
expressions with ``exp``, ``sqrt`` or ``sin`` they are proven, by
:func:`exacttransformer.numbers.sign` or from certified decimals
(:func:`exacttransformer.numbers.to_fixed`) with the error bound taken against the
property, so a borderline value is refused rather than let through.

The constraints (their ``name`` in brackets):

- small integer entries: every given matrix and weight is a whole number in ``[-n, n]``
  [``small_entries``];
- integer intermediates within the difficulty's bound [``integers``]; simple rationals
  (bounded, with a bounded denominator) [``rationals``]; other intermediates bounded
  [``bounded``];
- no ties in attention scores [``no_ties``]; value rows not all equal [``values_differ``];
- at least one ReLU input negative, and one positive, in the asked row [``relu_mixed``];
- ``d_head`` a perfect square when rational scaled scores are wanted [``square_d_head``];
- layer-norm variances that are perfect squares when exact roots are wanted
  [``square_variance``];
- exact answers that are terminating decimals [``terminating``]; rounded answers clear of
  a rounding tie [``clear_rounding``]; no attention weight or probability that rounds to
  0 [``visible``]; top-p sums clear of ``p`` [``clear_top_p``]; sinusoid angles that are
  rational [``rational_angles``]; heads that attend differently [``heads_differ``].

:func:`conflicts` names settings no variant could satisfy (``d_head`` 2 with rational
scaled scores, attention over a single token, an odd sinusoid width, …) before any
search starts.

>>> from exacttransformer.problems.topics import TOPICS
>>> [c.name for c in declared(TOPICS["scores"], TOPICS["scores"].shape("easy"))][:3]
['small_entries', 'square_d_head', 'integers']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import sympy

from ..exact.printing import compare, format_exact, sign, to_fixed
from ..graph.params import LAYER_MATRICES, LAYER_VECTORS, MODEL_MATRICES, MODEL_VECTORS
from ..graph.trace import Step, Trace
from .specs import ConstraintError, Draft, PartSpec, Shape, Topic

__all__ = ["Constraint", "ConstraintError", "Context", "conflicts", "declared", "fixed"]

PARAMS = frozenset(LAYER_MATRICES + LAYER_VECTORS + MODEL_MATRICES + MODEL_VECTORS)

NICE_ROOTS = (1, 2, 4)
"""√d_head values that keep scaled scores terminating decimals and hand-sized (d_head 1, 4, 16)."""


@dataclass(frozen=True)
class Context:
    """What a check reads: the exact trace, the draft it came from, the parts asked."""

    trace: Trace
    draft: Draft
    shape: Shape
    parts: tuple[PartSpec, ...]
    final: bool = True


Check = Callable[[Context], "str | None"]


@dataclass(frozen=True)
class Constraint:
    """A named property of a variant; ``check`` returns ``None`` or what is wrong."""

    name: str
    text: str
    nodes: tuple[str, ...]
    test: Check

    def check(self, ctx: Context) -> str | None:
        names = set(ctx.trace.names())
        missing = [n for n in self.nodes if n not in names]
        if missing:
            return f"{', '.join(missing)} not computed" if ctx.final else None
        return self.test(ctx)


# --------------------------------------------------------------------------- helpers


def steps(trace: Trace, name: str) -> list[Step]:
    """Every step of that name (each head, each layer)."""
    return [s for s in trace.steps if s.name == name]


def _where(step: Step, i: int, trace: Trace) -> str:
    head = f", head {step.head}" if step.head else ""
    token = trace.tokens[i] if len(step.value) == len(trace.tokens) else str(i)
    return f"{step.name}[{token}{head}]"


def _rows(ctx: Context, step: Step, asked_only: bool) -> Iterable[int]:
    if asked_only and len(step.value) == len(ctx.trace.tokens):
        return (ctx.draft.row,)
    return range(len(step.value))


def _is_int(x: sympy.Expr) -> bool:
    return bool(getattr(x, "is_Integer", False))


def _is_rational(x: sympy.Expr) -> bool:
    return bool(getattr(x, "is_Rational", False))


def _fraction(x: sympy.Expr) -> Fraction:
    return Fraction(int(x.p), int(x.q))  # type: ignore[attr-defined]


@lru_cache(maxsize=65536)
def fixed(x: sympy.Expr, d: int) -> str:
    """``x`` to ``d`` decimals, certified; cached, as the checks, the key and the quiz
    print the same numbers."""
    return to_fixed(x, d)


def _approx(x: sympy.Expr, d: int) -> Fraction:
    """A certified decimal of ``x`` with ``d`` decimals: within half of 10^-d of it."""
    return Fraction(fixed(x, d))


def _abs_le(x: sympy.Expr, bound: Fraction | int, d: int = 4) -> bool:
    """``|x| <= bound``: exact for rationals; otherwise proven from a certified decimal
    (conservatively: a value within 10^-d of the bound counts as too large)."""
    if _is_rational(x):
        return abs(_fraction(x)) <= bound
    return abs(_approx(x, d)) + Fraction(1, 10 ** d) <= bound


def _at_least(x: sympy.Expr, least: Fraction, d: int = 4) -> bool:
    """``x >= least``, exact for rationals, proven (conservatively) otherwise."""
    if _is_rational(x):
        return _fraction(x) >= least
    return _approx(x, d) - Fraction(1, 10 ** d) >= least


def _part_values(ctx: Context, part: PartSpec) -> list[tuple[str, sympy.Expr]]:
    step = ctx.trace.find(part.node, part.layer, part.head)
    if step is None:
        return []
    rows = [ctx.draft.row] if part.row and len(step.value) == len(ctx.trace.tokens) else \
        range(len(step.value))
    return [(f"{_where(step, i, ctx.trace)}[{j}]", x)
            for i in rows for j, x in enumerate(step.value[i])]


# --------------------------------------------------------------------------- the checks


def small_entries(bound: int) -> Constraint:
    """Every given matrix and weight: whole numbers in ``[-bound, bound]``."""
    def test(ctx: Context) -> str | None:
        for s in ctx.trace.steps:
            operands = list(s.operands if not s.given else ((s.name, s.value),))
            for name, m in operands:
                if not s.given and name not in PARAMS:
                    continue
                for row in m:
                    for x in row:
                        if not (_is_rational(x) and _abs_le(x, bound)):
                            return f"{name} has {format_exact(x)}"
                        if not _is_int(x) and not ctx.shape.halves:
                            return f"{name} has {format_exact(x)}, not a whole number"
        return None
    return Constraint("small_entries", f"small entries: given numbers are whole numbers from "
                      f"-{bound} to {bound}", (), test)


def integers(names: Sequence[str], bound: int) -> Constraint:
    """Every entry of these nodes is a whole number of size at most ``bound``."""
    def test(ctx: Context) -> str | None:
        for name in names:
            for s in steps(ctx.trace, name):
                for i, row in enumerate(s.value):
                    for x in row:
                        if not _is_int(x) or abs(int(x)) > bound:
                            return f"{_where(s, i, ctx.trace)} has {format_exact(x)}"
        return None
    return Constraint("integers", f"whole-number {', '.join(names)} of size at most {bound}",
                      tuple(names), test)


def rationals(names: Sequence[str], bound: int, max_den: int) -> Constraint:
    """Rational entries of size at most ``bound`` with denominators at most ``max_den``."""
    def test(ctx: Context) -> str | None:
        for name in names:
            for s in steps(ctx.trace, name):
                for i, row in enumerate(s.value):
                    for x in row:
                        if not _is_rational(x):
                            return f"{_where(s, i, ctx.trace)} has {format_exact(x)}, not rational"
                        f = _fraction(x)
                        if abs(f) > bound or f.denominator > max_den:
                            return f"{_where(s, i, ctx.trace)} has {f}"
        return None
    return Constraint("rationals", f"simple rational {', '.join(names)} (size at most {bound}, "
                      f"denominator at most {max_den})", tuple(names), test)


def bounded(names: Sequence[str], bound: int) -> Constraint:
    """Entries (exact, perhaps irrational) of size at most ``bound`` in the asked row."""
    def test(ctx: Context) -> str | None:
        for name in names:
            for s in steps(ctx.trace, name):
                for i in _rows(ctx, s, True):
                    for x in s.value[i]:
                        if not _abs_le(x, bound, ctx.shape.decimals + 2):
                            return f"{_where(s, i, ctx.trace)} ≈ {fixed(x, 2)}"
        return None
    return Constraint("bounded", f"{', '.join(names)} of size at most {bound}", tuple(names),
                      test)


def no_ties(name: str) -> Constraint:
    """No two equal entries in the asked row of ``name`` (every head)."""
    def test(ctx: Context) -> str | None:
        for s in steps(ctx.trace, name):
            for i in _rows(ctx, s, True):
                row = s.value[i]
                for a in range(len(row)):
                    for b in range(a + 1, len(row)):
                        if compare(row[a], row[b]) == 0:
                            return f"{_where(s, i, ctx.trace)} has {format_exact(row[a])} twice"
        return None
    return Constraint("no_ties", f"no ties: the entries of the asked row of {name} differ", (name,),
                      test)


def values_differ() -> Constraint:
    """The value rows are not all equal (otherwise attention changes nothing)."""
    def test(ctx: Context) -> str | None:
        for s in steps(ctx.trace, "v"):
            if len(set(s.value)) < 2:
                return f"every value row is {[format_exact(x) for x in s.value[0]]}"
        return None
    return Constraint("values_differ", "value rows not all equal", ("v",), test)


def heads_differ() -> Constraint:
    """The heads give the asked token different attention weights.  Softmax rows are equal
    exactly when their scores differ by a constant, so the scaled scores decide it (cheap
    and exact, where comparing the weights themselves could need a proof of equality)."""
    def test(ctx: Context) -> str | None:
        rows = [s.value[ctx.draft.row] for s in steps(ctx.trace, "scaled_scores")]
        shapes = [[x - r[0] for x in r] for r in rows]
        for a in range(len(rows)):
            for b in range(a + 1, len(rows)):
                if all(compare(x, y) == 0 for x, y in zip(shapes[a], shapes[b], strict=True)):
                    return f"heads {a} and {b} give the same weights"
        return None
    return Constraint("heads_differ", "the heads attend differently", ("scaled_scores",), test)


def relu_mixed(margin: Fraction) -> Constraint:
    """In the asked row, some ReLU input is negative and some positive, and none is within
    ``margin`` of 0 (so rounding cannot change which side of 0 it is on)."""
    def test(ctx: Context) -> str | None:
        step = ctx.trace.find("ffn_pre", 0, None)
        assert step is not None
        row = step.value[ctx.draft.row]
        signs = [sign(x) for x in row]
        if -1 not in signs:
            return f"no negative ReLU input for “{ctx.draft.token}”"
        if 1 not in signs:
            return f"no positive ReLU input for “{ctx.draft.token}”"
        if margin and any(x != 0 and _abs_le(x, margin, ctx.shape.decimals + 2) for x in row):
            return f"a ReLU input of “{ctx.draft.token}” is within {margin} of 0"
        return None
    text = "at least one ReLU input negative and one positive" + (
        f", none within {margin} of 0" if margin else "")
    return Constraint("relu_mixed", text, ("ffn_pre",), test)


def square_d_head() -> Constraint:
    """``√d_head`` is rational: the scaled scores stay rational."""
    def test(ctx: Context) -> str | None:
        for s in steps(ctx.trace, "sqrt_dk"):
            x = s.value[0][0]
            if not _is_rational(x):
                return f"√d_head = {format_exact(x)} is irrational"
        return None
    return Constraint("square_d_head", "d_head a perfect square (rational scaled scores)",
                      ("sqrt_dk",), test)


def square_variance(prefix: str) -> Constraint:
    """Every row's variance is the square of a rational (exact roots)."""
    def test(ctx: Context) -> str | None:
        for s in steps(ctx.trace, f"{prefix}_var"):
            for i, row in enumerate(s.value):
                x = row[0]
                if not _is_rational(x) or not _is_rational(sympy.sqrt(x)):
                    return f"{_where(s, i, ctx.trace)} = {format_exact(x)} is not a perfect square"
        return None
    return Constraint("square_variance", "layer-norm variances that are perfect squares",
                      (f"{prefix}_var",), test)


def terminating(digits: int = 3) -> Constraint:
    """Every exact answer is a terminating decimal with at most ``digits`` decimals."""
    def test(ctx: Context) -> str | None:
        for part in ctx.parts:
            if part.form != "exact":
                continue
            for where, x in _part_values(ctx, part):
                if not _is_rational(x) or (_fraction(x) * 10 ** digits).denominator != 1:
                    return f"{where} = {format_exact(x)} is not a short terminating decimal"
        return None
    nodes = ()
    return Constraint("terminating", f"exact answers are terminating decimals (at most {digits} "
                      "decimals)", nodes, test)


def clear_rounding(margin: Fraction) -> Constraint:
    """Every rounded answer is at least ``margin`` units of its last decimal away from a
    rounding tie, so a student's correctly carried digits round the same way.

    The exact value is printed (certified) with two more decimals; that print is within
    1/200 of a unit of it, so requiring the print to be ``margin + 1/200`` units from the
    tie proves the exact value is at least ``margin`` from it."""
    def test(ctx: Context) -> str | None:
        d = ctx.shape.decimals
        for part in ctx.parts:
            if part.form != "decimals":
                continue
            for where, x in _part_values(ctx, part):
                if _is_rational(x) and (_fraction(x) * 10 ** d).denominator == 1:
                    continue
                units = _approx(x, d + 2) * 10 ** d
                gap = abs(abs(units - math.floor(units)) - Fraction(1, 2))
                if gap < margin + Fraction(1, 200):
                    return f"{where} ≈ {fixed(x, d + 2)} is too close to a rounding tie"
        return None
    return Constraint("clear_rounding", f"rounded answers at least {margin} of a unit from a "
                      "rounding tie", (), test)


def visible(name: str, least: Fraction) -> Constraint:
    """Every entry of the asked row of ``name`` is at least ``least``."""
    def test(ctx: Context) -> str | None:
        for s in steps(ctx.trace, name):
            for i in _rows(ctx, s, True):
                for x in s.value[i]:
                    if not _at_least(x, least, ctx.shape.decimals + 2):
                        return f"{_where(s, i, ctx.trace)} has {fixed(x, 4)} < {least}"
        return None
    return Constraint("visible", f"no {name} below {least} in the asked row", (name,), test)


def clear_top_p(margin: Fraction) -> Constraint:
    """No running sum of the sorted probabilities is within ``margin`` of ``p``."""
    def test(ctx: Context) -> str | None:
        p = sympy.Rational(str(dict(ctx.draft.decoding)["top_p"]))
        for s in steps(ctx.trace, "top_p_cumsum"):
            for x in s.value[0][:-1]:
                if _abs_le(x - p, margin, 6):
                    return f"a running sum {fixed(x, 4)} is within {margin} of p = {p}"
        return None
    return Constraint("clear_top_p", f"top-p running sums at least {margin} from p",
                      ("top_p_cumsum",), test)


def rational_angles() -> Constraint:
    """Every sinusoid is ``sin`` or ``cos`` of a rational angle (``base^(2i/d)`` whole)."""
    def test(ctx: Context) -> str | None:
        for s in steps(ctx.trace, "pos"):
            for row in s.value:
                for x in row:
                    if _is_rational(x):
                        continue
                    if not (x.func in (sympy.sin, sympy.cos) and _is_rational(x.args[0])):
                        return f"pos has {format_exact(x)}"
        return None
    return Constraint("rational_angles", "sinusoid angles p / base^(2i/d) that are rational",
                      ("pos",), test)


def nonzero_row(name: str) -> Constraint:
    """The asked row of ``name`` is not all zeros."""
    def test(ctx: Context) -> str | None:
        for s in steps(ctx.trace, name):
            for i in _rows(ctx, s, True):
                if all(x == 0 for x in s.value[i]):
                    return f"{_where(s, i, ctx.trace)} is all zeros"
        return None
    return Constraint("nonzero_row", f"the asked row of {name} is not all zeros", (name,), test)


# --------------------------------------------------------------------------- per topic


def declared(topic: Topic, s: Shape) -> tuple[Constraint, ...]:
    """The constraints every variant of ``topic`` at these settings satisfies."""
    entries = small_entries(max(s.x_entry + 1, s.w_entry + 1, 2))
    rounding = clear_rounding(s.margin)
    least = Fraction(2, 10 ** s.decimals)  # two units of the last decimal: never rounds to 0
    table: dict[str, Callable[[], list[Constraint]]] = {
        "projection": lambda: [entries, integers(("q", "k", "v"), s.bound), values_differ(),
                               nonzero_row("q")],
        "scores": lambda: [entries, square_d_head(), integers(("scores",), s.bound),
                           rationals(("scaled_scores",), s.bound, s.max_den),
                           no_ties("scaled_scores"), terminating()],
        "softmax": lambda: [entries, rationals(("scaled_scores",), s.bound, s.max_den),
                            no_ties("scaled_scores"), visible("weights", least), rounding],
        "attention": lambda: [entries, square_d_head(), integers(("scores",), s.bound),
                              rationals(("scaled_scores",), s.bound, s.max_den),
                              no_ties("scaled_scores"), values_differ(),
                              visible("weights", least), terminating(), rounding],
        "multihead": lambda: [entries, integers(("q", "k", "v"), s.bound),
                              no_ties("scaled_scores"), values_differ(), heads_differ(),
                              visible("weights", least), bounded(("attn_out",), s.bound),
                              rounding],
        "residual": lambda: [entries, integers(("attn_out", "resid_mid"), s.bound),
                             nonzero_row("attn_out"), terminating()],
        "ffn": lambda: [entries, integers(("ffn_pre", "ffn_out"), s.bound),
                        relu_mixed(Fraction(0)), nonzero_row("ffn_out"), terminating()],
        "layernorm": lambda: [entries, rationals(("ln1_mean", "ln1_var"), s.bound, s.max_den)]
                             + ([square_variance("ln1"), rationals(("ln1",), s.bound, 1000),
                                 terminating()] if s.exact else [rounding]),
        "block": lambda: [entries, square_d_head(), integers(("q", "k", "v", "scores"), s.bound),
                          rationals(("scaled_scores",), s.bound, s.max_den),
                          no_ties("scaled_scores"), values_differ(),
                          visible("weights", least),
                          bounded(("resid_mid", "ffn_pre", "out"), s.bound),
                          relu_mixed(Fraction(1, 4)), terminating(), rounding],
        "positional": lambda: [rational_angles(), rounding],
        "logits": lambda: [entries, integers(("logits",), s.bound), no_ties("logits"),
                           visible("probs", least), rounding],
        "decoding": lambda: [entries, no_ties("logits"), visible("probs", least),
                             clear_top_p(Fraction(1, 50)), rounding],
        "training": lambda: [entries, integers(("logits",), s.bound), no_ties("logits"),
                             visible("probs", least), rounding],
    }
    return tuple(table[topic.name]())


# --------------------------------------------------------------------------- impossible settings


def conflicts(topic: Topic, s: Shape) -> list[str]:
    """Why no variant of ``topic`` can exist at these settings (empty when one can)."""
    out: list[str] = []
    name = topic.name
    attention = name in ("scores", "softmax", "attention", "multihead", "block")
    if attention and s.tokens < 2:
        out.append(f"{s.tokens} token: 'no ties in attention scores' and 'value rows not all "
                   "equal' need at least 2 tokens")
    wants_rational = name in ("scores", "attention", "block")
    root = math.isqrt(s.d_head)
    if wants_rational and (root * root != s.d_head or root not in NICE_ROOTS):
        out.append(f"d_head {s.d_head}: rational scaled scores (scores / √d_head as short "
                   f"decimals) need d_head to be 1, 4 or 16")
    if name == "multihead" and s.heads < 2:
        out.append("multi-head attention needs at least 2 heads")
    if name in ("ffn", "block") and s.d_ff < 2:
        out.append(f"d_ff {s.d_ff}: 'one ReLU input negative and one positive' needs at least "
                   "2 hidden neurons")
    if name == "layernorm" and s.d_model < 2:
        out.append("d_model 1: a single number has variance 0, so layer norm divides by 0")
    if name == "layernorm" and s.exact and s.d_model == 3:
        out.append("d_model 3: exact layer-norm roots are impossible: a terminating mean of "
                   "three whole numbers is whole, and then the variance 2(a² + ab + b²)/3 of "
                   "the deviations a, b, -a-b is never a perfect square")
    if name == "positional":
        if s.d_model % 2:
            out.append(f"d_model {s.d_model}: sinusoidal encodings come in sin/cos pairs, so the "
                       "width must be even")
        else:
            step = s.base ** Fraction(2, s.d_model)
            if _not_whole_power(s.base, s.d_model):
                out.append(f"d_model {s.d_model}: the angle p / {s.base}^(2i/d) is rational only "
                           f"when {s.base}^(2/d) is a whole number ({s.base}^(2/{s.d_model}) "
                           f"≈ {float(step):.3g}); use d_model 2, 4 or 8")
    if name == "softmax" and s.tokens > 2 * s.x_entry + 2 and not s.halves:
        out.append(f"{s.tokens} tokens: a row of {s.tokens} different whole-number scores "
                   f"needs --max-entry of at least {(s.tokens - 1) // 2}")
    if s.decimals < 1:
        out.append("at least one decimal is needed for rounded answers")
    return out


def _not_whole_power(base: int, d: int) -> bool:
    """``base^(2/d)`` is not a whole number."""
    root = round(base ** (2 / d))
    return root ** d != base ** 2
