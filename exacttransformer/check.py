"""Checking a source's printed numbers against the exact trace (SPEC §4).

Layer: a reader of traces.  :func:`check` judges every claimed element with the first
verdict that applies, in this order:

``exact``      equal to the exact value;
``rounded``    within half a unit of the last printed digit;
``truncated``  the exact value cut off after the last printed digit;
``float``      15 or more significant digits, within 4 units of the 16th significant digit
               (a program's float64 output);
``drift``      rounded (or truncated) against the *replay* — the same graph evaluated with
               every printed number in place of its exact value — while every printed number
               it rests on is itself exact … drift;
``carried``    matches the replay, but a printed number it rests on is wrong or carried;
``wrong``      none of the above.

The replay is the engine's own evaluator with a ``patch`` hook (nothing is reimplemented
here), and "rests on" is traced element by element through each step's dependency
patterns, stopping at the nearest printed numbers.

>>> report = check("cat")
>>> [(c.claim.name, c.verdict) for c in report.claims if c.claim.name.startswith("exp")]
[('exp_scores', 'drift'), ('exp_sum', 'drift')]
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import sympy

from . import progress
from .errors import ExactTransformerError, InputError
from .exact.linalg import Matrix, shape
from .exact.parse import parse_number
from .exact.printing import format_exact, sign, to_fixed, to_sig
from .graph.graph import element_deps
from .graph.trace import Key, Step, Trace
from .io.files import Claim, Walkthrough, load

VERDICTS = ("exact", "rounded", "truncated", "float", "drift", "carried", "wrong")
"""In the order they are tried (and the order "worst of" uses)."""

MARKS = {"exact": "✓", "rounded": "≈", "truncated": "⌊", "float": "f", "drift": "~",
         "carried": "↳", "wrong": "✗"}

KEY_ROWS = frozenset(("k", "v", "x_kv", "x_k", "x_v"))

ElementRef = tuple[Key, tuple[int, int]]

_DECIMAL = re.compile(r"^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$")


# --------------------------------------------------------------------------- printed numbers


@dataclass(frozen=True)
class Printed:
    """A printed number: its text, exact value, and the unit of its last digit.

    ``unit`` is ``None`` for an exact form such as ``"3*sqrt(2)/2"`` (no rounding implied).

    >>> p = Printed.parse("0.50"); p.value, p.unit, p.decimals
    (1/2, 1/100, 2)
    >>> Printed.parse("8.3e-3").unit, Printed.parse("8.3e-3").significant
    (1/10000, 2)
    >>> Printed.parse("16").unit, Printed.parse("0.").unit
    (1, 1)
    """

    text: str
    value: sympy.Expr
    unit: sympy.Rational | None
    decimals: int | None = None
    significant: int = 0
    scientific: bool = False

    @classmethod
    def parse(cls, text: str) -> Printed:
        stripped = text.strip().replace("−", "-")
        m = _DECIMAL.match(stripped)
        if m and (m.group(2) or m.group(3)):
            sign_, whole, frac, exp = m.groups()
            frac = frac or ""
            digits = (whole + frac).lstrip("0")
            significant = len(digits) if digits else 1
            exponent = int(exp) if exp is not None else 0
            if abs(exponent) > 400 or len(whole + frac) > 400:
                raise ExactTransformerError(f"{text!r} is too long or too large a number")
            mantissa = sympy.Rational(int(whole + frac or "0"), 10 ** len(frac))
            value = mantissa * sympy.Rational(10) ** exponent
            if sign_ == "-":
                value = -value
            unit = sympy.Rational(10) ** (exponent - len(frac))
            decimals = len(frac) - exponent if exp is None else None
            return cls(text, value, unit, decimals, significant, exp is not None)
        return cls(text, parse_number(stripped), None)

    def correct(self, x: sympy.Expr) -> str:
        """``x`` printed at this number's precision (the correct rounding)."""
        if self.unit is None:
            return format_exact(x)
        if self.scientific:
            return to_sig(x, max(self.significant, 1))
        return to_fixed(x, max(self.decimals or 0, 0))


def _within_half_unit(c: sympy.Expr, x: sympy.Expr, unit: sympy.Expr) -> bool:
    d = c - x
    half = unit / 2
    return sign(half - d) >= 0 and sign(half + d) >= 0


def _truncation_of(c: sympy.Expr, x: sympy.Expr, unit: sympy.Expr) -> bool:
    """``c`` is ``x`` cut off (towards zero) after the digit of size ``unit``."""
    s = sign(c)
    if s > 0:
        return sign(x - c) >= 0 and sign(c + unit - x) > 0
    if s < 0:
        return sign(c - x) >= 0 and sign(x - (c - unit)) > 0
    return sign(unit - x) > 0 and sign(unit + x) > 0


def _float_close(p: Printed, x: sympy.Expr) -> bool:
    if p.unit is None or p.significant < 15:
        return False
    probe = Fraction(to_sig(x, 17)) if sign(x) != 0 else Fraction(0)
    if probe == 0:
        return False
    decade = len(str(abs(probe.numerator) // abs(probe.denominator))) - 1 \
        if abs(probe) >= 1 else -_leading_zeros(abs(probe)) - 1
    unit16 = sympy.Rational(10) ** (decade - 15)
    return _within_half_unit(p.value, x, 8 * unit16)


def _leading_zeros(f: Fraction) -> int:
    n = 0
    while f * 10 < 1:
        f *= 10
        n += 1
    return n


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ElementResult:
    """The verdict on one printed element."""

    index: tuple[int, int]
    printed: Printed
    exact: sympy.Expr
    verdict: str
    replayed: sympy.Expr | None = None
    rests_on: tuple[ElementRef, ...] = ()
    origin: ElementRef | None = None

    @property
    def claimed(self) -> str:
        return self.printed.text

    @property
    def correct(self) -> str:
        return self.printed.correct(self.exact)


@dataclass(frozen=True)
class ClaimResult:
    """One ``[[claims]]`` entry judged: its worst element's verdict."""

    claim: Claim
    step: Step
    elements: tuple[ElementResult, ...]
    rests_on_names: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        return max((e.verdict for e in self.elements), key=VERDICTS.index, default="exact")


@dataclass(frozen=True)
class Report:
    """All claims of a file, judged."""

    file: str
    claims: tuple[ClaimResult, ...]
    trace: Trace = field(repr=False)
    printed_by: dict[ElementRef, tuple[ClaimResult, ElementResult]] = field(
        default_factory=dict, repr=False, compare=False)

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(VERDICTS, 0)
        for c in self.claims:
            for e in c.elements:
                counts[e.verdict] += 1
        return counts

    def first_wrong(self) -> tuple[ClaimResult, ElementResult] | None:
        for c in self.ordered():
            for e in c.elements:
                if e.verdict == "wrong":
                    return c, e
        return None

    def inheritors(self, claim: ClaimResult, element: ElementResult) -> int:
        ref = ((claim.step.key), element.index)
        return sum(1 for c in self.claims for e in c.elements
                   if e.verdict == "carried" and e.origin == ref)

    def ordered(self) -> list[ClaimResult]:
        position = {s.key: n for n, s in enumerate(self.trace.steps)}
        return sorted(self.claims, key=lambda c: (position[c.step.key], c.claim.number))

    def exit_status(self, strict: bool = False) -> int:
        bad = {"wrong", "carried"} | ({"truncated", "float", "drift"} if strict else set())
        return 1 if any(e.verdict in bad for c in self.claims for e in c.elements) else 0

    def describe(self, ref: ElementRef) -> str:
        """``name[token]`` and the printed text of a printed element."""
        key, (i, j) = ref
        found = self.printed_by.get(ref)
        text = found[1].claimed if found else "?"
        return f"{_element_label(self.trace, key, (i, j))} = {text}"


def _element_label(trace: Trace, key: Key, index: tuple[int, int]) -> str:
    name, layer, head = key
    step = trace._index[key]
    rows, cols = step.shape
    tokens = trace.kv_tokens if name in KEY_ROWS and trace.kv_tokens else trace.tokens
    parts = []
    if rows == len(tokens) and rows > 1:
        parts.append(tokens[index[0]])
    elif rows > 1:
        parts.append(str(index[0]))
    if name == "contrib":  # key token and component instead of the flat column
        d = cols // trace._index[("weights", layer, head)].shape[1]
        keys = trace.kv_tokens or trace.tokens
        parts.append(f"{keys[index[1] // d]}, {index[1] % d}")
    elif cols > 1:
        parts.append(str(index[1]))
    where = f"[{', '.join(parts)}]" if parts else ""
    extra = []
    if layer:
        extra.append(f"layer {layer}")
    if head:
        extra.append(f"head {head}")
    return name + where + (f" ({', '.join(extra)})" if extra else "")


# --------------------------------------------------------------------------- selection


def _select(trace: Trace, claim: Claim, step: Step, file: str) -> list[tuple[tuple[int, int], Any]]:
    """Pair each printed entry of a claim with its index in the node's full matrix."""
    rows, cols = step.shape
    where = f"{claim.where()}.value"

    def err(msg: str, key: str = where) -> InputError:
        return InputError(msg, file=file, key=key)

    if step.name == "contrib":
        return _select_contrib(trace, claim, step, err)
    value = claim.value
    if claim.token is not None and not (rows == 1 and len(trace.tokens) != 1 and cols >= 1
                                        and step.name in ("sqrt_dk", "scale")):
        try:
            i = trace.token_index(claim.token, kv=step.name in KEY_ROWS)
        except InputError as exc:
            raise err(str(exc), f"{claim.where()}.token") from None
        if i >= rows:
            raise err(f"{step.name} has {rows} rows; token {claim.token!r} is row {i}",
                      f"{claim.where()}.token")
        if not isinstance(value, list):
            if cols != 1:
                raise err(f"one number given, but the row of {step.name} for {claim.token!r} "
                          f"has {cols}")
            return [((i, 0), value)]
        if len(value) != cols or any(isinstance(v, list) for v in value):
            raise err(f"{len(value)} entries given, but the row of {step.name} for "
                      f"{claim.token!r} has {cols} numbers")
        return [((i, j), v) for j, v in enumerate(value)]
    if not isinstance(value, list):
        if (rows, cols) != (1, 1):
            raise err(f"one number given, but {step.name} is {rows}×{cols}: "
                      "give a token or the whole matrix")
        return [((0, 0), value)]
    if all(isinstance(r, list) for r in value):
        if len(value) != rows or any(len(r) != cols for r in value):
            got = f"{len(value)}×{len(value[0]) if value else 0}"
            raise err(f"a {got} matrix given, but {step.name} is {rows}×{cols}")
        return [((i, j), v) for i, r in enumerate(value) for j, v in enumerate(r)]
    if any(isinstance(v, list) for v in value):
        raise err("mixes numbers and lists")
    if rows == 1 and len(value) == cols:
        return [((0, j), v) for j, v in enumerate(value)]
    if cols == 1 and len(value) == rows:
        return [((i, 0), v) for i, v in enumerate(value)]
    raise err(f"{len(value)} entries given, but {step.name} is {rows}×{cols}")


def _select_contrib(trace: Trace, claim: Claim, step: Step,
                    err: Any) -> list[tuple[tuple[int, int], Any]]:
    """A claim on ``contrib`` (n × m·d): ``token`` selects the query's row, ``key`` one key's
    block of ``d`` numbers; a row may also be given as ``m`` lists of ``d`` numbers."""
    weights = trace.find("weights", claim.layer, claim.head)
    assert weights is not None  # contrib reads it
    rows, cols = step.shape
    m = weights.shape[1]
    d = cols // m
    value = claim.value
    if claim.token is None:
        if claim.key is not None:
            raise err("a claim with a key also needs the token of the query",
                      f"{claim.where()}.token")
        if not (isinstance(value, list) and len(value) == rows):
            raise err(f"give one row per query ({rows}), or select one with token")
        return [p for i, r in enumerate(value) for p in _contrib_row(i, r, m, d, err)]
    i = trace.token_index(claim.token)
    if claim.key is None:
        return _contrib_row(i, value, m, d, err)
    j = trace.token_index(claim.key, kv=True)
    if not (isinstance(value, list) and len(value) == d
            and not any(isinstance(v, list) for v in value)):
        raise err(f"the contribution of one key is {d} numbers (the width of v)")
    return [((i, j * d + c), v) for c, v in enumerate(value)]


def _contrib_row(i: int, value: Any, m: int, d: int,
                 err: Any) -> list[tuple[tuple[int, int], Any]]:
    flat = value
    if isinstance(value, list) and value and all(isinstance(b, list) for b in value):
        if len(value) != m or any(len(b) != d for b in value):
            raise err(f"a query's contributions are {m} lists (one per key) of {d} numbers")
        flat = [x for b in value for x in b]
    if not (isinstance(flat, list) and len(flat) == m * d
            and not any(isinstance(v, list) for v in flat)):
        raise err(f"a query's contributions are {m} lists (one per key) of {d} numbers, "
                  f"or {m * d} numbers")
    return [((i, c), v) for c, v in enumerate(flat)]


def _printed(raw: Any, file: str, key: str) -> Printed:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise InputError(f"expected a printed number (a string like \"0.50\"), got {raw!r}",
                         file=file, key=key)
    try:
        return Printed.parse(str(raw))
    except ExactTransformerError as exc:
        raise InputError(f"{raw!r} is not a number: {exc}", file=file, key=key) from None


# --------------------------------------------------------------------------- the checker


class _Checker:
    def __init__(self, walk: Walkthrough):
        self.walk = walk
        self.file = walk.path
        self.trace = walk.forward()
        # (claim, step, [(index, Printed)]) in file order
        self.items: list[tuple[Claim, Step, list[tuple[tuple[int, int], Printed]]]] = []
        for claim in walk.claims:
            step = self.trace.find(claim.name, claim.layer, claim.head)
            if step is None:
                raise InputError(
                    f"node {claim.name!r} (layer {claim.layer}, head {claim.head}) is not "
                    "computed from this file: give the inputs and weights it needs",
                    file=self.file, key=f"{claim.where()}.name")
            pairs = _select(self.trace, claim, step, self.file)
            printed = [(idx, _printed(v, self.file, f"{claim.where()}.value"))
                       for idx, v in pairs]
            self.items.append((claim, step, printed))
        # The later claim of an element wins in the replay.
        self.replacement: dict[ElementRef, sympy.Expr] = {}
        for _, step, printed in self.items:
            for idx, p in printed:
                self.replacement[(step.key, idx)] = p.value
        self.recomputed: dict[ElementRef, sympy.Expr] = {}
        # The replay runs on the trace's engine (under auto, sympy may still outgrow its
        # budget on the printed numbers, and then the structured engine replays).
        self.replay = walk.forward(
            patch=self._patch, engine="structured" if self.trace.backend == "structured" else None)
        self._frontier: dict[ElementRef, frozenset[ElementRef]] = {}

    def _patch(self, key: Key, value: Matrix) -> Matrix:
        hits = [(idx, v) for (k, idx), v in self.replacement.items() if k == key]
        if not hits:
            return value
        rows = [list(r) for r in value]
        for (i, j), v in hits:
            self.recomputed[(key, (i, j))] = rows[i][j]
            rows[i][j] = v
        return tuple(tuple(r) for r in rows)

    def frontier(self, ref: ElementRef) -> frozenset[ElementRef]:
        """The nearest printed elements that ``ref`` is computed from."""
        if ref in self._frontier:
            return self._frontier[ref]
        key, idx = ref
        step = self.trace._index[key]
        found: set[ElementRef] = set()
        for in_key, dep in zip(step.inputs, step.deps, strict=True):
            in_shape = shape(self.trace._index[in_key].value)
            for e in element_deps(dep, idx, in_shape):
                dep_ref = (in_key, e)
                if dep_ref in self.replacement:
                    found.add(dep_ref)
                else:
                    found |= self.frontier(dep_ref)
        result = frozenset(found)
        self._frontier[ref] = result
        return result

    def run(self) -> Report:
        position = {s.key: n for n, s in enumerate(self.trace.steps)}
        order = sorted(range(len(self.items)),
                       key=lambda n: (position[self.items[n][1].key], n))
        judged: dict[int, ClaimResult] = {}
        last: dict[ElementRef, ElementResult] = {}
        for done, n in enumerate(order):
            claim, step, printed = self.items[n]
            progress.at("checking", done, len(order), f"{claim.where()} ({step.label()})")
            elements = []
            names: list[str] = []
            for idx, p in printed:
                res = self.judge(step, idx, p, last)
                elements.append(res)
                for (k, _) in res.rests_on:
                    if k[0] not in names:
                        names.append(k[0])
            judged[n] = ClaimResult(claim=claim, step=step, elements=tuple(elements),
                                    rests_on_names=tuple(names))
            for res in elements:
                last[(step.key, res.index)] = res
        results = tuple(judged[n] for n in range(len(self.items)))
        printed_by: dict[ElementRef, tuple[ClaimResult, ElementResult]] = {}
        for c in results:
            for e in c.elements:
                printed_by[(c.step.key, e.index)] = (c, e)
        return Report(file=self.file, claims=results, trace=self.trace, printed_by=printed_by)

    def judge(self, step: Step, idx: tuple[int, int], p: Printed,
              last: dict[ElementRef, ElementResult]) -> ElementResult:
        x = step.value[idx[0]][idx[1]]
        ref: ElementRef = (step.key, idx)
        base = {"index": idx, "printed": p, "exact": x}
        if sign(p.value - x) == 0:
            return ElementResult(verdict="exact", **base)  # type: ignore[arg-type]
        if p.unit is not None:
            if _within_half_unit(p.value, x, p.unit):
                return ElementResult(verdict="rounded", **base)  # type: ignore[arg-type]
            if _truncation_of(p.value, x, p.unit):
                return ElementResult(verdict="truncated", **base)  # type: ignore[arg-type]
            if _float_close(p, x):
                return ElementResult(verdict="float", **base)  # type: ignore[arg-type]
        rests = tuple(sorted(self.frontier(ref), key=lambda r: (r[0][0], r[0][1] or 0,
                                                                 r[0][2] or 0, r[1])))
        replayed = self.recomputed.get(ref)
        if not rests or replayed is None:
            return ElementResult(verdict="wrong", replayed=replayed, **base)  # type: ignore[arg-type]
        matches = sign(p.value - replayed) == 0 or (
            p.unit is not None and (_within_half_unit(p.value, replayed, p.unit)
                                    or _truncation_of(p.value, replayed, p.unit)))
        if not matches:
            return ElementResult(verdict="wrong", replayed=replayed, rests_on=rests, **base)  # type: ignore[arg-type]
        bad = [r for r in rests if r in last and last[r].verdict in ("wrong", "carried")]
        if bad:
            first = bad[0]
            origin = last[first].origin if last[first].verdict == "carried" else first
            return ElementResult(verdict="carried", replayed=replayed, rests_on=rests,  # type: ignore[arg-type]
                                 origin=origin, **base)
        return ElementResult(verdict="drift", replayed=replayed, rests_on=rests, **base)  # type: ignore[arg-type]


def check(source: str | os.PathLike[str] | Walkthrough) -> Report:
    """Judge every claim of a walkthrough (a path, ``"cat"``, or a loaded file)."""
    walk = source if isinstance(source, Walkthrough) else load(source)
    return _Checker(walk).run()


def claims_of(report: Report, name: str) -> Iterable[ClaimResult]:
    """The judged claims on one node, in file order."""
    return (c for c in report.claims if c.claim.name == name)
