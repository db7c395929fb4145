"""From a request to the output folder's bytes, one variant at a time, in parallel.

Layer: orchestration.  A variant depends only on (seed, student id, topic), so variants
are generated and rendered independently — in worker processes when there are many —
and joined in roster order.  Workers return text only (pages, records, questions), never
traces, and the joined files are the same bytes whatever the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from .. import progress
from .answers import answers_document, claims, variant_record
from .generator import Request, Variant, check_request, draft_toml, make_variant, slugs
from .moodle import quiz_document, variant_questions
from .sheets import document, problems_page, solutions_page

PARALLEL_FROM = 8
"""Fewer variants than this are made in this process (a worker pool costs a fraction of a
second to start)."""


@dataclass(frozen=True)
class Rendered:
    """Everything the output files need from one variant, as text."""

    problems: str
    solutions: str
    record: dict[str, Any]
    questions: tuple[tuple[str, ...], ...]
    files: tuple[tuple[str, str], ...]


def render_variant(variant: Variant, request: Request, total: int, moodle: bool) -> Rendered:
    files = tuple((p.file, draft_toml(p.draft, p.source, claims(p))) for p in variant.problems)
    return Rendered(
        problems=problems_page(variant, request, total),
        solutions=solutions_page(variant, request, total),
        record=variant_record(variant),
        questions=variant_questions(variant) if moodle else (),
        files=files,
    )


def _work(request: Request, moodle: bool, total: int,
          chunk: Sequence[tuple[int, str, str]]) -> list[Rendered]:
    return [render_variant(make_variant(request, n, s, slug), request, total, moodle)
            for n, s, slug in chunk]


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def render_all(request: Request, moodle: bool = False, workers: int | None = None
               ) -> list[Rendered]:
    """Every variant rendered, in roster order."""
    check_request(request)
    jobs = [(n, s, slug) for n, (s, slug) in
            enumerate(zip(request.students, slugs(request.students), strict=True), start=1)]
    total = len(jobs)
    workers = default_workers() if workers is None else max(1, workers)
    out: list[Rendered] = []
    if workers == 1 or total < PARALLEL_FROM:
        for job in jobs:
            progress.at("generating", job[0] - 1, total, f"variant {job[1]}")
            out += _work(request, moodle, total, [job])
        return out
    size = max(1, -(-total // (workers * 4)))
    chunks = [jobs[i:i + size] for i in range(0, total, size)]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        results = pool.map(_work, [request] * len(chunks), [moodle] * len(chunks),
                           [total] * len(chunks), chunks)
        for part in results:  # in order, as the workers finish them
            out += part
            progress.at("generating", len(out) - 1, total, "variants")
        return out


def make_files(request: Request, moodle: bool = False, workers: int | None = None
               ) -> dict[str, bytes]:
    """The output folder's files: ``problems.tex``, ``solutions.tex``, ``answers.json``,
    ``quiz.xml`` (with ``moodle``) and ``variants/*.toml``, as bytes."""
    rendered = render_all(request, moodle, workers)
    texts = {
        "problems.tex": document(request, [r.problems for r in rendered], "problem sheets"),
        "solutions.tex": document(request, [r.solutions for r in rendered], "solution sheets"),
        "answers.json": answers_document(request, [r.record for r in rendered]),
    }
    if moodle:
        texts["quiz.xml"] = quiz_document(request, [r.questions for r in rendered])
    for r in rendered:
        texts.update(r.files)
    return {name: text.encode("utf-8") for name, text in texts.items()}
