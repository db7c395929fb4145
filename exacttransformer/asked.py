"""Nodes that a file asks for by name: numbers that walkthroughs print between the steps.

Layer: names only (no arithmetic).  A published walkthrough often prints a quantity between
two nodes of SPEC §3, for example the update ``−lr · grad`` before the new weight. These nodes
are not in the graph by default. A node is added only when a claim names it, so a file that
names none of them gets the same graph and the same output as before.  This module:

* says which claim names are valid (:func:`name_problem`, whose message lists them), and
* collects the names a file's claims ask for (:func:`asked_names`), which
  :class:`~exacttransformer.model.Inputs` carries to the graph builders.

Docs: ``docs/nodes.md``, "Numbers that walkthroughs print between the steps".

>>> name_problem("delta.W_Q") is None, name_problem("delta.W9") is not None
(True, True)
>>> sorted(asked_names(["delta.W1", "q", "grad.W1"]))
['delta.W1']
"""

from __future__ import annotations

from collections.abc import Iterable

from .params import LAYER_MATRICES, LAYER_VECTORS, MODEL_MATRICES, MODEL_VECTORS

PARAM_NAMES = LAYER_MATRICES + LAYER_VECTORS + MODEL_MATRICES + MODEL_VECTORS

DELTA = "delta."
"""``delta.<param>`` = ``−learning_rate · grad.<param>``: the update itself."""


PRODUCTS = tuple(f"{n}_product" for n in
                 ("q", "k", "v", "q_pre", "k_pre", "attn_out", "ffn_pre", "ffn_out", "logits"))
"""``<node>_product``: the product ``x W`` of a linear step before its bias is added."""


def _delta_problem(name: str) -> str | None:
    param = name[len(DELTA):]
    if param in PARAM_NAMES:
        return None
    return (f"unknown parameter {param!r} in {name!r}; the update of a weight is "
            f"delta.<weight>, with <weight> one of: {', '.join(PARAM_NAMES)}")


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as one of this module's claim names (None: nothing).

    Names that are not this module's names return None too: the caller checks those
    against SPEC §3.
    """
    if name.startswith(DELTA):
        return _delta_problem(name)
    return None


def is_asked_name(name: str) -> bool:
    """Whether ``name`` is a node that exists only when a claim asks for it."""
    return name.startswith(DELTA) or name in PRODUCTS


def asked_names(names: Iterable[str]) -> frozenset[str]:
    """The names among ``names`` that add nodes to the graph."""
    return frozenset(n for n in names if is_asked_name(n) and name_problem(n) is None)


FORMS = ("delta.<weight>",) + PRODUCTS
"""How the names of this module look, for messages that list the valid names."""
