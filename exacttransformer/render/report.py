"""Check reports as text, Markdown (an errata table) and JSON (SPEC §4).

Layer: presentation.  Reads a :class:`~exacttransformer.check.Report`; computes nothing
except the certified decimals it prints.
"""

from __future__ import annotations

import json
from typing import Any

from ..check import MARKS, VERDICTS, ClaimResult, ElementResult, Report
from ..exact.printing import format_exact, to_sig
from .markdown import md_escape

APPROX_DIGITS = 15


def _where(c: ClaimResult) -> str:
    claim = c.claim
    parts = [claim.name]
    if claim.token is not None:
        parts.append(f"[{claim.token}]")
    extra = []
    if claim.layer:
        extra.append(f"layer {claim.layer}")
    if claim.head:
        extra.append(f"head {claim.head}")
    return "".join(parts) + (f" ({', '.join(extra)})" if extra else "")


def _short(x: Any, digits: int = 6) -> str:
    return to_sig(x, digits)


def _element_line(report: Report, e: ElementResult) -> str:
    exact = format_exact(e.exact)
    shown = exact if len(exact) <= 40 else "…"
    text = f"{e.claimed}: exact {shown} = {_short(e.exact, 8)}…, correctly rounded {e.correct}"
    if e.verdict in ("drift", "carried") and e.replayed is not None:
        used = ", ".join(report.describe(r) for r in e.rests_on)
        text += f"; replayed from the printed {used} → {_short(e.replayed, 8)}"
    if e.verdict == "carried" and e.origin is not None:
        text += f"; inherits the error of {report.describe(e.origin)}"
    if e.verdict == "wrong" and e.replayed is not None and e.rests_on:
        text += f" (even from the printed inputs it would be {_short(e.replayed, 8)})"
    return text


def render_text(report: Report) -> str:
    lines = [f"{report.file}: {len(report.claims)} claims, "
             f"{sum(len(c.elements) for c in report.claims)} printed numbers"]
    if not report.claims:
        lines.append("The file has no [[claims]]: nothing to check.")
        return "\n".join(lines) + "\n"
    for c in report.claims:
        verdict = c.verdict
        values = ", ".join(e.claimed for e in c.elements)
        head = f"{MARKS[verdict]} {verdict:<9} claims[{c.claim.number}] {_where(c)} = {values}"
        if c.claim.note:
            head += f"   ({c.claim.note})"
        lines.append(head)
        for e in c.elements:
            if e.verdict != "exact":
                lines.append(f"      {MARKS[e.verdict]} {_element_line(report, e)}")
    summary = report.summary()
    lines.append("")
    lines.append("Summary: " + ", ".join(f"{summary[v]} {v}" for v in VERDICTS))
    first = report.first_wrong()
    if first is None:
        lines.append("No wrong number.")
    else:
        c, e = first
        lines.append(f"First wrong number: {_where(c)} = {e.claimed} (exact {_short(e.exact)}…, "
                     f"correctly rounded {e.correct}); "
                     f"{report.inheritors(c, e)} later numbers inherit it.")
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return md_escape(text).replace("\n", " ")


def render_markdown(report: Report) -> str:
    lines = [f"# Errata check: {md_escape(report.file)}", ""]
    if not report.claims:
        return "\n".join(lines + ["The file has no claims: nothing to check.", ""])
    lines.append("| # | node | claimed | exact | correctly rounded | verdict | rests on | note |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for c in report.claims:
        for e in c.elements:
            rests = ", ".join(report.describe(r) for r in e.rests_on) if e.verdict in (
                "drift", "carried") else ""
            lines.append("| " + " | ".join([
                str(c.claim.number), _md_cell(_where(c)), _md_cell(e.claimed),
                _md_cell(_short(e.exact, 8)), _md_cell(e.correct),
                f"{MARKS[e.verdict]} {e.verdict}", _md_cell(rests), _md_cell(c.claim.note),
            ]) + " |")
    summary = report.summary()
    lines += ["", "**Summary:** " + ", ".join(f"{summary[v]} {v}" for v in VERDICTS) + "."]
    first = report.first_wrong()
    if first is not None:
        c, e = first
        lines.append(f"**First wrong number:** {_md_cell(_where(c))} = {_md_cell(e.claimed)}; "
                     f"{report.inheritors(c, e)} later numbers inherit it.")
    return "\n".join(lines) + "\n"


def report_json(report: Report) -> dict[str, Any]:
    claims = []
    for c in report.claims:
        claims.append({
            "name": c.claim.name,
            "token": c.claim.token,
            "layer": c.claim.layer,
            "head": c.claim.head,
            "verdict": c.verdict,
            "from": list(c.rests_on_names),
            "elements": [{
                "index": list(e.index),
                "claimed": e.claimed,
                "exact": format_exact(e.exact),
                "approx": to_sig(e.exact, APPROX_DIGITS),
                "correct": e.correct,
                "replayed": None if e.replayed is None else to_sig(e.replayed, APPROX_DIGITS),
                "verdict": e.verdict,
                "rests_on": [report.describe(r) for r in e.rests_on],
            } for e in c.elements],
            "note": c.claim.note,
        })
    return {"file": report.file, "summary": report.summary(), "claims": claims}


def render_json(report: Report) -> str:
    return json.dumps(report_json(report), ensure_ascii=False, indent=1) + "\n"
