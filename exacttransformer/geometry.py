"""Embedding geometry, exactly: cosine similarity and the analogy king − man + woman.

Layer: steps.  ``cos(a, b) = a·b / (|a| |b|)`` with the square roots kept symbolic, so
``cos = 1/2`` stays ``1/2`` and ``cos = 1/√2`` stays ``sqrt(2)/2``.  The analogy vector
``E[a] − E[b] + E[c]`` is compared with every row of ``E`` by cosine, the three words of
the question excluded (as word2vec's evaluation does; otherwise ``king`` itself is often
the answer), and the nearest is found by proven comparisons.  A tie goes to the lower id
and is reported.

>>> from exacttransformer.backends import EXACT
>>> from sympy import Integer as I
>>> cosine(EXACT, (I(1), I(0)), (I(1), I(1)))
sqrt(2)/2
>>> E = ((I(3), I(1)), (I(1), I(1)), (I(1), I(3)), (I(3), I(3)), (I(0), I(1)))
>>> v = analogy(EXACT, E, 0, 1, 2)        # king − man + woman
>>> v
(3, 3)
>>> nearest(EXACT, v, E, exclude=(0, 1, 2))
(3, (3,))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .backends.base import Backend, Num
from .decoding import argmax
from .errors import ComputationError
from .linalg import Matrix, Vector


def length(be: Backend, v: Sequence[Num]) -> Num:
    """``|v| = sqrt(v·v)``."""
    return be.sqrt(be.dot(v, v))


def cosine(be: Backend, a: Sequence[Num], b: Sequence[Num]) -> Num:
    """``a·b / (|a| |b|)``; a zero vector has no direction and is refused."""
    na, nb = length(be, a), length(be, b)
    if be.sign(na) == 0 or be.sign(nb) == 0:
        raise ComputationError("cosine similarity of a zero vector (it has no direction)")
    return be.div(be.dot(a, b), be.mul(na, nb))


def cosine_matrix(be: Backend, rows: Matrix, others: Matrix | None = None) -> Matrix:
    """``cos(rows[i], others[j])`` for every pair (``others`` defaults to ``rows``)."""
    cols = rows if others is None else others
    return tuple(tuple(cosine(be, a, b) for b in cols) for a in rows)


def analogy(be: Backend, table: Matrix, a: int, b: int, c: int) -> Vector:
    """``E[a] − E[b] + E[c]`` (king − man + woman)."""
    return tuple(be.add(be.sub(x, y), z) for x, y, z in zip(table[a], table[b], table[c],
                                                             strict=True))


def nearest(be: Backend, v: Sequence[Num], table: Matrix,
            exclude: Sequence[int] = ()) -> tuple[int, tuple[int, ...]]:
    """The row of ``table`` with the largest cosine to ``v`` (excluded rows skipped), and
    every row tied with it."""
    sims = cosine_matrix(be, (tuple(v),), table)[0]
    return nearest_of(be, sims, exclude)


def nearest_of(be: Backend, sims: Sequence[Num], exclude: Sequence[int] = ()) -> tuple[int, tuple[int, ...]]:
    """Like :func:`nearest`, from the cosines already computed."""
    keep = [i for i in range(len(sims)) if i not in set(exclude)]
    if not keep:
        raise ComputationError("every word is excluded: nothing left to be nearest")
    choice = argmax(be, [sims[i] for i in keep])
    return keep[choice.index], tuple(keep[i] for i in choice.ties)


def geometry_nodes(params: Any, inputs: Any) -> list[Any]:
    """``cosine`` between the tokens and the analogy steps, when ``[input] analogy`` is given."""
    from .graph import Node
    from .model import MEANINGS
    from .tokens import lookup

    table = params.E
    if inputs.analogy is None or table is None or not inputs.vocab:
        return []
    vocab = inputs.vocab
    a, b, c = lookup(inputs.analogy, vocab, inputs.unk)
    words = inputs.analogy

    def node(name: str, ins: list[Any], formula: str, fn: Any, deps: list[Any],
             note: Any = None) -> Node:
        return Node(key=(name, None, None), inputs=tuple(ins), formula=formula, fn=fn,
                    deps=tuple(deps), meaning=MEANINGS.get(name, ""), note=note,
                    params=(("E", table),) if "E" in formula else ())

    def near_note(be: Backend, ins: Sequence[Matrix], value: Matrix) -> str:
        best, ties = nearest_of(be, ins[0][0], (a, b, c))
        tie = (f"; tied: {', '.join(repr(vocab[t]) for t in ties)} (the lowest id wins)"
               if len(ties) > 1 else "")
        return f"{words[0]} − {words[1]} + {words[2]} ≈ {vocab[best]!r}{tie}"

    embed = ("embed", None, None)
    return [
        node("cosine", [embed, embed], "embed[i]·embed[j] / (|embed[i]| |embed[j]|)",
             lambda be, i, p: cosine_matrix(be, i[0]), [("row",), ("rowT",)]),
        node("analogy", [], f"E[{words[0]}] − E[{words[1]}] + E[{words[2]}]",
             lambda be, i, p: (analogy(be, p["E"], a, b, c),), []),
        node("analogy_cosine", [("analogy", None, None)], "cosine of analogy with each row of E",
             lambda be, i, p: cosine_matrix(be, i[0], p["E"]), [("row",)]),
        node("analogy_nearest", [("analogy_cosine", None, None)],
             f"argmax of analogy_cosine, leaving out {', '.join(words)}",
             lambda be, i, p: ((be.integer(nearest_of(be, i[0][0], (a, b, c))[0]),),),
             [("row",)], near_note),
    ]
