"""Trace -> step views: which rows to show, labelled, with exact and decimal strings.

Layer: presentation.  Follow-one-token mode shows the token's row of every per-token node
and the whole of what that row reads from other tokens (keys, values); full mode shows
whole matrices.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache

from .. import progress
from ..exact.printing import format_exact, to_sig
from ..graph.trace import Key, Step, Trace


@lru_cache(maxsize=65536)
def _exact(x: object) -> str:
    return format_exact(x)  # type: ignore[arg-type]


@lru_cache(maxsize=65536)
def _approx(x: object, digits: int) -> str:
    return to_sig(x, digits)  # type: ignore[arg-type]


ROWS_ARE_KEYS = frozenset(("k", "v", "x_kv", "x_k", "x_v"))
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
    operand_keys: tuple[Key | None, ...] = ()  # the node each operand is (None: a weight)


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
    if name.split(".")[-1] == "E" and len(trace.vocab) == rows:
        labels = trace.vocab  # the embedding table has a row per word
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


VOCAB_NODES = frozenset(("logits", "scaled_logits", "shifted_logits", "exp_logits", "probs",
                         "top_k_probs", "top_p_probs", "filtered_probs", "sample_cdf",
                         "analogy_cosine", "b_U"))
"""Nodes with one column per word of the vocabulary (``gen.<s>`` too)."""
RANKED_NODES = frozenset(("top_p_sorted", "top_p_cumsum"))
"""Nodes with one column per rank (largest probability first)."""


def column_labels(trace: Trace, step: Step) -> tuple[str, tuple[str, ...]] | None:
    """What the columns of a row-shaped step stand for, when the trace says: its header
    (``word``, ``rank``, ``pair``, ``continuation``, ``piece``) and one label per column.

    >>> import exacttransformer as et
    >>> trace = et.loads('[model]\\ntemperature = "1"\\n[input]\\nvocab = ["a", "b"]\\n'
    ...                  'logits = [["1", "2"]]\\n', "x.toml").forward()
    >>> column_labels(trace, trace.get("probs", None, None))
    ('word', ('a', 'b'))
    """
    n_cols = step.shape[1]
    if n_cols < 2 or not step.value:
        return None
    vocab = trace.vocab
    base = step.name.split(".", 1)[1] if step.name.startswith(("grad.", "new.")) else step.name
    if len(vocab) == n_cols and (base in VOCAB_NODES or step.name.startswith("gen.")):
        return "word", vocab
    if step.name in RANKED_NODES:
        order = rank_order(trace, n_cols)
        if order is None:
            return "rank", tuple(str(j + 1) for j in range(n_cols))
        return "rank", tuple(f"{j + 1}. {vocab[i]}" for j, i in enumerate(order))
    for head, found in (("pair", pair_labels(step)), ("continuation", beam_labels(step))):
        if found is not None:
            return head, found
    if step.name.startswith("bpe.word.") and len(step.value) == 1 and all(
            getattr(x, "is_Integer", False) and 0 <= int(x) < len(vocab) for x in step.value[0]):
        return "piece", tuple(vocab[int(x)] for x in step.value[0])
    return None


def rank_order(trace: Trace, n_cols: int) -> list[int] | None:
    """The ids in rank order, as ``top_p_sorted``'s formula names them (``order 3
    ('coming'), 6 ('here'), …``), when they name every word once."""
    step = trace.find("top_p_sorted", None, None)
    if step is None or len(trace.vocab) != n_cols or "; order " not in step.formula:
        return None
    told = step.formula.split("; order ", 1)[1]
    ids = [int(i) for i in re.findall(r"(?:^|, )(\d+) \(", told)]
    return ids if sorted(ids) == list(range(n_cols)) else None


def pair_labels(step: Step) -> tuple[str, ...] | None:
    """The pairs a BPE merge round counts, in column order, as its formula names them."""
    if not step.name.startswith("bpe.merge."):
        return None
    main = step.formula.partition("; ")[0]
    if " (" not in main or not main.endswith(")"):
        return None
    pairs = tuple(main[main.index(" (") + 2:-1].split(", "))
    return pairs if len(pairs) == step.shape[1] else None


def beam_labels(step: Step) -> tuple[str, ...] | None:
    """The continuations a beam step ranks, as its formula names them (``best first: 'a b',
    'c d'``), when there is one per column."""
    if not step.name.startswith("beam.") or "; best first: " not in step.formula:
        return None
    told = step.formula.split("; best first: ", 1)[1]
    try:
        texts = ast.literal_eval("(" + told + ",)")
    except (ValueError, SyntaxError):
        return None
    if len(texts) != step.shape[1] or not all(isinstance(t, str) for t in texts):
        return None
    return tuple(texts)


PARAM_NAMES = frozenset(
    ("W_Q", "W_K", "W_V", "W_O", "W1", "W2", "b_Q", "b_K", "b_V", "b_O", "b1", "b2", "E", "P",
     "W_U", "b_U", "gamma1", "beta1", "gamma2", "beta2", "gamma_f", "beta_f")
)


def layout(trace: Trace, *, token: int | None = None, digits: int = 6) -> list[StepView]:
    """One view per step, in trace order."""
    views = []
    for n, step in enumerate(trace.steps, start=1):
        progress.at("printing", n - 1, len(trace.steps), step.key)
        result = view_matrix(trace, step.name, step.value, digits, token)
        # A step whose rows are the keys' tokens reads every token's row.
        row_token = None if step.name in ROWS_ARE_KEYS else token
        shape_only = {step.inputs[i][0] for i, d in enumerate(step.deps) if d == ("shape",)}
        kept = [(i, label, value) for i, (label, value) in enumerate(step.operands)
                if label not in shape_only]
        operands = tuple(
            (label, view_matrix(trace, label, value, digits, row_token,
                                is_param=label in PARAM_NAMES))
            for _, label, value in kept
        )
        keys = tuple(step.inputs[i] if i < len(step.inputs) else None for i, _, _ in kept)
        views.append(StepView(step=step, title=f"{n}. {step.label()}", result=result,
                              operands=operands, operand_keys=keys))
    return views
