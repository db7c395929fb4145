"""Choosing the next token, exactly: greedy, top-k, top-p, sampling, beam search, generation.

Layer: steps (on one probability row); the loops that run a model again and again, and
the graph's decoding nodes, are in :mod:`exacttransformer.graph.decoding_nodes`.
Every comparison is proven (:func:`exacttransformer.numbers.sign` through the backend),
never decided by a float.  The rules, which the walkthrough prints next to each choice:

- **Order.**  Tokens are ranked by probability, largest first; exactly equal probabilities
  keep vocabulary order (the lower id first).  The ranking compares the *logits* at the
  temperature: exp is increasing and every probability shares one denominator, so the
  order is the same, proven on smaller numbers.
- **Greedy** takes the first token of that order; an exact tie is reported (every tied
  id is named) and goes to the lowest id.
- **Top-k** keeps the first ``k`` tokens of the order (a tie across the boundary keeps
  the lower ids, and is reported) and renormalizes: kept ``p / Σ kept p``, the rest 0.
- **Top-p** (nucleus) keeps the shortest prefix of the order whose cumulative sum is
  ``>= p``, comparing each cumulative sum with ``p`` exactly, and renormalizes.
- **Sampling** from a given uniform number ``u`` in [0, 1) walks the cumulative sums in
  vocabulary order and takes the first token whose cumulative sum exceeds ``u`` (the
  inverse CDF), so a textbook's "we drew 0.42" gives the same token every time.  When both
  filters are given, sampling uses the tokens kept by both, renormalized.
- **Beam search** keeps the ``beam_width`` sequences with the largest probability (the
  product of their tokens' probabilities; ties: the sequence whose ids come first).
- **Generation** appends the chosen token and runs the model again, ``steps`` times;
  with a causal mask it can keep each layer's keys and values (the KV cache) and feed only
  the new token, which gives exactly the same logits (:func:`generate` checks nothing;
  ``tests/test_decoding.py`` proves the equality with ``==``).

>>> from exacttransformer.exact.backends import EXACT
>>> from sympy import Rational as R
>>> p = (R(1, 10), R(4, 10), R(4, 10), R(1, 10))
>>> argmax(EXACT, p)
Choice(index=1, ties=(1, 2))
>>> top_k(EXACT, p, 1).kept, top_k(EXACT, p, 1).probs
((1,), (0, 1, 0, 0))
>>> top_p(EXACT, p, R(1, 2)).kept, top_p(EXACT, p, R(1, 2)).cumsum
((1, 2), (2/5, 4/5, 9/10, 1))
>>> sample(EXACT, p, R(42, 100))
(1, (1/10, 1/2, 9/10, 1))
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ComputationError, InputError
from ..exact.backends.base import Backend, Num
from ..exact.linalg import Vector

# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class DecodingConfig:
    """The ``[decoding]`` table: which strategies to show, with their exact settings.

    ``u`` is one uniform number, or one per generated token; ``steps`` is how many tokens
    the generation loop appends; ``kv_cache`` feeds only the new token when the mask is
    causal (otherwise the loop recomputes from scratch).
    """

    top_k: int | None = None
    top_p: Num | None = None
    u: tuple[Num, ...] = ()
    beam_width: int | None = None
    steps: int | None = None
    kv_cache: bool = True

    def present(self) -> bool:
        return any(v not in (None, ()) for v in
                   (self.top_k, self.top_p, self.u, self.beam_width, self.steps))


# --------------------------------------------------------------------------- one row


@dataclass(frozen=True)
class Choice:
    """The chosen id, and every id tied with it (a tuple of one when there is no tie)."""

    index: int
    ties: tuple[int, ...]


@dataclass(frozen=True)
class Filtered:
    """A filter's result: the kept ids (in rank order), the renormalized row, and the rest."""

    kept: tuple[int, ...]
    probs: Vector
    order: tuple[int, ...] = ()
    cumsum: Vector = ()
    boundary_ties: tuple[int, ...] = ()


def compare(be: Backend, a: Num, b: Num) -> int:
    return be.sign(be.sub(a, b))


def rank(be: Backend, row: Sequence[Num]) -> tuple[int, ...]:
    """Ids from the largest value to the smallest; equal values keep id order (proven).

    >>> from exacttransformer.exact.backends import EXACT
    >>> from sympy import Integer as I
    >>> rank(EXACT, (I(1), I(3), I(3), I(0)))
    (1, 2, 0, 3)
    """
    def cmp(i: int, j: int) -> int:
        c = compare(be, row[j], row[i])
        return c if c != 0 else (i > j) - (i < j)

    return tuple(sorted(range(len(row)), key=functools.cmp_to_key(cmp)))


def _ties(be: Backend, row: Sequence[Num], order: Sequence[int], at: int) -> tuple[int, ...]:
    """The ids in ``order`` whose value equals that of ``order[at]``."""
    pivot = row[order[at]]
    return tuple(sorted(i for i in order if compare(be, row[i], pivot) == 0))


def argmax(be: Backend, row: Sequence[Num], by: Sequence[Num] | None = None) -> Choice:
    """The largest entry's id (ties: the lowest id); ``by`` ranks instead of ``row``."""
    key = row if by is None else by
    order = rank(be, key)
    return Choice(order[0], _ties(be, key, order, 0))


def _renormalize(be: Backend, row: Sequence[Num], kept: Sequence[int]) -> Vector:
    total = be.total([row[i] for i in sorted(kept)])
    keep = set(kept)
    return tuple(be.div(x, total) if i in keep else be.integer(0) for i, x in enumerate(row))


def top_k(be: Backend, row: Sequence[Num], k: int, by: Sequence[Num] | None = None) -> Filtered:
    """Keep the ``k`` most probable tokens and renormalize (``by`` ranks instead of ``row``)."""
    if k < 1:
        raise InputError(f"top_k must be at least 1, got {k}", key="decoding.top_k")
    key = row if by is None else by
    order = rank(be, key)
    k = min(k, len(row))
    kept = order[:k]
    ties: tuple[int, ...] = ()
    if k < len(row) and compare(be, key[order[k - 1]], key[order[k]]) == 0:
        ties = _ties(be, key, order, k - 1)
    return Filtered(kept, _renormalize(be, row, kept), order, (), ties)


def top_p(be: Backend, row: Sequence[Num], p: Num, by: Sequence[Num] | None = None) -> Filtered:
    """Keep the shortest prefix of the ranking whose cumulative sum reaches ``p``.

    ``cumsum`` holds the cumulative sums in rank order (each compared with ``p`` exactly).
    """
    order = rank(be, row if by is None else by)
    sums: list[Num] = []
    kept: tuple[int, ...] = ()
    for n, _i in enumerate(order):
        sums.append(be.total([row[j] for j in order[:n + 1]]))
        if not kept and compare(be, sums[-1], p) >= 0:
            kept = order[:n + 1]
    if not kept:
        raise ComputationError("top_p: the probabilities never reach p (they sum below 1?)")
    return Filtered(kept, _renormalize(be, row, kept), order, tuple(sums))


def cdf(be: Backend, row: Sequence[Num]) -> Vector:
    """Cumulative sums in vocabulary order."""
    return tuple(be.total(list(row[:n + 1])) for n in range(len(row)))


def sample(be: Backend, row: Sequence[Num], u: Num) -> tuple[int, Vector]:
    """The first id whose cumulative probability exceeds ``u`` (inverse CDF), and the CDF."""
    sums = cdf(be, row)
    for i, c in enumerate(sums):
        if be.sign(row[i]) > 0 and compare(be, c, u) > 0:
            return i, sums
    raise ComputationError(f"u = {u} is not below the total probability (u must be in [0, 1))")


def filtered(be: Backend, row: Sequence[Num], by: Sequence[Num], settings: DecodingConfig) -> Vector:
    """The distribution sampling draws from: the tokens kept by every filter, renormalized."""
    keep = set(range(len(row)))
    if settings.top_k is not None:
        keep &= set(top_k(be, row, settings.top_k, by).kept)
    if settings.top_p is not None:
        keep &= set(top_p(be, row, be.const(settings.top_p), by).kept)
    return _renormalize(be, row, sorted(keep)) if len(keep) < len(row) else tuple(row)


def choose(be: Backend, row: Sequence[Num], by: Sequence[Num], settings: DecodingConfig,
           u: Num | None) -> int:
    """Greedy when ``u`` is None, else a sample from the filtered distribution."""
    if u is None:
        return argmax(be, row, by).index
    return sample(be, filtered(be, row, by, settings), be.const(u))[0]


# --------------------------------------------------------------------------- running a model
