"""The JSON walkthrough of SPEC §5: ``{"steps": [{"name", "layer", "head", "shape",
"exact", "approx"}]}`` with whole matrices (rows in token order), plus the tokens.

Layer: presentation.
"""

from __future__ import annotations

import json
from typing import Any

from ..graph.trace import Trace
from .layout import layout


def walkthrough_json(trace: Trace, *, digits: int = 6, token: int | None = None) -> dict[str, Any]:
    steps = []
    for view in layout(trace, digits=digits):
        step = view.step
        steps.append({
            "name": step.name,
            "layer": step.layer,
            "head": step.head,
            "shape": list(step.shape),
            "formula": step.formula,
            "exact": [list(r) for r in view.result.exact],
            "approx": [list(r) for r in view.result.approx],
        })
    out: dict[str, Any] = {"title": trace.title, "tokens": list(trace.tokens), "digits": digits}
    if token is not None:
        out["token"] = token
    out["steps"] = steps
    return out


def render_json(trace: Trace, *, digits: int = 6, token: int | None = None) -> str:
    return json.dumps(walkthrough_json(trace, digits=digits, token=token), ensure_ascii=False,
                      indent=1) + "\n"
