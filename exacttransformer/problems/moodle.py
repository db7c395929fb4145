"""``quiz.xml``: the problems as a Moodle XML question bank, ready to import.

Layer: presentation.  The format is Moodle's documented XML import format
(docs.moodle.org, "Moodle XML format"): a ``<quiz>`` of ``<question>`` elements, each with
a ``<name>``, an HTML ``<questiontext>`` in CDATA, and per type:

- a part with one number is a ``numerical`` question: ``<answer fraction="100">`` holds the
  key and ``<tolerance>`` half a unit of the last decimal asked for (2 decimals: 0.005;
  Moodle accepts ``key ± tolerance``, exactly the numbers that round to the key), 0 for
  exact answers;
- a part with several numbers (a row vector, a matrix) is a ``cloze`` (embedded answers)
  question with one ``{1:NUMERICAL:=key:tolerance}`` field per entry;
- a choice of word (greedy decoding) is a ``multichoice`` question with one correct answer.

Questions are grouped in categories ``exacttransformer seed S/<topic>/<part>``; every
question repeats its problem's data, so a quiz can draw one random question per category
(each student a different variant) or use a student's own questions.  The exact values
are in each question's general feedback.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from xml.sax.saxutils import escape as xml_escape

from .answers import exact_text, key_rows, tolerance
from .generator import Part, Problem, ProblemSet, Request, Variant
from .specs import Given, Math, Piece, fill
from .topics import TOPICS

PENALTY = "0.3333333"


def cdata(text: str) -> str:
    """``text`` in a CDATA section (a ``]]>`` inside is split across two sections).

    >>> cdata("a ]]> b")
    '<![CDATA[a ]]]]><![CDATA[> b]]>'
    """
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _h(text: str) -> str:
    return html.escape(text, quote=False)


def _pieces(pieces: Sequence[Piece], problem: Problem) -> str:
    return "".join(_h(p.plain) if isinstance(p, Math) else _h(fill(p, problem.draft))
                   for p in pieces).strip()


def _entry(x: object) -> str:
    return _h(str(x))


def matrix_html(g: Given, problem: Problem) -> str:
    """A given matrix as an HTML table, rows labelled by token where they are tokens."""
    cols = len(g.value[0])
    vocab = list(dict(problem.draft.extra_input).get("vocab", ()))
    head = ""
    if g.cols == "vocab" and len(vocab) == cols:
        lead = "<th></th>" if g.rows == "tokens" else ""
        head = "<tr>" + lead + "".join(f"<th>{_h(w)}</th>" for w in vocab) + "</tr>"
    rows = []
    for i, row in enumerate(g.value):
        label = ""
        if g.rows == "tokens" and not g.vector:
            label = f"<th>{_h(problem.draft.tokens[i])}</th>"
        rows.append("<tr>" + label + "".join(f"<td>{_entry(x)}</td>" for x in row) + "</tr>")
    return (f"<p>{_h(g.symbol.plain)} =</p>"
            '<table border="1" cellpadding="4" style="border-collapse:collapse;'
            'text-align:right;margin-bottom:8px">' + head + "".join(rows) + "</table>")


def intro_html(problem: Problem) -> str:
    """The problem's statement and data, self-contained."""
    out = [f"<p><b>{_h(problem.topic.title)}</b></p>",
           f"<p>{_pieces(problem.draft.facts, problem)}</p>"]
    if len(problem.draft.tokens) > 1:
        out.append("<p>Tokens, one row each, in this order: "
                   + ", ".join(f"<code>{_h(t)}</code>" for t in problem.draft.tokens) + ".</p>")
    out += [matrix_html(g, problem) for g in problem.draft.givens]
    return "".join(out)


def _ask(part: Part) -> str:
    form = {"exact": "exactly", "decimals": f"to {part.decimals} decimal places"}.get(
        part.spec.form, "")
    prompt = part.prompt[0].upper() + part.prompt[1:]
    return f"<p>({part.label}) {_h(prompt)}" + (f", {form}" if form else "") + ".</p>"


def _feedback(part: Part) -> str:
    exact = [exact_text(x) for x in part.flat]
    return "<p>Exact value" + ("s" if len(exact) > 1 else "") + ": " + _h(", ".join(exact)) + "</p>"


def _name(problem: Problem, variant: Variant, part: Part) -> str:
    return xml_escape(f"{problem.topic.name} {variant.number:03d} ({variant.student}) "
                      f"({part.label}) {part.spec.name}")


def _common(problem: Problem, variant: Variant, part: Part, qtype: str, text: str) -> list[str]:
    return [
        f'  <question type="{qtype}">',
        f"    <name><text>{_name(problem, variant, part)}</text></name>",
        f'    <questiontext format="html"><text>{cdata(text)}</text></questiontext>',
        f'    <generalfeedback format="html"><text>{cdata(_feedback(part))}</text>'
        "</generalfeedback>",
    ]


def numerical(problem: Problem, variant: Variant, part: Part) -> str:
    key = key_rows(part)[0][0]
    tol = tolerance(part.spec.form, part.decimals)
    lines = _common(problem, variant, part, "numerical", intro_html(problem) + _ask(part))
    lines += [
        "    <defaultgrade>1</defaultgrade>",
        f"    <penalty>{PENALTY}</penalty>",
        "    <hidden>0</hidden>",
        '    <answer fraction="100" format="moodle_auto_format">',
        f"      <text>{key}</text>",
        '      <feedback format="html"><text></text></feedback>',
        f"      <tolerance>{tol}</tolerance>",
        "    </answer>",
        "    <unitgradingtype>0</unitgradingtype>",
        "    <unitpenalty>0.1000000</unitpenalty>",
        "    <showunits>3</showunits>",
        "    <unitsleft>0</unitsleft>",
        "  </question>",
    ]
    return "\n".join(lines)


def cloze(problem: Problem, variant: Variant, part: Part) -> str:
    """One embedded NUMERICAL field per entry, laid out like the matrix."""
    tol = tolerance(part.spec.form, part.decimals)
    rows = []
    for row in key_rows(part):
        cells = "".join(f'<td style="padding:2px 6px">{{1:NUMERICAL:={k}:{tol}}}</td>'
                        for k in row)
        rows.append(f"<tr>{cells}</tr>")
    field = f'<table style="border-collapse:collapse">{"".join(rows)}</table>'
    lines = _common(problem, variant, part, "cloze", intro_html(problem) + _ask(part) + field)
    lines += [f"    <penalty>{PENALTY}</penalty>", "    <hidden>0</hidden>", "  </question>"]
    return "\n".join(lines)


def multichoice(problem: Problem, variant: Variant, part: Part) -> str:
    correct = key_rows(part)[0][0]
    lines = _common(problem, variant, part, "multichoice", intro_html(problem) + _ask(part))
    lines += ["    <defaultgrade>1</defaultgrade>", f"    <penalty>{PENALTY}</penalty>",
              "    <hidden>0</hidden>", "    <single>true</single>",
              "    <shuffleanswers>false</shuffleanswers>",
              "    <answernumbering>abc</answernumbering>"]
    for word in part.choices:
        fraction = "100" if word == correct else "0"
        lines += [f'    <answer fraction="{fraction}" format="html">',
                  f"      <text>{cdata(_h(word))}</text>",
                  '      <feedback format="html"><text></text></feedback>',
                  "    </answer>"]
    lines.append("  </question>")
    return "\n".join(lines)


def question(problem: Problem, variant: Variant, part: Part) -> str:
    if part.spec.form == "choice":
        return multichoice(problem, variant, part)
    if part.scalar:
        return numerical(problem, variant, part)
    return cloze(problem, variant, part)


def categories(request: Request) -> list[list[str]]:
    """One category per topic and part: ``exacttransformer seed S/<topic>/(a) <node>``."""
    out = []
    for name in request.topics:
        topic = TOPICS[name]
        specs = topic.parts(topic.shape(request.difficulty, request.overrides))
        row = []
        for i, spec in enumerate(specs):
            path = (f"$course$/top/exacttransformer seed {request.seed}/{topic.title}/"
                    f"({chr(ord('a') + i)}) {spec.name}")
            row.append('  <question type="category">\n'
                       f"    <category><text>{xml_escape(path)}</text></category>\n"
                       "  </question>")
        out.append(row)
    return out


def variant_questions(variant: Variant) -> tuple[tuple[str, ...], ...]:
    """Every part's question, by problem and part."""
    return tuple(tuple(question(p, variant, part) for part in p.parts) for p in variant.problems)


def quiz_document(request: Request, questions: list[tuple[tuple[str, ...], ...]]) -> str:
    """The question bank: each category followed by every variant's question in it."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<quiz>"]
    for k, row in enumerate(categories(request)):
        for j, head in enumerate(row):
            out.append(head)
            out += [q[k][j] for q in questions]
    out.append("</quiz>")
    return "\n".join(out) + "\n"


def quiz_xml(problem_set: ProblemSet) -> str:
    """``quiz.xml`` for a generated problem set."""
    return quiz_document(problem_set.request,
                         [variant_questions(v) for v in problem_set.variants])
