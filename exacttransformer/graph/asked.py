"""Nodes that a file asks for by name: numbers that walkthroughs print between the steps.

Layer: names only (no arithmetic).  A published walkthrough often prints a quantity between
two nodes of SPEC §3, for example the update ``−lr · grad`` before the new weight. These nodes
are not in the graph by default. A node is added only when a claim names it, so a file that
names none of them gets the same graph and the same output as before.  This module:

* says which claim names are valid (:func:`name_problem`, whose message lists them), and
* collects the names a file's claims ask for (:func:`asked_names`), which
  :class:`~exacttransformer.graph.model.Inputs` carries to the graph builders.

Docs: ``docs/nodes.md``, "Numbers that walkthroughs print between the steps".

>>> name_problem("delta.W_Q") is None, name_problem("delta.W9") is not None
(True, True)
>>> sorted(asked_names(["delta.W1", "q", "grad.W1", "mean(ln1)"]))
['delta.W1', 'mean(ln1)']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import InputError, suggest
from .params import LAYER_MATRICES, LAYER_VECTORS, MODEL_MATRICES, MODEL_VECTORS

PARAM_NAMES = LAYER_MATRICES + LAYER_VECTORS + MODEL_MATRICES + MODEL_VECTORS

DELTA = "delta."
"""``delta.<param>`` = ``−learning_rate · grad.<param>``: the update itself."""


PRODUCTS = tuple(f"{n}_product" for n in
                 ("q", "k", "v", "q_pre", "k_pre", "attn_out", "ffn_pre", "ffn_out", "logits"))
"""``<node>_product``: the product ``x W`` of a linear step before its bias is added."""


CONTRIB = "contrib"
"""Per-key contributions ``weights[i, j] · v[j, :]``, n × (m·d_head): key ``j``'s block of
columns in query ``i``'s row; a claim selects the query with ``token`` and the key with ``key``."""

STATISTICS = ("rowsum", "mean", "var", "std")
"""``<statistic>(<node>)``: a statistic of each row of a node (module :mod:`.stats`)."""


def parse_statistic(name: str) -> tuple[str, str] | None:
    """``("rowsum", "weights")`` for ``"rowsum(weights)"``; None for a name of another form.

    >>> parse_statistic("var(ln1)"), parse_statistic("ln1")
    (('var', 'ln1'), None)
    """
    stat, paren, rest = name.partition("(")
    if not paren or not rest.endswith(")") or not stat.isidentifier():
        return None
    return stat, rest[:-1].strip()


def _statistic_problem(stat: str, inner: str, node_names: tuple[str, ...]) -> str | None:
    if stat not in STATISTICS:
        return (f"unknown statistic {stat!r} in {stat}({inner}); the statistics are: "
                f"{', '.join(STATISTICS)}")
    if inner not in node_names and inner not in PRODUCTS and inner != CONTRIB:
        return (f"unknown node {inner!r} in {stat}({inner}); a statistic reads one of: "
                f"{', '.join(node_names + PRODUCTS + (CONTRIB,))}")
    return None


def _delta_problem(name: str) -> str | None:
    param = name[len(DELTA):]
    if param in PARAM_NAMES:
        return None
    return (f"unknown parameter {param!r} in {name!r}; the update of a weight is "
            f"delta.<weight>, with <weight> one of: {', '.join(PARAM_NAMES)}")


def name_problem(name: str, node_names: tuple[str, ...] = ()) -> str | None:
    """What is wrong with ``name`` as one of this module's claim names (None: nothing).

    ``node_names`` are the nodes a statistic may read.  Names that are not this module's
    names return None too: the caller checks those against SPEC §3.
    """
    if name.startswith(DELTA):
        return _delta_problem(name)
    parsed = parse_statistic(name)
    if parsed is not None:
        return _statistic_problem(*parsed, node_names)
    return None


def claim_name_problem(name: str, node_names: tuple[str, ...],
                       prefixes: tuple[str, ...]) -> str | None:
    """What is wrong with ``name`` as a claim's node name (None: nothing); an unknown name's
    message lists the valid ones."""
    problem = name_problem(name, node_names)
    if problem is not None or name in node_names or name.startswith(prefixes) \
            or is_asked_name(name):
        return problem
    return f"unknown node {name!r}; {suggest(name, node_names + FORMS)}"


def is_asked_name(name: str) -> bool:
    """Whether ``name`` is a node that exists only when a claim asks for it."""
    return (name.startswith(DELTA) or name in PRODUCTS or name == CONTRIB
            or parse_statistic(name) is not None)


def asked_names(names: Iterable[str]) -> frozenset[str]:
    """The names among ``names`` that add nodes to the graph."""
    out: set[str] = set()
    for n in names:
        if is_asked_name(n):
            out.add(n)
            parsed = parse_statistic(n)
            if parsed is not None and is_asked_name(parsed[1]):
                out.add(parsed[1])  # the statistic of a product needs the product
    return frozenset(out)


FORMS = (CONTRIB, "delta.<weight>", "<statistic>(<node>)") + PRODUCTS
"""How the names of this module look, for messages that list the valid names."""


def claim_key(claim: Mapping[str, Any], name: str, where: str,
              keys: Sequence[str]) -> str | int | None:
    """The ``key`` of a claim on ``contrib`` (a key token's text or 0-based index), checked.

    >>> claim_key({"key": "cat"}, "contrib", "claims[0]", ("The", "cat"))
    'cat'
    """
    key = claim.get("key")
    if key is None:
        return None
    if name != CONTRIB:
        raise InputError(f"only a claim on {CONTRIB} selects a key (this one is {name!r})",
                         key=f"{where}.key")
    if isinstance(key, str) and key in keys:
        return key
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(keys):
        return key
    raise InputError(f"{key!r} is not one of the keys' tokens ({', '.join(keys)}) "
                     "or their 0-based index", key=f"{where}.key")
