"""What a problem set is made of: the difficulties and size limits, a topic's :class:`Shape`,
the statement pieces (:class:`Math`, :class:`Given`), the :class:`Draft` a topic builds,
the parts a student answers (:class:`PartSpec`) and the :class:`Topic` itself.

Layer: problem definitions (no arithmetic).  The catalogue of topics is
:mod:`exacttransformer.problems.topics`; their constraints, which read these types,
are :mod:`exacttransformer.problems.constraints`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from ..errors import ExactTransformerError

DIFFICULTIES = ("easy", "medium", "hard")


class ConstraintError(ExactTransformerError):
    """Settings no variant can satisfy, or a search that found no variant that does."""


MAX_COUNT = 500
"""The most variants one command makes (``--count`` or roster rows)."""

LIMITS = {"tokens": (1, 8), "d_model": (1, 8), "d_head": (1, 16), "decimals": (1, 6),
          "max_entry": (1, 9)}
"""The documented range of each size option (problems stay hand-computable)."""


def check_limits(option: str, value: int) -> str | None:
    """A message when a size option is outside its documented range.

    >>> check_limits("tokens", 9)
    '--tokens 9 is outside 1…8'
    """
    lo, hi = LIMITS[option]
    if not lo <= value <= hi:
        return f"--{option.replace('_', '-')} {value} is outside {lo}…{hi}"
    return None

Entry = int | Fraction
Grid = tuple[tuple[Entry, ...], ...]


# --------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Shape:
    """Sizes and number ranges of one topic at one difficulty.

    ``x_entry``/``w_entry`` bound the inputs and the weights (integers in ``[-n, n]``);
    ``bound`` bounds every rational intermediate and ``max_den`` its denominator;
    ``decimals`` is the rounding the rounded answers ask for and ``margin`` (in units of
    the last decimal) how far from a rounding tie every rounded answer must be.
    """

    difficulty: str = "medium"
    tokens: int = 3
    d_model: int = 4
    d_head: int = 4
    d_v: int = 2
    d_ff: int = 4
    heads: int = 1
    vocab: int = 4
    x_entry: int = 2
    w_entry: int = 1
    zeros: float = 0.3
    bound: int = 20
    max_den: int = 4
    decimals: int = 2
    margin: Fraction = Fraction(1, 50)
    exact: bool = True
    bias: bool = False
    halves: bool = False
    base: int = 10000
    temperatures: tuple[Fraction, ...] = (Fraction(1),)
    top_k: int = 2
    top_ps: tuple[Fraction, ...] = (Fraction(4, 5),)
    learning_rate: Fraction = Fraction(1, 2)

    def describe(self) -> dict[str, Any]:
        """The settings that shape the numbers, for ``answers.json``."""
        return {
            "difficulty": self.difficulty, "tokens": self.tokens, "d_model": self.d_model,
            "d_head": self.d_head, "d_ff": self.d_ff, "heads": self.heads,
            "vocab": self.vocab, "max_input_entry": self.x_entry,
            "max_weight_entry": self.w_entry, "bound": self.bound,
            "max_denominator": self.max_den, "decimals": self.decimals,
            "rounding_margin": str(self.margin),
        }


OVERRIDES = {
    "tokens": ("tokens",),
    "d_model": ("d_model",),
    "d_head": ("d_head",),
    "decimals": ("decimals",),
    "max_entry": ("x_entry", "w_entry"),
}
"""Command-line overrides and the :class:`Shape` fields each one sets."""


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Math:
    """A piece of mathematics in a statement: LaTeX for the sheets, plain text for HTML."""

    latex: str
    plain: str


Piece = str | Math
"""A statement is a sequence of plain-text strings and :class:`Math` pieces."""


@dataclass(frozen=True)
class Given:
    """One matrix (or vector) the student is given, as it appears in the file."""

    key: str  # the walkthrough-file key: "X", "W_Q", "q", …
    section: str  # "input" or "weights"
    symbol: Math
    value: Grid
    rows: str = ""  # "tokens" when the rows are the tokens, "vocab" for the vocabulary
    cols: str = ""
    vector: bool = False  # a bias or gain: written as a flat list

    def toml_value(self) -> Any:
        if self.vector:
            return list(self.value[0])
        return [list(r) for r in self.value]


@dataclass(frozen=True)
class Draft:
    """A variant's model as walkthrough-file data, plus what the statement shows."""

    title: str
    tokens: tuple[str, ...]
    row: int  # the token the parts ask about
    model: tuple[tuple[str, Any], ...] = ()
    givens: tuple[Given, ...] = ()
    extra_input: tuple[tuple[str, Any], ...] = ()  # vocab, target
    decoding: tuple[tuple[str, Any], ...] = ()
    facts: tuple[Piece, ...] = ()  # sentences of the statement beyond the givens

    @property
    def token(self) -> str:
        return self.tokens[self.row]

    def given(self, key: str) -> Given | None:
        return next((g for g in self.givens if g.key == key), None)

    def setting(self, key: str) -> Any:
        return dict(self.model).get(key)

    def with_(self, *, givens: Sequence[Given] = (), model: Sequence[tuple[str, Any]] = (),
              facts: Sequence[Piece] = (), extra_input: Sequence[tuple[str, Any]] = (),
              decoding: Sequence[tuple[str, Any]] = ()) -> Draft:
        """A copy with more givens, settings and statement sentences; a given or setting
        of a name already present replaces it in place."""
        return replace(self, givens=_merge(self.givens, givens, lambda g: g.key),
                       model=_merge(self.model, model, lambda kv: kv[0]),
                       facts=self.facts + tuple(facts),
                       extra_input=_merge(self.extra_input, extra_input, lambda kv: kv[0]),
                       decoding=_merge(self.decoding, decoding, lambda kv: kv[0]))


def _merge(old: tuple[Any, ...], new: Sequence[Any], key: Callable[[Any], str]
           ) -> tuple[Any, ...]:
    fresh = {key(x): x for x in new}
    out = [fresh.pop(key(x), x) for x in old]
    return tuple(out) + tuple(x for x in new if key(x) in fresh)


@dataclass(frozen=True)
class PartSpec:
    """One thing the student computes: a node's row (or whole value) in a given form.

    ``form`` is ``"exact"`` (a whole number or a terminating decimal, given exactly),
    ``"decimals"`` (rounded to :attr:`Shape.decimals` places) or ``"choice"`` (a word of
    the vocabulary, keyed by its index).
    """

    node: str
    prompt: str
    form: str = "decimals"
    layer: int | None = 0
    head: int | None = 0
    row: bool = True

    @property
    def name(self) -> str:
        return self.node if not self.head else f"{self.node} (head {self.head})"


Stage = Callable[[random.Random, Shape, "Draft | None", Any], Draft]
"""``(rng, shape, draft so far, trace of the draft so far) -> draft``; the first stage gets
``None`` for both.  A stage may read the trace to aim its draw (the constraints still
decide)."""


@dataclass(frozen=True)
class Topic:
    """A kind of problem: presets, the stages that draw a model, and the parts asked."""

    name: str
    title: str
    summary: str
    presets: Mapping[str, Shape]
    stages: tuple[Stage, ...]
    parts: Callable[[Shape], tuple[PartSpec, ...]]
    solution: tuple[str, ...]
    requires: tuple[str, ...] = ()
    uses: frozenset[str] = field(default_factory=frozenset)

    def shape(self, difficulty: str, overrides: Mapping[str, int] | None = None) -> Shape:
        """The preset for ``difficulty`` with the command line's overrides applied."""
        base = self.presets[difficulty]
        changes: dict[str, Any] = {}
        for option, value in (overrides or {}).items():
            if option in self.uses:
                for name in OVERRIDES[option]:
                    changes[name] = value
        return replace(base, **changes)



def fill(text: str, draft: Draft) -> str:
    """A prompt or statement sentence with the asked token (and its row) filled in.

    >>> fill("the query of “{token}” at {row}", Draft("t", ("a", "b"), 1))
    'the query of “b” at 1'
    """
    return text.replace("{token}", draft.token).replace("{row}", str(draft.row))
