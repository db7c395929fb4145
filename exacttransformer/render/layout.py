"""Trace -> step views: which rows to show, labelled, with exact and decimal strings.

Layer: presentation.  Follow-one-token mode shows the token's row of every per-token node
and the whole of what that row reads from other tokens (keys, values); full mode shows
whole matrices.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..numbers import format_exact, to_sig
from ..trace import Step, Trace


@lru_cache(maxsize=65536)
def _exact(x: object) -> str:
    return format_exact(x)  # type: ignore[arg-type]


@lru_cache(maxsize=65536)
def _approx(x: object, digits: int) -> str:
    return to_sig(x, digits)  # type: ignore[arg-type]


ROWS_ARE_KEYS = frozenset(("k", "v", "x_kv"))
"""Nodes whose rows are the keys' tokens (shown whole when following one token)."""


@dataclass(frozen=True)
class MatrixView:
    """Rows of one matrix, with labels, as exact and decimal strings."""

    labels: tuple[str, ...]
    exact: tuple[tuple[str, ...], ...]
    approx: tuple[tuple[str, ...], ...]
    raw: tuple[tuple[object, ...], ...]


@dataclass(frozen=True)
class StepView:
    step: Step
    title: str
    result: MatrixView
    operands: tuple[tuple[str, MatrixView], ...]


def row_labels(trace: Trace, step_name: str, rows: int) -> tuple[str, ...]:
    """Token texts for the rows of a node, where its rows are tokens."""
    tokens = trace.kv_tokens if step_name in ROWS_ARE_KEYS and trace.kv_tokens else trace.tokens
    if rows == len(tokens):
        return tuple(tokens)
    return tuple(str(i) for i in range(rows))


def view_matrix(
    trace: Trace, name: str, value: tuple[tuple[object, ...], ...], digits: int,
    token: int | None, is_param: bool = False,
) -> MatrixView:
    rows = len(value)
    labels = row_labels(trace, name, rows) if not is_param else tuple(str(i) for i in range(rows))
    keep = range(rows)
    if token is not None and not is_param and name not in ROWS_ARE_KEYS and rows == len(trace.tokens):
        keep = range(token, token + 1)
    picked = tuple(value[i] for i in keep)
    return MatrixView(
        labels=tuple(labels[i] for i in keep),
        exact=tuple(tuple(_exact(x) for x in r) for r in picked),
        approx=tuple(tuple(_approx(x, digits) for x in r) for r in picked),
        raw=picked,
    )


PARAM_NAMES = frozenset(
    ("W_Q", "W_K", "W_V", "W_O", "W1", "W2", "b_Q", "b_K", "b_V", "b_O", "b1", "b2", "E", "P",
     "W_U", "b_U", "gamma1", "beta1", "gamma2", "beta2", "gamma_f", "beta_f")
)


def layout(trace: Trace, *, token: int | None = None, digits: int = 6) -> list[StepView]:
    """One view per step, in trace order."""
    views = []
    for n, step in enumerate(trace.steps, start=1):
        result = view_matrix(trace, step.name, step.value, digits, token)
        # A step whose rows are the keys' tokens reads every token's row.
        row_token = None if step.name in ROWS_ARE_KEYS else token
        shape_only = {step.inputs[i][0] for i, d in enumerate(step.deps) if d == ("shape",)}
        operands = tuple(
            (label, view_matrix(trace, label, value, digits, row_token,
                                is_param=label in PARAM_NAMES))
            for label, value in step.operands
            if label not in shape_only
        )
        views.append(StepView(step=step, title=f"{n}. {step.label()}", result=result,
                              operands=operands))
    return views
