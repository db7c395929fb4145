"""The graph's geometry nodes: cosines between tokens and the analogy steps.

Layer: graph.  The values are computed by :mod:`exacttransformer.steps.geometry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..exact.backends.base import Backend
from ..exact.linalg import Matrix
from ..steps.geometry import analogy, cosine_matrix, nearest_of


def geometry_nodes(params: Any, inputs: Any) -> list[Any]:
    """``cosine`` between the tokens and the analogy steps, when ``[input] analogy`` is given."""
    from ..steps.tokens import lookup
    from .graph import Node
    from .model import MEANINGS

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
