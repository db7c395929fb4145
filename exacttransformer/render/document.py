"""The document model of a worked example: blocks of prose and math that the LaTeX,
Markdown and Jupyter writers turn into text, the :class:`Target` they write for, and the
:class:`Options` of a document.

Layer: presentation.  Built by :mod:`exacttransformer.render.mathdoc`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .forms import SIZE_LIMIT

# --------------------------------------------------------------------------- blocks

Run = tuple[str, str]
"""A piece of prose: ``("text", s)`` plain words, ``("math", s)`` inline math,
``("code", s)`` a user string shown literally (a token), ``("note", s)`` smaller words."""


@dataclass(frozen=True)
class Heading:
    level: int  # 1 title, 2 section, 3 step
    runs: tuple[Run, ...]


@dataclass(frozen=True)
class Para:
    runs: tuple[Run, ...]


@dataclass(frozen=True)
class Items:
    items: tuple[tuple[Run, ...], ...]


@dataclass(frozen=True)
class Display:
    """Aligned display lines ``(lhs, relation, rhs)``; ``lhs`` is empty on continuations."""

    lines: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class Heatmap:
    """Attention weights of one head: rows are queries, columns keys."""

    caption: tuple[Run, ...]
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    cells: tuple[tuple[str, ...], ...]  # values to two decimals ("" for none)
    shades: tuple[tuple[int, ...], ...]  # 0 … 100
    highlight: int | None = None


@dataclass(frozen=True)
class ClaimRow:
    label: tuple[Run, ...]
    note: str
    printed: tuple[tuple[str, str], ...]  # (text as printed, verdict of that element)
    exact: tuple[str, ...]  # inline math
    correct: tuple[Run, ...]
    verdict: str | None
    exact_note: str = ""  # math, e.g. what t stands for


@dataclass(frozen=True)
class ClaimsTable:
    rows: tuple[ClaimRow, ...]


@dataclass(frozen=True)
class Table:
    """A small table: a header and rows, each cell a tuple of runs.  The first column holds
    labels (words, pairs, ranks); the others values."""

    header: tuple[tuple[Run, ...], ...]
    rows: tuple[tuple[tuple[Run, ...], ...], ...]


Block = Heading | Para | Items | Display | Heatmap | ClaimsTable | Table


class Target(Protocol):
    """What the output format needs to show user text safely inside math."""

    def token(self, index: int, text: str) -> str:
        """A token label for a subscript, as math."""

    def words(self, text: str) -> str:
        """Arbitrary text (a formula string) as math."""


@dataclass(frozen=True)
class Options:
    token: int | None = None
    digits: int = 4
    max_cols: int = 10
    max_rows: int = 12
    size_limit: int = SIZE_LIMIT
    budget: float = 410.0  # points one display line may use
    heatmap_limit: int = 32  # no heatmap for more tokens than this
    strut: str = ""  # set before full-size fractions in a matrix, to keep rows apart


@dataclass(frozen=True)
class WordLines:
    """A formula in words too long for one display line: ``(relation, math)`` per line."""

    lines: tuple[tuple[str, str], ...]
