"""``quiz.xml`` against Moodle's documented XML import format, and the tolerance rule.

The structure checked here is the one the "Moodle XML format" page documents and
``question/format/xml/format.php`` reads: a ``<quiz>`` root after the XML declaration on
the first line; ``<question type="category">`` entries whose ``<category><text>`` starts
with ``$course$``; every other question with ``<name><text>``, an HTML
``<questiontext format="html"><text>`` in CDATA; ``numerical`` questions with
``<answer fraction="100">`` holding ``<text>`` and ``<tolerance>``; ``cloze``
(multianswer) questions with ``{1:NUMERICAL:=key:tolerance}`` fields; ``multichoice``
questions with one answer at fraction 100.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from exacttransformer.cli import main
from exacttransformer.exact.parse import parse_number
from exacttransformer.exact.printing import to_fixed
from exacttransformer.problems.generator import available
from exacttransformer.problems.moodle import cdata

QTYPES = {"category", "numerical", "cloze", "multichoice"}
FIELD = re.compile(r"\{1:NUMERICAL:=(-?\d+(?:\.\d+)?):(\d+(?:\.\d+)?)\}")
TOPICS = ",".join(t for t in ("softmax", "layernorm", "decoding") if available(t))
"""Numerical questions rounded (softmax's sum) and exact (layer norm), cloze vectors, and a
multiple choice (greedy decoding), for a quick 30-student set."""


@pytest.fixture(scope="module")
def roster_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-student roster, as in the issue's 'done when'."""
    base = tmp_path_factory.mktemp("roster")
    ids = [f"s{n:03d}" for n in range(1, 31)]
    (base / "class.csv").write_text("id,name\n" + "".join(f"{i},Student {i}\n" for i in ids))
    out = base / "out"
    assert main(["problems", "--seed", "2025", "--roster", str(base / "class.csv"),
                 "--topic", TOPICS, "--moodle", "-o", str(out)]) == 0
    return out


def _questions(root: ET.Element) -> list[ET.Element]:
    return [q for q in root.findall("question") if q.get("type") != "category"]


def _answers(out: Path) -> list[dict[str, Any]]:
    """Every part of every variant, in the quiz's order (by problem, part, variant)."""
    data = json.loads((out / "answers.json").read_text())
    variants = data["variants"]
    parts = []
    for k in range(len(variants[0]["problems"])):
        for j in range(len(variants[0]["problems"][k]["parts"])):
            parts += [v["problems"][k]["parts"][j] for v in variants]
    return parts


def test_the_file_is_well_formed_moodle_xml(roster_set: Path) -> None:
    raw = (roster_set / "quiz.xml").read_text(encoding="utf-8")
    assert raw.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<quiz>')
    root = ET.fromstring(raw.encode("utf-8"))
    assert root.tag == "quiz"
    types = [q.get("type") for q in root.findall("question")]
    assert set(types) <= QTYPES and set(types) >= {"category", "cloze"}
    for q in root.findall("question"):
        if q.get("type") == "category":
            text = q.findtext("category/text")
            assert text is not None and text.startswith("$course$/top/exacttransformer seed 2025/")
            continue
        assert (q.findtext("name/text") or "").strip()
        qt = q.find("questiontext")
        assert qt is not None and qt.get("format") == "html"
        assert (qt.findtext("text") or "").startswith("<p><b>")
    # the question text is in CDATA, as the format page recommends for HTML
    assert raw.count('<questiontext format="html"><text><![CDATA[') == len(_questions(root))
    names = [q.findtext("name/text") for q in _questions(root)]
    assert len(names) == len(set(names))


def test_question_html_is_well_formed(roster_set: Path) -> None:
    root = ET.fromstring((roster_set / "quiz.xml").read_bytes())
    for q in _questions(root)[:40]:
        ET.fromstring("<div>" + (q.findtext("questiontext/text") or "") + "</div>")


def test_each_part_is_a_question_with_its_key(roster_set: Path) -> None:
    root = ET.fromstring((roster_set / "quiz.xml").read_bytes())
    questions = _questions(root)
    parts = _answers(roster_set)
    assert len(questions) == len(parts)
    for q, part in zip(questions, parts, strict=True):
        flat = [a for row in part["answer"] for a in row]
        if part["form"] == "choice":
            assert q.get("type") == "multichoice" and q.findtext("single") == "true"
            right = [a for a in q.findall("answer") if a.get("fraction") == "100"]
            assert len(right) == 1 and right[0].findtext("text") == flat[0]
            texts = [a.findtext("text") or "" for a in q.findall("answer")]
            assert sorted(texts) == sorted(part["choices"])
        elif len(flat) == 1:
            assert q.get("type") == "numerical"
            (answer,) = q.findall("answer")
            assert answer.get("fraction") == "100"
            assert answer.findtext("text") == flat[0]
            assert answer.findtext("tolerance") == part["tolerance"]
            float(answer.findtext("text") or "x")
        else:
            assert q.get("type") == "cloze"
            fields = FIELD.findall(q.findtext("questiontext/text") or "")
            assert [k for k, _ in fields] == flat
            assert {t for _, t in fields} == {part["tolerance"]}


def test_tolerance_means_exactly_the_rounding_asked(roster_set: Path) -> None:
    checked = 0
    for part in _answers(roster_set)[:60]:
        if part["form"] != "decimals":
            assert part["tolerance"] == "0"
            continue
        d = part["decimals"]
        tol = Fraction(part["tolerance"])
        assert tol == Fraction(1, 2 * 10 ** d)  # 2 decimals: accept ±0.005
        for key, exact in zip((a for r in part["answer"] for a in r),
                              (e for r in part["exact"] for e in r), strict=True):
            k = Fraction(key)
            assert abs(Fraction(to_fixed(parse_number(exact), d + 6)) - k) < tol
            for step in range(-150, 151, 7):  # a response r is accepted iff it rounds to key
                r = k + Fraction(step, 10 ** (d + 2))
                accepted = abs(r - k) <= tol
                rounds = to_fixed(parse_number(str(r)), d) == key
                assert accepted == rounds or abs(r - k) == tol
            checked += 1
    assert checked > 10


def test_cdata_never_ends_early() -> None:
    text = cdata("x ]]> y")
    root = ET.fromstring(f"<t>{text}</t>")
    assert root.text == "x ]]> y"


def test_roster_rerun_is_byte_identical(roster_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "again"
    assert main(["problems", "--seed", "2025", "--roster", str(roster_set.parent / "class.csv"),
                 "--topic", TOPICS, "--moodle", "-o", str(out)]) == 0
    first = {p.relative_to(roster_set): p.read_bytes() for p in roster_set.rglob("*")
             if p.is_file() and p.suffix in (".tex", ".json", ".xml", ".toml")}
    second = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert first == second
    assert len([n for n in second if str(n).startswith("variants")]) == 30 * len(TOPICS.split(","))


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_the_roster_sheets_compile(roster_set: Path, tmp_path: Path) -> None:
    shutil.copy(roster_set / "problems.tex", tmp_path / "problems.tex")
    result = subprocess.run(["pdflatex", "-halt-on-error", "-interaction=nonstopmode",
                             "-no-shell-escape", "problems.tex"], cwd=tmp_path,
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=240)
    assert result.returncode == 0, (tmp_path / "problems.log").read_text(errors="replace")[-2000:]
    log = (tmp_path / "problems.log").read_text(errors="replace")
    pages = re.search(r"Output written on problems\.pdf \((\d+) pages?", log)
    assert pages is not None and int(pages.group(1)) >= 30
