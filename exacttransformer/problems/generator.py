"""Seeded, per-student variants: a deterministic search for models with nice numbers.

Layer: orchestration.  Each (seed, student id, topic) gets its own
:class:`random.Random`, seeded from the SHA-256 of those three strings (never Python's
``hash``, which changes between runs), so a variant depends on nothing else: not on the
roster's order, not on the other students, not on the other topics.  Re-running for one
late student reproduces exactly the sheet the others' run gave them.

The search draws a topic's model stage by stage (:mod:`.topics`), writes it as a
walkthrough file, loads that file with :func:`exacttransformer.io.files.loads`, runs the
forward pass, and checks every declared constraint (:mod:`.constraints`) on the exact
trace; a stage that fails is redrawn from the same random stream.  When no draw passes
within :data:`MAX_ATTEMPTS`, the search stops with a :class:`ConstraintError` that names
the constraints that failed most often: never a variant that breaks one.

>>> variant_rng("7", "alice", "attention").random() == variant_rng("7", "alice", "attention").random()
True
>>> variant_rng("7", "alice", "attention").random() == variant_rng("8", "alice", "attention").random()
False
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any

import sympy

from ..errors import ExactTransformerError, InputError
from ..graph.trace import Step, Trace
from ..io.files import loads
from .constraints import Constraint, ConstraintError, Context, conflicts, declared
from .specs import MAX_COUNT, Draft, PartSpec, Shape, Topic, fill
from .topics import TOPICS

__all__ = ["MAX_COUNT", "ProblemSet", "Request", "generate", "make_variant", "variant_rng"]

MAX_ATTEMPTS = 400
"""Draws per stage before the search gives up (with the failures counted)."""

SCHEME = "exacttransformer-problems/1"
"""Part of every variant's seed: changing how variants are drawn changes this name."""


def variant_rng(seed: str, student: str, topic: str) -> random.Random:
    """The random stream of one student's variant of one topic."""
    text = "\x1f".join((SCHEME, seed, student, topic)).encode("utf-8")
    return random.Random(int.from_bytes(hashlib.sha256(text).digest(), "big"))


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Part:
    """One answered part: the spec, the step of the trace it reads, and its exact values."""

    label: str
    spec: PartSpec
    prompt: str
    step: Step
    row: int | None  # the asked token's row, or None for the whole value
    decimals: int
    choices: tuple[str, ...] = ()

    @property
    def values(self) -> tuple[tuple[sympy.Expr, ...], ...]:
        if self.row is None:
            return self.step.value
        return (self.step.value[self.row],)

    @property
    def flat(self) -> tuple[sympy.Expr, ...]:
        return tuple(x for r in self.values for x in r)

    @property
    def scalar(self) -> bool:
        return len(self.flat) == 1


@dataclass(frozen=True)
class Problem:
    """One topic's problem for one student: the model, its trace, and the parts' keys."""

    number: int
    topic: Topic
    shape: Shape
    draft: Draft
    toml: str  # the model as a walkthrough file (no claims)
    source: str  # the file's ``source`` line: seed, student, topic, difficulty
    trace: Trace
    parts: tuple[Part, ...]
    constraints: tuple[Constraint, ...]
    attempts: int
    file: str  # where the variant's walkthrough file goes, relative to the output folder


@dataclass(frozen=True)
class Variant:
    """One student's sheet: a problem per topic."""

    student: str
    number: int
    slug: str
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class Request:
    """What the command line asked for, validated."""

    seed: str
    topics: tuple[str, ...]
    difficulty: str = "medium"
    students: tuple[str, ...] = ("1",)
    rostered: bool = False
    overrides: Mapping[str, int] | None = None


@dataclass(frozen=True)
class ProblemSet:
    """Every student's variant, in roster order."""

    request: Request
    variants: tuple[Variant, ...]


# --------------------------------------------------------------------------- walkthrough files


def toml_string(text: str) -> str:
    """A TOML basic string (control characters escaped).

    >>> toml_string('say "hi"\\n')
    '"say \\\\"hi\\\\"\\\\n"'
    """
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(value: Any) -> str:
    """Integers bare, rationals as exact strings (``"3/2"``), lists nested."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else toml_string(str(value))
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def draft_toml(draft: Draft, source: str, claims: Sequence[Mapping[str, Any]] = ()) -> str:
    """The draft as a walkthrough file (SPEC §2), optionally with ``[[claims]]``."""
    lines = [f"title = {toml_string(draft.title)}", f"source = {toml_string(source)}", ""]
    if draft.model:
        lines.append("[model]")
        lines += [f"{k} = {toml_value(v)}" for k, v in draft.model]
        lines.append("")
    lines.append("[input]")
    lines.append(f"tokens = {toml_value(list(draft.tokens))}")
    lines += [f"{k} = {toml_value(v)}" for k, v in draft.extra_input]
    lines += [f"{g.key} = {toml_value(g.toml_value())}" for g in draft.givens
              if g.section == "input"]
    weights = [g for g in draft.givens if g.section == "weights"]
    if weights:
        lines += ["", "[weights]"]
        lines += [f"{g.key} = {toml_value(g.toml_value())}" for g in weights]
    if draft.decoding:
        lines += ["", "[decoding]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in draft.decoding]
    for claim in claims:
        lines += ["", "[[claims]]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in claim.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- topics on offer


@cache
def available(name: str) -> bool:
    """Whether the engine computes what the topic asks about (checked by a forward pass:
    the next-token topics need the vocabulary head, decoding and training nodes)."""
    topic = TOPICS[name]
    if not topic.requires:
        return True
    shape = topic.shape("easy")
    draft: Draft | None = None
    rng = random.Random(0)
    try:
        for stage in topic.stages:
            draft = stage(rng, shape, draft, None)
        assert draft is not None
        names = set(loads(draft_toml(draft, "probe"), "probe").forward().names())
    except ExactTransformerError:
        return False
    return all(n in names for n in topic.requires)


def parse_topics(text: str) -> tuple[str, ...]:
    """``--topic a,b``: known, available topics, each once, in the order given."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise InputError(f"give at least one topic (valid topics: {', '.join(TOPICS)})",
                         key="--topic")
    for n in names:
        if n not in TOPICS:
            raise InputError(f"unknown topic {n!r}; valid topics: {', '.join(TOPICS)}",
                             key="--topic")
        if not available(n):
            ready = ", ".join(t for t in TOPICS if available(t))
            raise InputError(f"topic {n!r} needs nodes the engine does not compute yet "
                             f"({', '.join(TOPICS[n].requires)}); available: {ready}",
                             key="--topic")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"topic {dup!r} is listed twice", key="--topic")
    return tuple(names)


def check_request(request: Request) -> None:
    """Refuse impossible constraint combinations before any search, naming each."""
    problems = []
    for name in request.topics:
        topic = TOPICS[name]
        for reason in conflicts(topic, topic.shape(request.difficulty, request.overrides)):
            problems.append(f"{name} ({request.difficulty}): {reason}")
    if problems:
        raise ConstraintError("impossible constraint combination: " + "; ".join(problems))


# --------------------------------------------------------------------------- the search


def search(topic: Topic, shape: Shape, seed: str, student: str) -> tuple[Draft, Trace, int]:
    """The first draw whose every stage passes the topic's constraints."""
    rng = variant_rng(seed, student, topic.name)
    constraints = declared(topic, shape)
    specs = topic.parts(shape)
    draft: Draft | None = None
    trace: Trace | None = None
    attempts = 0
    failures: Counter[str] = Counter()
    last = len(topic.stages) - 1
    for n, stage in enumerate(topic.stages):
        for _ in range(MAX_ATTEMPTS):
            attempts += 1
            candidate = stage(rng, shape, draft, trace)
            reason = None
            try:
                t = loads(draft_toml(candidate, "search"), "search").forward()
            except ExactTransformerError as exc:
                reason = f"the forward pass failed ({exc})"
            else:
                ctx = Context(t, candidate, shape, specs, final=n == last)
                failed = next((c for c in constraints if c.check(ctx) is not None), None)
                if failed is not None:
                    reason = failed.text
            if reason is None:
                draft, trace = candidate, t
                break
            failures[reason] += 1
        else:
            common = "; ".join(f"{text} ({k}×)" for text, k in failures.most_common(3))
            raise ConstraintError(
                f"no variant of {topic.name!r} for student {student!r} satisfies every "
                f"constraint after {attempts} draws (most often failed: {common}); "
                "try smaller sizes, a larger --max-entry or another --difficulty")
    assert draft is not None and trace is not None
    return draft, trace, attempts


def _part(label: str, spec: PartSpec, draft: Draft, trace: Trace, shape: Shape) -> Part:
    step = trace.find(spec.node, spec.layer, spec.head)
    if step is None:  # a topic asking for a node its model does not compute: a bug
        raise ExactTransformerError(f"the {spec.node} node was not computed")
    per_token = spec.row and len(step.value) == len(trace.tokens)
    choices = tuple(dict(draft.extra_input).get("vocab", ())) if spec.form == "choice" else ()
    return Part(label=label, spec=spec, prompt=fill(spec.prompt, draft), step=step,
                row=draft.row if per_token else None, decimals=shape.decimals,
                choices=choices)


def make_problem(number: int, topic: Topic, shape: Shape, seed: str, student: str,
                 slug: str, difficulty: str) -> Problem:
    draft, trace, attempts = search(topic, shape, seed, student)
    source = (f"exacttransformer problems: seed {seed}, student {student}, topic {topic.name}, "
              f"difficulty {difficulty}")
    parts = tuple(_part(chr(ord("a") + i), spec, draft, trace, shape)
                  for i, spec in enumerate(topic.parts(shape)))
    return Problem(number=number, topic=topic, shape=shape, draft=draft,
                   toml=draft_toml(draft, source), source=source, trace=trace, parts=parts,
                   constraints=declared(topic, shape), attempts=attempts,
                   file=f"variants/{slug}-{topic.name}.toml")


def slugs(students: Sequence[str]) -> list[str]:
    """File-name-safe, unique (also ignoring case) names for the students' files.

    >>> slugs(["alice", "Bob Smith", "bob smith", "1"])
    ['alice', 'Bob_Smith-7e3d8981', 'bob_smith-7e50351d', '1']
    """
    raw = [re.sub(r"[^A-Za-z0-9._-]", "_", s)[:40].strip(".") or "student" for s in students]
    folded = Counter(r.lower() for r in raw)
    out = []
    for s, r in zip(students, raw, strict=True):
        if r != s or folded[r.lower()] > 1:
            r = f"{r}-{hashlib.sha256(s.encode('utf-8')).hexdigest()[:8]}"
        out.append(r)
    return out


def make_variant(request: Request, number: int, student: str, slug: str) -> Variant:
    """One student's variant of every requested topic."""
    problems = []
    for k, name in enumerate(request.topics, start=1):
        topic = TOPICS[name]
        shape = topic.shape(request.difficulty, request.overrides)
        problems.append(make_problem(k, topic, shape, request.seed, student, slug,
                                     request.difficulty))
    return Variant(student=student, number=number, slug=slug, problems=tuple(problems))


def generate(request: Request) -> ProblemSet:
    """Every student's variant of every topic (no files written)."""
    check_request(request)
    names = slugs(request.students)
    return ProblemSet(request=request, variants=tuple(
        make_variant(request, n, s, slug)
        for n, (s, slug) in enumerate(zip(request.students, names, strict=True), start=1)))
