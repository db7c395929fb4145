"""The answer key: exact values, the rounding each part asks for, and ``answers.json``.

Layer: a reader of traces.  Every printed number comes from
:mod:`exacttransformer.numbers`: :func:`~exacttransformer.numbers.format_exact` for exact
forms and :func:`~exacttransformer.numbers.to_fixed` (certified) for decimals, so a key
is correct in every digit it shows.  The same strings become the ``[[claims]]`` of each
variant's walkthrough file, so ``exacttransformer check`` can re-judge the key.

A part's ``tolerance`` is what a numerical answer may differ from the key and still mean
the same rounding: 0 for exact answers, half a unit of the last decimal for rounded ones
(2 decimals: ``0.005``), so exactly the numbers that round to the key are accepted.

>>> from fractions import Fraction
>>> tolerance("decimals", 2), tolerance("exact", 2), decimal_text(Fraction(-3, 4))
('0.005', '0', '-0.75')
"""

from __future__ import annotations

import json
from fractions import Fraction
from functools import lru_cache
from typing import Any

import sympy

from ..exact.printing import format_exact, to_fixed
from ..version import __version__
from .constraints import fixed
from .generator import Part, Problem, ProblemSet, Request, Variant
from .topics import TOPICS

FORMAT = "exacttransformer-problems/1"


@lru_cache(maxsize=65536)
def exact_text(x: sympy.Expr) -> str:
    """:func:`~exacttransformer.numbers.format_exact`, cached (the key and the quiz's
    feedback print the same values)."""
    return format_exact(x)


def tolerance(form: str, decimals: int) -> str:
    """Half a unit of the last decimal asked for, as text; ``"0"`` for exact answers."""
    if form != "decimals":
        return "0"
    return "0." + "0" * decimals + "5"


def decimal_text(x: Fraction) -> str:
    """A terminating rational as its shortest decimal (``-3/4`` -> ``-0.75``)."""
    k = 0
    while (x * 10 ** k).denominator != 1:
        k += 1
        if k > 30:
            raise ValueError(f"{x} is not a terminating decimal")
    return to_fixed(sympy.Rational(x.numerator, x.denominator), k)


def _fraction(x: sympy.Expr) -> Fraction:
    return Fraction(int(x.p), int(x.q))  # type: ignore[attr-defined]


def shown(part: Part, x: sympy.Expr) -> str:
    """One entry of the key as the question asks for it."""
    if part.spec.form == "choice":
        i = int(x)
        return part.choices[i] if 0 <= i < len(part.choices) else str(i)
    if part.spec.form == "exact":
        return decimal_text(_fraction(x))
    return fixed(x, part.decimals)


def claimed(part: Part, x: sympy.Expr) -> str:
    """One entry as a ``[[claims]]`` value: the key's number (a choice by its index)."""
    if part.spec.form == "choice":
        return str(int(x))
    return shown(part, x)


def key_rows(part: Part) -> list[list[str]]:
    return [[shown(part, x) for x in row] for row in part.values]


def exact_rows(part: Part) -> list[list[str]]:
    return [[exact_text(x) for x in row] for row in part.values]


def claims(problem: Problem) -> list[dict[str, Any]]:
    """The key as ``[[claims]]`` tables of the variant's walkthrough file."""
    out = []
    for part in problem.parts:
        claim: dict[str, Any] = {"name": part.step.name}
        if part.row is not None:
            claim["token"] = problem.draft.token
        if part.step.layer:
            claim["layer"] = part.step.layer
        if part.step.head:
            claim["head"] = part.step.head
        rows = [[claimed(part, x) for x in row] for row in part.values]
        claim["value"] = rows[0] if part.row is not None else rows
        if len(part.flat) == 1:
            claim["value"] = rows[0][0]
        claim["note"] = f"part ({part.label}): {part.prompt}"
        out.append(claim)
    return out


def part_record(part: Part) -> dict[str, Any]:
    step = part.step
    record: dict[str, Any] = {
        "part": part.label,
        "prompt": part.prompt,
        "node": step.name,
        "layer": step.layer,
        "head": step.head,
        "token": None,
        "form": part.spec.form,
        "decimals": part.decimals if part.spec.form == "decimals" else None,
        "tolerance": tolerance(part.spec.form, part.decimals),
        "shape": [len(part.values), len(part.values[0])],
        "exact": exact_rows(part),
        "answer": key_rows(part),
    }
    if part.choices:
        record["choices"] = list(part.choices)
    return record


def problem_record(problem: Problem) -> dict[str, Any]:
    parts = []
    for part in problem.parts:
        record = part_record(part)
        if part.row is not None:
            record["token"] = problem.draft.token
        parts.append(record)
    return {
        "number": problem.number,
        "topic": problem.topic.name,
        "title": problem.topic.title,
        "token": problem.draft.token,
        "token_index": problem.draft.row,
        "tokens": list(problem.draft.tokens),
        "walkthrough": problem.file,
        "draws": problem.attempts,
        "constraints": [c.text for c in problem.constraints],
        "parts": parts,
    }


def variant_record(variant: Variant) -> dict[str, Any]:
    return {"student": variant.student, "number": variant.number,
            "problems": [problem_record(p) for p in variant.problems]}


def answers_document(request: Request, records: list[dict[str, Any]]) -> str:
    """``answers.json`` from the variants' records (stable output, keys in a fixed order)."""
    data = {
        "format": FORMAT,
        "generator": f"exacttransformer {__version__}",
        "seed": request.seed,
        "difficulty": request.difficulty,
        "topics": list(request.topics),
        "roster": request.rostered,
        "settings": {t: TOPICS[t].shape(request.difficulty, request.overrides).describe()
                     for t in request.topics},
        "variants": records,
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def answers_json(problem_set: ProblemSet) -> str:
    """``answers.json``: every variant's key, exact and as asked."""
    return answers_document(problem_set.request,
                            [variant_record(v) for v in problem_set.variants])
