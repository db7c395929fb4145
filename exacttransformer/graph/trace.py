"""Step and Trace: the immutable record of a forward pass that every reader uses.

Layer: records.  A :class:`Step` says what one node of the graph did (its name, layer,
head, the nodes it read, its formula, the operands it substituted, its value); a
:class:`Trace` is the ordered tuple of steps plus the context a reader needs (tokens,
settings).  Renderers and the checker read traces; they never recompute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import InputError, suggest
from ..exact.linalg import Matrix, shape
from .config import ModelConfig

Key = tuple[str, int | None, int | None]
"""A node's address: ``(name, layer, head)``; ``None`` where the node has no layer/head."""

Dep = tuple[Any, ...]
"""How an output element depends on one input's elements (see :mod:`exacttransformer.graph`)."""


DISPLAY: dict[str, Callable[[Trace], str]] = {}
"""How a trace shows itself in a notebook ("markdown", "latex"): the renderers live layers
above this module, so the package facade (:mod:`exacttransformer`) registers them."""


@dataclass(frozen=True)
class Step:
    """One computed (or given) node.

    ``operands`` are the named values the formula substitutes, in formula order
    (inputs and the parameter slices this step used), so a renderer can show
    "the numbers substituted" without recomputing anything.
    """

    name: str
    layer: int | None
    head: int | None
    inputs: tuple[Key, ...]
    formula: str
    value: Matrix
    given: bool = False
    operands: tuple[tuple[str, Matrix], ...] = ()
    deps: tuple[Dep, ...] = ()
    meaning: str = ""

    @property
    def key(self) -> Key:
        return (self.name, self.layer, self.head)

    @property
    def shape(self) -> tuple[int, int]:
        return shape(self.value)

    def label(self) -> str:
        """``name`` with its layer and head, e.g. ``weights[layer 0, head 1]``."""
        parts = []
        if self.layer is not None:
            parts.append(f"layer {self.layer}")
        if self.head is not None:
            parts.append(f"head {self.head}")
        return f"{self.name}[{', '.join(parts)}]" if parts else self.name


@dataclass(frozen=True)
class Trace:
    """The steps of one forward pass, in the order they were computed."""

    steps: tuple[Step, ...]
    tokens: tuple[str, ...] = ()
    kv_tokens: tuple[str, ...] = ()
    config: ModelConfig = field(default_factory=ModelConfig)
    backend: str = "exact"
    title: str = ""
    source: str = ""
    vocab: tuple[str, ...] = ()  # the vocabulary's words, for labelling its 1×V rows
    _index: MappingProxyType[Key, Step] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", MappingProxyType({s.key: s for s in self.steps}))

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def names(self) -> list[str]:
        """Distinct node names, in order of first appearance."""
        return list(dict.fromkeys(s.name for s in self.steps))

    def find(self, name: str, layer: int | None = 0, head: int | None = 0) -> Step | None:
        """The step for ``name`` at ``layer``/``head``, ignoring what the node lacks."""
        for key in ((name, layer, head), (name, layer, None), (name, None, None)):
            step = self._index.get(key)
            if step is not None:
                return step
        return None

    def get(self, name: str, layer: int | None = 0, head: int | None = 0) -> Step:
        """Like :meth:`find`, but a missing node is an :class:`InputError` with a hint."""
        step = self.find(name, layer, head)
        if step is None:
            names = self.names()
            if name in names:
                raise InputError(f"node {name!r} has no layer {layer} / head {head} here")
            raise InputError(f"node {name!r} was not computed; {suggest(name, names)}")
        return step

    def value(self, name: str, layer: int | None = 0, head: int | None = 0) -> Matrix:
        return self.get(name, layer, head).value

    def _repr_markdown_(self) -> str | None:
        """Jupyter: the worked example as Markdown with KaTeX/MathJax math."""
        show = DISPLAY.get("markdown")
        return show(self) if show is not None else None

    def _repr_latex_(self) -> str | None:
        """Jupyter (and nbconvert): every step as one aligned display."""
        show = DISPLAY.get("latex")
        return show(self) if show is not None else None

    def token_index(self, token: str | int, *, kv: bool = False) -> int:
        """A token given by text (first match) or 0-based index."""
        tokens = self.kv_tokens if kv and self.kv_tokens else self.tokens
        if isinstance(token, int) and not isinstance(token, bool):
            if 0 <= token < max(len(tokens), 1):
                return token
            raise InputError(f"token index {token} is out of range (0…{len(tokens) - 1})")
        if token in tokens:
            return tokens.index(token)
        raise InputError(f"token {token!r} is not among the tokens; {suggest(str(token), tokens)}")
