"""Trace -> a worked example: blocks of prose and math, shared by the LaTeX, Markdown and
Jupyter writers.

Layer: presentation.  Every number comes from the trace (``step.value``,
``step.operands``); nothing is recomputed.  A step reads like a textbook line, in the
order handcalcs made familiar: the formula in symbols, the same with the numbers
substituted, the exact result, and ``≈`` its decimal (certified by
:mod:`exacttransformer.numbers`).  Math is written in LaTeX notation that KaTeX and MathJax
understand too; user text (tokens, titles) is never put into math directly: a
:class:`Target` turns it into something safe for the output format.

>>> import exacttransformer as et
>>> class Plain:
...     def token(self, index, text): return r"\\text{" + text + "}"
...     def words(self, text): return r"\\text{" + text + "}"
>>> blocks = build(et.load("cat").forward(), Plain(), Options(token=1))
>>> alpha = next(b for b in blocks if isinstance(b, Display)
...              and b.lines[0][0].startswith(r"\\alpha"))
>>> print(alpha.lines[2][2].replace(r"\\displaystyle ", ""))
\\begin{bmatrix} \\frac{t}{t + 2} & \\frac{1}{t + 2} & \\frac{1}{t + 2} \\end{bmatrix}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import sympy

from .. import progress
from ..errors import ExactTransformerError, InputError
from ..exact.linalg import Matrix
from ..exact.printing import to_fixed, to_sig
from ..graph.trace import Key, Step, Trace
from .forms import SIZE_LIMIT, SoftmaxForm, T, decimal_tex, folded, size, softmax_form, tex, width
from .layout import PARAM_NAMES, ROWS_ARE_KEYS, column_labels, pair_labels

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


# --------------------------------------------------------------------------- names

TITLES = {
    "ids": "Token ids", "embed": "Embeddings", "pos": "Positional encoding",
    "x": "Layer input", "x_kv": "Key and value input", "attn_in": "What attention reads",
    "ln1_mean": "First layer norm: mean", "ln1_var": "First layer norm: variance",
    "ln1": "First layer norm", "ln2_mean": "Second layer norm: mean",
    "ln2_var": "Second layer norm: variance", "ln2": "Second layer norm",
    "lnf_mean": "Final layer norm: mean", "lnf_var": "Final layer norm: variance",
    "lnf": "Final layer norm", "q": "Queries", "k": "Keys", "v": "Values",
    "scores": "Scores", "sqrt_dk": "Square root of the key width", "scale": "Scale",
    "scaled_scores": "Scaled scores", "shifted_scores": "Shifted scores",
    "exp_scores": "Exponentials", "exp_sum": "Sum of the exponentials",
    "weights": "Attention weights", "z": "Weighted sum of the values",
    "concat": "Heads side by side", "attn_out": "Attention output",
    "resid_mid": "First residual connection", "ffn_in": "What the feed-forward reads",
    "ffn_pre": "Feed-forward hidden layer", "ffn_act": "Activation",
    "ffn_out": "Feed-forward output", "resid_post": "Second residual connection",
    "out": "Block output", "final": "What the unembedding reads", "logits": "Logits",
    "scaled_logits": "Logits over the temperature", "shifted_logits": "Shifted logits",
    "exp_logits": "Exponentials of the logits", "exp_logits_sum": "Sum of the exponentials",
    "probs": "Probabilities of the next token", "loss": "Cross-entropy loss",
    "rope_angle": "Rotation angles (RoPE)", "q_pre": "Queries before the rotation",
    "k_pre": "Keys before the rotation", "greedy": "Greedy choice",
    "top_k_probs": "Top-k: the k most probable words", "top_p_sorted": "Probabilities, largest first",
    "top_p_cumsum": "Running sums of the sorted probabilities",
    "top_p_probs": "Top-p: the nucleus", "filtered_probs": "Top-k and top-p together",
    "sample_cdf": "Cumulative probabilities", "sample": "The sampled word",
    "cosine": "Cosine similarity", "analogy": "Analogy vector",
    "analogy_cosine": "Cosine of the analogy with every word",
    "analogy_nearest": "The nearest word",
}
NUMBERED_TITLES = {"bpe.merge": "BPE training, merge {}", "bpe.word": "BPE encoding, word {}",
                   "gen": "Generation, pass {}", "beam": "Beam search, step {}"}
"""Names that end in a number (``bpe.merge.3``, ``gen.2``)."""

# Node symbols: "@h" becomes the head superscript, "@r" the row (token) subscript.
SYMBOLS: dict[str, tuple[str, str]] = {
    "ids": (r"\mathrm{id}@r", r"\mathrm{ids}"),
    "embed": (r"e@r", r"X_{\mathrm{emb}}"),
    "pos": (r"p@r", r"X_{\mathrm{pos}}"),
    "x": (r"x@r", "X"),
    "x_kv": (r"x^{\mathrm{kv}}@r", r"X_{\mathrm{kv}}"),
    "attn_in": (r"\tilde{x}@r", r"\tilde{X}"),
    "q": ("q@h@r", "Q@h"), "k": ("k@h@r", "K@h"), "v": ("v@h@r", "V@h"),
    "scores": ("s@h@r", "S@h"),
    "sqrt_dk": (r"\sqrt{d_k}", r"\sqrt{d_k}"),
    "scale": (r"\lambda", r"\lambda"),
    "scaled_scores": (r"\tilde{s}@h@r", r"\tilde{S}@h"),
    "shifted_scores": (r"\bar{s}@h@r", r"\bar{S}@h"),
    "exp_scores": ("u@h@r", "U@h"),
    "exp_sum": (r"\Sigma@h@r", r"\Sigma@h"),
    "weights": (r"\alpha@h@r", "A@h"),
    "z": ("z@h@r", "Z@h"),
    "concat": ("c@r", "C"),
    "attn_out": ("o@r", "O"),
    "resid_mid": ("x'@r", "X'"),
    "ffn_in": ("f@r", "F"),
    "ffn_pre": ("h@r", "H"),
    "ffn_act": ("g@r", "G"),
    "ffn_out": ("y@r", "Y"),
    "resid_post": ("x''@r", "X''"),
    "out": (r"x^{\mathrm{out}}@r", r"X^{\mathrm{out}}"),
    "final": (r"x^{\mathrm{f}}@r", r"X^{\mathrm{f}}"),
    "logits": (r"\ell@r", "L"),
    "scaled_logits": (r"\tilde{\ell}@r", r"\tilde{L}"),
    "shifted_logits": (r"\bar{\ell}@r", r"\bar{L}"),
    "exp_logits": (r"\rho@r", "R"),
    "exp_logits_sum": (r"\Sigma^{\mathrm{voc}}@r", r"\Sigma^{\mathrm{voc}}"),
    "probs": (r"\pi@r", r"\Pi"),
    "loss": (r"\mathcal{L}", r"\mathcal{L}"),
    "rope_angle": (r"\theta@r", r"\Theta"),
    "q_pre": (r"\mathring{q}@h@r", r"\mathring{Q}@h"),
    "k_pre": (r"\mathring{k}@h@r", r"\mathring{K}@h"),
    "greedy": (r"y_{\mathrm{greedy}}", r"y_{\mathrm{greedy}}"),
    "top_k_probs": (r"\pi^{\mathrm{top}\text{-}k}@r", r"\pi^{\mathrm{top}\text{-}k}"),
    "top_p_sorted": (r"\pi^{\downarrow}@r", r"\pi^{\downarrow}"),
    "top_p_cumsum": (r"S^{\downarrow}@r", r"S^{\downarrow}"),
    "top_p_probs": (r"\pi^{\mathrm{top}\text{-}p}@r", r"\pi^{\mathrm{top}\text{-}p}"),
    "filtered_probs": (r"\pi^{k,p}@r", r"\pi^{k,p}"),
    "sample_cdf": (r"F@r", "F"),
    "sample": (r"y_{\mathrm{sample}}", r"y_{\mathrm{sample}}"),
    "cosine": (r"\cos@r", r"\cos"),
    "analogy": (r"a", r"a"),
    "analogy_cosine": (r"\cos(a, E)", r"\cos(a, E)"),
    "analogy_nearest": (r"y_{a}", r"y_{a}"),
}
NUMBERED_SYMBOLS = {"bpe.merge": r"\mathrm{count}^{({})}", "bpe.word": r"\mathrm{pieces}_{{}}",
                    "gen": r"\pi^{[{}]}", "beam": r"\beta^{[{}]}"}
for _n, _tag in (("1", "(1)"), ("2", "(2)"), ("f", "(f)")):
    SYMBOLS[f"ln{_n}_mean"] = (rf"\mu^{{{_tag}}}@r", rf"\mu^{{{_tag}}}")
    SYMBOLS[f"ln{_n}_var"] = (rf"(\sigma^{{{_tag}}}@r)^2", rf"(\sigma^{{{_tag}}})^2")
    SYMBOLS[f"ln{_n}"] = (rf"\hat{{x}}^{{{_tag}}}@r", rf"\hat{{X}}^{{{_tag}}}")

PARAM_SYMBOLS = {
    "W_Q": "W_Q", "W_K": "W_K", "W_V": "W_V", "W_O": "W_O", "W1": "W_1", "W2": "W_2",
    "b_Q": "b_Q", "b_K": "b_K", "b_V": "b_V", "b_O": "b_O", "b1": "b_1", "b2": "b_2",
    "E": "E", "P": "P", "W_U": "W_U", "b_U": "b_U", "gamma1": r"\gamma_1",
    "beta1": r"\beta_1", "gamma2": r"\gamma_2", "beta2": r"\beta_2", "gamma_f": r"\gamma_f",
    "beta_f": r"\beta_f",
}
GLANCE = {"x": "enters", "q": "its query", "scores": "its scores",
          "weights": "its attention weights", "z": "what it reads",
          "attn_out": "attention output", "resid_mid": "after the first residual",
          "ffn_act": "feed-forward neurons", "out": "leaves the block",
          "probs": "next-token probabilities"}
"""The results the "at a glance" display shows for the followed token."""
HEAD_PARAMS = frozenset(("W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V"))
ACTIVATIONS = {"relu": r"\operatorname{ReLU}", "gelu": r"\operatorname{GELU}",
               "gelu_tanh": r"\operatorname{GELU}_{\tanh}", "silu": r"\operatorname{SiLU}"}
KEY_COLUMNS = frozenset(("scores", "scaled_scores", "shifted_scores", "exp_scores", "weights"))
"""Nodes with one column per key token."""
SOFTMAX = {"weights": ("exp_scores", "exp_sum", "scaled_scores"),
           "probs": ("exp_logits", "exp_logits_sum", "scaled_logits")}


# --------------------------------------------------------------------------- numbers


NOT_PRINTABLE = r"\text{n/a}"
"""A decimal the certified printer refuses (beyond ``10^{±315000}``, or undecidable)."""


def _exact_number(x: Any) -> Any:
    """A float64 value (a trace computed with the float backend) as the exact binary number
    it is, so that it prints correctly rounded rather than as a ``repr``."""
    if isinstance(x, float):
        return sympy.Rational(x) if x == x and abs(x) != float("inf") else None
    return x


@lru_cache(maxsize=65536)
def _decimal(x: sympy.Expr, digits: int) -> str:
    value = _exact_number(x)
    if value is None:
        return NOT_PRINTABLE
    try:
        return decimal_tex(to_sig(value, digits))
    except ExactTransformerError:
        return NOT_PRINTABLE


def _is_integer(x: Any) -> bool:
    return bool(getattr(x, "is_Integer", False))


def _pick(n: int, limit: int) -> list[int | None]:
    """Indices to show out of ``n``, with ``None`` where the rest are elided."""
    if n <= limit:
        return list(range(n))
    return [*range(max(limit - 2, 1)), None, n - 1]


@dataclass(frozen=True)
class Shown:
    """A matrix as printed."""

    tex: str
    width: float
    approx: bool = False  # decimals stand in for the exact values
    elided: bool = False


class _TooBig(Exception):
    def __init__(self, symbols: int):
        self.symbols = symbols


def grid(
    n_rows: int, n_cols: int, cell: Callable[[int, int], str], opts: Options,
    budget: float, *, labels: Sequence[str] | None = None, scalar_style: str = "display",
) -> Shown | None:
    """A ``bmatrix`` of ``cell(i, j)``, elided to ``opts.max_rows``/``max_cols`` and to the
    width ``budget``; ``None`` when even three columns do not fit.  ``labels`` (math, one
    per row) are set to the left of the brackets, each row as tall as the matrix row."""
    if n_rows == 1 and n_cols == 1:
        text = cell(0, 0)
        w = width(text, scalar_style)
        return Shown(text, w) if w <= budget else None
    rows = _pick(n_rows, opts.max_rows)
    cols = _pick(n_cols, opts.max_cols)
    texts = {(i, j): cell(i, j) for i in rows if i is not None for j in cols if j is not None}
    col_w = {j: max(width(texts[(i, j)]) for i in rows if i is not None)
             for j in cols if j is not None}

    label_w = 0.0
    if labels is not None:
        label_w = max(width(labels[i]) for i in rows if i is not None) * 0.72 + 6

    def total(cs: list[int | None]) -> float:
        return (sum(col_w[j] if j is not None else 13.0 for j in cs) + 10.0 * (len(cs) - 1)
                + 14 + label_w)

    while total(cols) > budget and sum(j is not None for j in cols) > 2:
        real = [j for j in cols if j is not None]
        keep = real[:-2] if None in cols else real[:-2]
        cols = [*keep, None, real[-1]]
    if total(cols) > budget:
        return None
    lines = []
    for i in rows:
        if i is None:
            lines.append(" & ".join(r"\vdots" if j is not None else r"\ddots" for j in cols))
        else:
            lines.append(" & ".join(texts[(i, j)] if j is not None else r"\cdots" for j in cols))
    sep = r" \\ "
    body = r"\begin{bmatrix} " + sep.join(lines) + r" \end{bmatrix}"
    if labels is not None:
        tags = []
        for i in rows:
            if i is None:
                tags.append(r"\vdots")
            else:
                tall = " ".join(texts[(i, j)] for j in cols if j is not None)
                tags.append(r"\vphantom{" + tall + r"}{\scriptstyle " + labels[i] + "}")
        body = r"\begin{matrix} " + sep.join(tags) + r" \end{matrix} \! " + body
    elided = None in rows or None in cols
    return Shown(body, total(cols), elided=elided)


# --------------------------------------------------------------------------- the builder


@dataclass
class _View:
    """One matrix of a step (its result or an operand) with the rows to show."""

    name: str
    key: Key | None
    value: Matrix
    rows: tuple[int, ...]
    symbol: str
    param: bool = False
    labels: tuple[str, ...] | None = None  # math, one per row in ``rows``

    @property
    def picked(self) -> tuple[tuple[Any, ...], ...]:
        return tuple(self.value[i] for i in self.rows)


@dataclass
class _Builder:
    trace: Trace
    target: Target
    opts: Options
    forms: dict[tuple[Key, tuple[int, ...]], SoftmaxForm | None] = field(default_factory=dict)

    # -- symbols and rows -------------------------------------------------------------
    @property
    def heads(self) -> int:
        return self.trace.config.heads

    @property
    def layers(self) -> int:
        return len({s.layer for s in self.trace.steps if s.layer is not None})

    def per_token(self, name: str, value: Matrix, param: bool = False) -> bool:
        return (self.opts.token is not None and not param and name not in ROWS_ARE_KEYS
                and len(value) == len(self.trace.tokens) and len(value) > 0)

    def symbol(self, name: str, head: int | None, row: int | None) -> str:
        if name.startswith("grad."):
            return r"\nabla_{" + self.symbol(name[5:], head, None) + "}"
        if name.startswith("new."):
            return sup(self.symbol(name[4:], head, None), r"\mathrm{new}")
        numbered = _numbered(name)
        if numbered is not None:
            return NUMBERED_SYMBOLS[numbered[0]].replace("{}", numbered[1])
        if name in PARAM_SYMBOLS:
            base = PARAM_SYMBOLS[name]
            return base + (f"^{{({head})}}" if head is not None and self.heads > 1
                           and name in HEAD_PARAMS else "")
        forms = SYMBOLS.get(name)
        if forms is None:
            base = r"\mathrm{" + name.replace("_", r"\_") + "}"
            forms = (base + "@h@r", base + "@h")
        text = forms[0] if row is not None else forms[1]
        head_tag = f"^{{({head})}}" if head is not None and self.heads > 1 else ""
        sub = ""
        if row is not None:
            sub = "_{" + self.target.token(row, self.trace.tokens[row]) + "}"
        return text.replace("@h", head_tag).replace("@r", sub)

    def view(self, name: str, key: Key | None, value: Matrix, param: bool = False,
             row_mode: bool = True) -> _View:
        head = key[2] if key is not None else None
        if row_mode and self.per_token(name, value, param):
            t = self.opts.token
            assert t is not None
            return _View(name, key, value, (t,), self.symbol(name, head, t), param)
        return _View(name, key, value, tuple(range(len(value))),
                     self.symbol(name, head, None), param, self.row_labels(name, value, param))

    def row_labels(self, name: str, value: Matrix, param: bool) -> tuple[str, ...] | None:
        """Token labels for a matrix with one row per token (more than one row)."""
        tokens = self.trace.kv_tokens if name in ROWS_ARE_KEYS and self.trace.kv_tokens \
            else self.trace.tokens
        if param or len(value) < 2 or len(value) != len(tokens):
            return None
        return tuple(self.target.token(i, t) for i, t in enumerate(tokens))

    def result_view(self, step: Step) -> _View:
        return self.view(step.name, step.key, step.value)

    def operand_views(self, step: Step) -> list[_View]:
        # A step whose rows are the keys' tokens reads every token's row.
        row_mode = step.name not in ROWS_ARE_KEYS
        views = []
        for n, (label, value) in enumerate(step.operands):
            if n < len(step.inputs):
                views.append(self.view(label, step.inputs[n], value, False, row_mode))
            else:
                key = (label, step.layer, step.head)
                views.append(self.view(label, key, value, label in PARAM_NAMES, row_mode))
        return views

    # -- printing matrices ------------------------------------------------------------
    @property
    def symbolic(self) -> bool:
        """Whether the trace holds exact values (not the float backend's)."""
        return self.trace.backend in ("exact", "structured")

    def readable(self, view: _View) -> SoftmaxForm | None:
        """The pulled-out-exponential form of softmax rows, checked against the values."""
        if view.name not in SOFTMAX or view.key is None or not self.symbolic:
            return None
        cache_key = (view.key, view.rows)
        if cache_key in self.forms:
            return self.forms[cache_key]
        form = None
        exps = self.trace.find(SOFTMAX[view.name][0], view.key[1], view.key[2])
        rows = view.picked
        if exps is not None and not all(x.is_Rational for r in rows for x in r) \
                and all(isinstance(x, sympy.Basic) for i in view.rows for x in exps.value[i]):
            form = softmax_form([exps.value[i] for i in view.rows])
            if form is not None and not _agrees(form, rows):
                form = None
        self.forms[cache_key] = form
        return form

    def exact(self, view: _View, budget: float, *, transpose: bool = False
              ) -> tuple[Shown | None, int]:
        """The exact matrix, or ``None`` and the size of the longest closed form."""
        if not self.symbolic:
            return None, -1
        rows = view.picked
        if transpose:
            rows = tuple(zip(*rows, strict=True))
        form = None if transpose else self.readable(view)
        source = form.entries if form is not None else rows
        n_rows, n_cols = len(source), len(source[0])
        picked_r = [i for i in _pick(n_rows, self.opts.max_rows) if i is not None]
        picked_c = [j for j in _pick(n_cols, self.opts.max_cols) if j is not None]
        biggest = max(size(source[i][j], self.opts.size_limit + 1)
                      for i in picked_r for j in picked_c)
        if biggest > self.opts.size_limit:
            return None, biggest
        strut = self.opts.strut
        shown = grid(n_rows, n_cols, lambda i, j: _cell(tex(source[i][j]), strut), self.opts,
                     budget, labels=None if transpose else view.labels)
        if (shown is None or shown.elided) and n_rows == 1 and not transpose \
                and 1 < n_cols <= self.opts.max_rows:
            # A row too wide for the line, whole as a column (labelled by the keys it reads)
            # rather than shortened with \cdots.
            column = grid(n_cols, 1, lambda i, j: _cell(tex(source[0][i]), strut), self.opts,
                          budget - 10, labels=self.key_labels(view.name, n_cols))
            if column is not None and not column.elided:
                return Shown(column.tex + r"^{\top}", column.width + 10), biggest
        return shown, biggest

    def key_labels(self, name: str, n_cols: int) -> tuple[str, ...] | None:
        """The key tokens, as math labels, when ``name``'s columns are the keys."""
        keys = self.trace.kv_tokens or self.trace.tokens
        if name not in KEY_COLUMNS or len(keys) != n_cols:
            return None
        return tuple(self.target.token(i, t) for i, t in enumerate(keys))

    def first_big(self, view: _View) -> int:
        """The size of the first shown entry over the limit (counted up to 10,000)."""
        form = self.readable(view)
        source = form.entries if form is not None else view.picked
        for row in source:
            for x in row:
                if size(x, self.opts.size_limit + 1) > self.opts.size_limit:
                    return size(x, 10_001)
        return 0

    def decimals(self, view: _View, budget: float, *, transpose: bool = False) -> Shown | None:
        rows = view.picked
        if transpose:
            rows = tuple(zip(*rows, strict=True))
        digits = self.opts.digits
        shown = grid(len(rows), len(rows[0]), lambda i, j: _decimal(rows[i][j], digits),
                     self.opts, budget, labels=None if transpose else view.labels)
        if shown is None:
            return None
        return Shown(shown.tex, shown.width, approx=True, elided=shown.elided)

    def operand(self, view: _View, budget: float, *, transpose: bool = False) -> Shown:
        """An operand for the substitution line: exact where it fits, else decimals."""
        shown, _ = self.exact(view, budget, transpose=transpose)
        if shown is not None:
            return shown
        dec = self.decimals(view, budget, transpose=transpose)
        if dec is None:  # cannot happen with three short columns, but never overflow
            return Shown(r"\cdots", 13.0, approx=True)
        return dec

    # -- sections ---------------------------------------------------------------------
    def document(self, report: Any = None, source_name: str = "") -> list[Block]:
        trace = self.trace
        blocks: list[Block] = [Heading(1, (("text", trace.title or "A worked example"),))]
        blocks += self.setup(source_name)
        if self.opts.token is not None:
            blocks += self.glance()
        layers = {s.layer for s in trace.steps if s.layer is not None}
        section: object = object()
        seen_layer = False
        for n, step in enumerate(trace.steps, start=1):
            progress.at("printing", n - 1, len(trace.steps), step.key)
            if step.layer != section:
                section = step.layer
                if step.layer is None:
                    title = "Output" if seen_layer else "Input"
                elif len(layers) == 1:
                    title = "The transformer block"
                else:
                    title = f"Layer {step.layer}"
                blocks.append(Heading(2, (("text", title),)))
            seen_layer = seen_layer or step.layer is not None
            blocks += self.step(n, step)
        if report is not None and report.claims:
            blocks += claims_blocks(report, self.trace, self.target, self.opts)
        return blocks

    def setup(self, source_name: str) -> list[Block]:
        trace, cfg = self.trace, self.trace.config
        items: list[tuple[Run, ...]] = []
        if trace.source:
            items.append((("text", "Source: "), ("text", trace.source)))
        if source_name:
            items.append((("text", "Generated by exacttransformer from "),
                          ("code", source_name), ("text", ".")))
        tokens: list[Run] = [("text", "Tokens, one row each, in this order: ")]
        for i, t in enumerate(trace.tokens):
            tokens += [("code", t), ("text", ", " if i + 1 < len(trace.tokens) else ".")]
        if any(self.target.token(i, t).startswith(r"\#") for i, t in enumerate(trace.tokens)):
            tokens.append(("text", " In formulas a long or unusual token is named by its row "
                                   "number, counting from 0: "))
            tokens += [("math", r"\#1"), ("text", " is the second token.")]
        items.append(tuple(tokens))
        if self.opts.token is not None:
            row = self.opts.token
            items.append((("text", "Following the token "), ("code", trace.tokens[row]),
                          ("text", f" (row {row}): each step shows its row only, except the keys "
                                   "and values, which it reads for every token.")))
        convention = ("Row vectors, as in PyTorch: each token is a row, and a projection is "
                      "written ")
        items.append((("text", convention), ("math", "x W"), ("text", ", with "),
                      ("math", "W"), ("text", " of shape "),
                      ("math", r"d_{\mathrm{in}} \times d_{\mathrm{out}}"), ("text", ".")))
        if cfg.vectors == "column":
            items.append((("text", "The file gave its weights column-style (d_out × d_in); "
                                   "they were transposed on load, so every W below is "
                                   "d_in × d_out."),))
        items.append(tuple(self.model_runs()))
        items.append((("text", "Exact values are shown in closed form when it has at most "
                               f"{self.opts.size_limit} symbols; every decimal after "),
                      ("math", r"\approx"),
                      ("text", f" is rounded to {self.opts.digits} significant digits and is "
                               "correct in every digit shown. Rows longer than "
                               f"{self.opts.max_cols} entries are shortened with "),
                      ("math", r"\cdots"),
                      ("text", f", and matrices taller than {self.opts.max_rows} rows "
                               "likewise.")))
        return [Heading(2, (("text", "Setup"),)), Items(tuple(items))]

    def glance(self) -> list[Block]:
        """The followed token's main results in one display, before the details."""
        lines: list[tuple[str, str, str]] = []
        notes: list[Block] = []
        for step in self.trace.steps:
            if step.name not in GLANCE or not self.per_token(step.name, step.value):
                continue
            words = GLANCE[step.name]
            if step.layer is not None and self.layers > 1:
                words += f", layer {step.layer}"
            label = r" && " + self.target.words(words)
            budget = self.opts.budget - 120
            view = self.result_view(step)
            exact, _ = self.exact(view, budget)
            dec = None
            if not all(_is_integer(x) for r in view.picked for x in r):
                dec = self.decimals(view, budget)
            if exact is not None and dec is not None \
                    and exact.width + dec.width + 20 <= budget:
                lines.append((view.symbol, "=", exact.tex + r" \approx " + dec.tex + label))
            elif exact is not None and dec is None:
                lines.append((view.symbol, "=", exact.tex + label))
            elif dec is not None:
                lines.append((view.symbol, r"\approx", dec.tex + label))
                exact = None  # not shown: no note on its t
            form = self.readable(view)
            if form is not None and exact is not None:
                notes.append(Para(self.form_note(form, view)))
        greedy = self.trace.find("greedy", None, None)
        if greedy is not None and lines and _is_integer(greedy.value[0][0]) \
                and int(greedy.value[0][0]) < len(self.trace.vocab):
            chosen = int(greedy.value[0][0])
            word = self.trace.vocab[chosen]
            words = "greedy next word: " + word if len(word) <= 14 else "greedy next word"
            lines.append((self.symbol("greedy", None, None), "=",
                          f"{chosen} && " + self.target.words(words)))
        if not lines:
            return []
        name = self.trace.tokens[self.opts.token] if self.opts.token is not None else ""
        intro: tuple[Run, ...] = (
            ("text", "The token "), ("code", name),
            ("text", " at a glance: what it enters with, what it asks for, how it weighs the "
                     "tokens it reads, and what leaves the block. Every line is worked out "
                     "below."))
        return [Heading(2, (("text", "At a glance"),)), Para(intro), Display(tuple(lines)),
                *notes]

    def model_runs(self) -> list[Run]:
        cfg, trace = self.trace.config, self.trace
        k = trace.find("k", 0, 0)
        x = trace.find("x", 0, None)
        runs: list[Run] = [("text", "Model: ")]
        if x is not None:
            runs += [("math", rf"d_{{\mathrm{{model}}}} = {x.shape[1]}"), ("text", "; ")]
        heads = "one head" if cfg.heads == 1 else f"{cfg.heads} heads"
        runs.append(("text", heads))
        if k is not None:
            runs += [("text", " of width "), ("math", f"d_k = {k.shape[1]}")]
        runs.append(("text", "; scores "))
        if cfg.scale == "sqrt_dk":
            runs += [("text", "divided by "), ("math", r"\sqrt{d_k}")]
        elif cfg.scale == "none":
            runs.append(("text", "not scaled"))
        else:
            runs += [("text", "multiplied by "), ("math", r"\lambda = " + tex(cfg.scale))]
        runs.append(("text", "; " + ("a causal mask (token i reads tokens 0 to i; masked "
                                     "weights are exactly 0)" if cfg.mask == "causal"
                                     else "no mask")))
        runs.append(("text", "; softmax " + ("with the row maximum subtracted first"
                                             if cfg.softmax == "stable" else "as written")))
        runs.append(("text", f"; activation {cfg.activation}"))
        norm = {"none": "no layer norm", "post": "layer norm after each residual (post-norm, "
                "as in the original Transformer)", "pre": "layer norm before attention and "
                "the feed-forward (pre-norm, as in GPT-2)"}[cfg.norm]
        runs.append(("text", "; " + norm))
        if cfg.norm != "none":
            runs += [("text", " with "), ("math", r"\varepsilon = " + tex(cfg.norm_eps))]
        if cfg.positional != "none":
            runs.append(("text", f"; positions: {cfg.positional}"))
        runs.append(("text", "."))
        return runs

    # -- one step ---------------------------------------------------------------------
    def step(self, n: int, step: Step) -> list[Block]:
        where = [f"layer {step.layer}"] if step.layer is not None else []
        if step.head is not None:
            where.append(f"head {step.head}")
        title = f"{n}. {_title(step.name)}"
        blocks: list[Block] = [Heading(3, (("text", title),
                                           ("note", ", ".join([step.name, *where]))))]
        if step.meaning and step.meaning.lower() != _title(step.name).lower():
            first = step.meaning if step.meaning.startswith("e ") else \
                step.meaning[0].upper() + step.meaning[1:]
            blocks.append(Para((("text", first + "."),)))
        result = self.result_view(step)
        lhs = result.symbol
        lhs_w = width(lhs, "display")
        budget = self.opts.budget - lhs_w - 20
        lines: list[tuple[str, str, str]] = []
        notes: list[tuple[Run, ...]] = []
        if step.given:
            notes.append((("text", "Given in the file."),))
        else:
            formula, pieces, more = self.formula(step, result)
            notes += more
            if isinstance(formula, WordLines):
                lines.append((lhs, *formula.lines[0]))
                lines += [("", rel, text) for rel, text in formula.lines[1:]]
            else:
                lines.append((lhs, "=", formula))
            if pieces:
                lines += self.pack(pieces, budget)
        labels = self.column_labels(step)
        tables: list[Block] = []
        after: list[tuple[Run, ...]] = []
        if labels is None:
            self.result_lines(step, result, lines, notes, budget)
        else:
            tables, after = self.labelled(result, *labels)
        if lines:
            lines[0] = (lhs, lines[0][1], lines[0][2])
            blocks.append(Display(tuple(lines)))
        blocks += [Para(r) for r in notes] + tables + [Para(r) for r in after]
        if step.name == "weights" and len(step.value) <= self.opts.heatmap_limit \
                and len(step.value[0]) <= self.opts.heatmap_limit:
            blocks.append(self.heatmap(step))
        return blocks

    # -- rows labelled by words ---------------------------------------------------------
    def column_labels(self, step: Step) -> tuple[str, tuple[Run, ...]] | None:
        """What the columns of a step are, when they are words, ranks or pairs: the result
        is then shown as a table (a row over a vocabulary is too wide for a matrix, and
        its entries mean nothing without the words)."""
        found = column_labels(self.trace, step)
        if found is None:
            return None
        head, labels = found
        return head, tuple(("text" if t.isdigit() else "code", t) for t in labels)

    def labelled(self, result: _View, head: str, labels: tuple[Run, ...]
                 ) -> tuple[list[Block], list[tuple[Run, ...]]]:
        """The result as tables (and the notes that follow them): whole numbers across the
        page in chunks, one column per label; anything else down the page, one row per
        label, exact and decimal side by side."""
        if len(result.rows) == 1 and all(_is_integer(x) for x in result.picked[0]):
            return self.across(result, head, labels), []
        return self.down(result, head, labels)

    def across(self, result: _View, head: str, labels: tuple[Run, ...]) -> list[Block]:
        row = result.picked[0]
        first = max(len(head) * WORD_WIDTH, width(result.symbol)) + 12
        tables: list[Block] = []
        start, used = 0, first
        for j, (label, x) in enumerate(zip(labels, row, strict=True)):
            w = max(len(label[1]) * 5.8, width(tex(x))) + 12
            if j > start and used + w > self.opts.budget:
                tables.append(self._across_table(result, head, labels, start, j))
                start, used = j, first
            used += w
        tables.append(self._across_table(result, head, labels, start, len(row)))
        return tables

    def _across_table(self, result: _View, head: str, labels: tuple[Run, ...], start: int,
                      end: int) -> Table:
        cells = tuple(((("math", tex(x)),)) for x in result.picked[0][start:end])
        return Table(header=((("text", head),), *((label,) for label in labels[start:end])),
                     rows=(((("math", result.symbol),), *cells),))

    def down(self, result: _View, head: str, labels: tuple[Run, ...]
             ) -> tuple[list[Block], list[tuple[Run, ...]]]:
        rows = result.picked
        picked = _pick(len(rows[0]), 2 * self.opts.max_rows)
        integers = all(_is_integer(x) for r in rows for x in r)
        header: list[tuple[Run, ...]] = [(("text", head),)]
        columns: list[list[str]] = []
        notes: list[tuple[Run, ...]] = []
        for n, row in enumerate(rows):
            symbol = result.symbol if len(rows) == 1 else \
                self.symbol(result.name, result.key[2] if result.key else None, result.rows[n])
            exact, why = self.exact_column(result, n, picked)
            if exact is not None:
                header.append((("math", symbol),))
                columns.append(exact)
            if not integers:
                header.append((("math", (symbol if exact is None else "") + r"\approx"),))
                columns.append([_decimal(row[j], self.opts.digits) if j is not None
                                else r"\vdots" for j in picked])
            if why is not None and n == 0:
                notes.append((("text", f"The closed forms are omitted ({why}); the decimals "
                                       "are correct in every digit shown."),))
        body = []
        for i, j in enumerate(picked):
            label: tuple[Run, ...] = (("math", r"\vdots"),) if j is None else (labels[j],)
            body.append((label, *((("math", col[i]),) for col in columns)))
        form = self.readable(result) if len(rows) == 1 else None
        if form is not None and self.exact_column(result, 0, picked)[0] is not None:
            notes.append(self.form_note(form, result))
        if None in picked:
            notes.append((("note", f"Only {len(picked) - 1} of the {len(rows[0])} entries are "
                                   "shown; every entry is in the JSON output of "
                                   "exacttransformer walkthrough --format json."),))
        if any(NOT_PRINTABLE in c for col in columns for c in col):
            notes.append((("math", NOT_PRINTABLE),
                          ("text", ": a decimal that cannot be printed with every digit proven "
                                   "(beyond about 10^±315000, or too close to a rounding "
                                   "boundary to decide)."),))
        return [Table(tuple(header), tuple(body))], notes

    def exact_column(self, result: _View, n: int, picked: list[int | None]
                     ) -> tuple[list[str] | None, str | None]:
        """Row ``n`` of the result in closed form, one entry per picked column, or ``None``
        and why not (``None`` for both on a float trace)."""
        if not self.symbolic:
            return None, None
        rows = result.picked
        if len(rows) > 1 and not all(x.is_Rational for r in rows for x in r):
            return None, None  # several rows: decimals only, the table stays narrow
        form = self.readable(result) if len(rows) == 1 else None
        source = form.entries[0] if form is not None else rows[n]
        shown = [source[j] for j in picked if j is not None]
        biggest = max(size(x, self.opts.size_limit + 1) for x in shown)
        if biggest > self.opts.size_limit:
            big = next(x for x in shown if size(x, self.opts.size_limit + 1) > self.opts.size_limit)
            return None, (f"an entry has {_size_words(size(big, 10_001))}, more than the limit "
                          f"of {self.opts.size_limit}")
        texts = [tex(x) for x in shown]
        if max(width(t, "display") for t in texts) > self.opts.budget - 160:
            return None, "they are too wide for the table"
        cells = iter(_cell(t, self.opts.strut) for t in texts)
        return [next(cells) if j is not None else r"\vdots" for j in picked], None

    def result_lines(self, step: Step, result: _View, lines: list[tuple[str, str, str]],
                     notes: list[tuple[Run, ...]], budget: float) -> None:
        exact, biggest = self.exact(result, budget)
        previous = lines[-1][2] if lines else ""
        if exact is not None and exact.tex != previous:
            lines.append(("", "=", exact.tex))
        elif exact is None and biggest < 0:
            notes.append((("text", "Computed in float64 arithmetic: there is no closed form, "
                                   "and the decimals are the floats' own values, correctly "
                                   "rounded."),))
        elif exact is None:
            if biggest > self.opts.size_limit:
                why = (f"an entry has {_size_words(self.first_big(result))}, more than the "
                       f"limit of {self.opts.size_limit}")
            else:
                why = "they are too wide for the page"
            notes.append((("text", f"The closed forms are omitted ({why}); the decimals are "
                                   "correct in every digit shown."),))
        form = self.readable(result)
        if form is not None and exact is not None:
            notes.append(self.form_note(form, result))
        integers = all(_is_integer(x) for r in result.picked for x in r)
        if not integers:
            dec = self.decimals(result, budget)
            if dec is not None:
                lines.append(("", r"\approx", dec.tex))
                if NOT_PRINTABLE in dec.tex:
                    notes.append((("math", NOT_PRINTABLE),
                                  ("text", ": a decimal that cannot be printed with every digit "
                                           "proven (beyond about 10^±315000, or too close to a "
                                           "rounding boundary to decide)."),))
        if exact is not None and exact.elided:
            notes.append((("note", "Long rows are shortened; every entry is in the JSON output "
                                   "of exacttransformer walkthrough --format json."),))

    def form_note(self, form: SoftmaxForm, view: _View) -> tuple[Run, ...]:
        t = sympy.exp(form.base)
        runs: list[Run] = [("text", "where "),
                           ("math", rf"t = {tex(t)} \approx {_decimal(t, self.opts.digits)}"),
                           ("text", ": ")]
        divisors = {d for d in form.divisors if d is not None}
        if len(divisors) == 1 and len(view.rows) == 1:
            d = divisors.pop()
            runs += [("text", "numerator and denominator were divided by "),
                     ("math", tex(sympy.exp(d))),
                     ("text", ", the smallest exponential in the row.")]
        else:
            runs.append(("text", "each row's numerators and denominator were divided by the "
                                 "row's smallest exponential."))
        return tuple(runs)

    def pack(self, pieces: list[tuple[str, Shown]], budget: float
             ) -> list[tuple[str, str, str]]:
        """Substitution pieces ``(joiner, shown)`` on as few lines as fit the budget;
        a continuation line starts with its joiner (``\\cdot`` for a product)."""
        rel = r"\approx" if any(p.approx for _, p in pieces) else "="
        texts: list[str] = []
        current, used = "", 0.0
        for joiner, piece in pieces:
            gap = width(joiner) + 4.0 if joiner else 2.0
            if current and used + gap + piece.width > budget:
                texts.append(current)
                current = (joiner or r"\cdot") + " " + piece.tex
                used = 20.0 + piece.width
            elif current:
                current += (f" {joiner} " if joiner else r" \, ") + piece.tex
                used += gap + piece.width
            else:
                current = (f"{joiner} " if joiner else "") + piece.tex
                used = piece.width
        if current:
            texts.append(current)
        return [("", rel if n == 0 else r"\quad", t) for n, t in enumerate(texts)]

    # -- formulas ---------------------------------------------------------------------
    def formula(self, step: Step, result: _View
                ) -> tuple[str | WordLines, list[tuple[str, Shown]], list[tuple[Run, ...]]]:
        """The formula in symbols, the substituted pieces, and notes."""
        ops = self.operand_views(step)
        syms = [v.symbol for v in ops]
        name = step.name
        budget = self.opts.budget - 60
        special = getattr(self, f"_f_{name}", None)
        if special is not None:
            found: tuple[str, list[tuple[str, Shown]], list[tuple[Run, ...]]] | None = \
                special(step, result, ops, budget)
            if found is not None:
                # Special substitutions print values directly: exact traces only.
                return found if self.symbolic else (found[0], [], found[2])
        kind = _kind(step, ops)
        if kind == "linear":
            f = f"{syms[0]} \\, {syms[1]}" + (f" + {syms[2]}" if len(ops) > 2 else "")
            pieces = [("", self.operand(ops[0], budget)), ("", self.operand(ops[1], budget))]
            if len(ops) > 2:
                pieces.append(("+", self.operand(ops[2], budget)))
            return f, pieces, []
        if kind == "add":
            return (f"{syms[0]} + {syms[1]}",
                    [("", self.operand(ops[0], budget)), ("+", self.operand(ops[1], budget))], [])
        if kind == "identity":
            return syms[0], [], []
        return self.words_formula(step, result)

    def words_formula(self, step: Step, result: _View) -> tuple[
            str | WordLines, list[tuple[str, Shown]], list[tuple[Run, ...]]]:
        """A formula in words: what the step adds once its value is known (after ``; ``)
        becomes a sentence below, and a long formula breaks at arrows and commas."""
        main, _, told = step.formula.partition("; ")
        notes: list[tuple[Run, ...]] = []
        if told:
            notes.append((("text", _sentence(told)),))
        if pair_labels(step) is not None:  # the table below names the pairs
            main = main[:main.index(" (")]
        room = (self.opts.budget - width(result.symbol, "display") - 30) / WORD_WIDTH
        lines = _break_words(main, max(int(room), 24))
        if len(lines) == 1:  # a short chain keeps its arrows in math
            return r" \to ".join(self.target.words(t) for t in main.split(" → ")), [], notes
        return WordLines(tuple((rel, self.target.words(text)) for rel, text in lines)), [], notes

    def _scalar(self, view: _View) -> Shown:
        return self.operand(view, 200.0)

    def _f_scores(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        if len(ops) != 2:
            return None
        f = ops[0].symbol + r" \, " + sup(ops[1].symbol, r"\top")
        pieces = [("", self.operand(ops[0], budget)),
                  ("", self.operand(ops[1], budget, transpose=True))]
        return f, pieces, []

    def _f_sqrt_dk(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        d = len(step.operands[0][1][0]) if step.operands else None
        notes = [(("math", f"d_k = {d}"), ("text", ", the width of each key."),)] if d else []
        return (rf"\sqrt{{{d}}}" if d else r"\sqrt{d_k}"), [], notes

    def _f_scale(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        if ops and ops[0].name == "sqrt_dk":
            return r"\frac{1}{\sqrt{d_k}}", [("", Shown(r"\frac{1}{" + tex(ops[0].value[0][0])
                                                        + "}", 30.0))], []
        return tex(step.value[0][0]), [], []

    def _f_scaled_scores(self, step: Step, result: _View, ops: list[_View], budget: float
                         ) -> Any:
        if len(ops) != 2:
            return None
        s = ops[0].symbol
        scale = self.trace.config.scale
        f = rf"\frac{{{s}}}{{\sqrt{{d_k}}}}" if scale == "sqrt_dk" else rf"\lambda \, {s}"
        pieces = [("", self._scalar(ops[1])), ("", self.operand(ops[0], budget))]
        return f, pieces, []

    def _f_shifted_scores(self, step: Step, result: _View, ops: list[_View], budget: float
                          ) -> Any:
        s = ops[0].symbol if ops else r"\tilde{s}"
        return rf"{s} - \max_j {entry(s, 'j')}", [], []

    def _f_exp_scores(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        if len(ops) != 1:
            return None
        arg = self.operand(ops[0], budget - 40)
        piece = Shown(r"\exp\left(" + arg.tex + r"\right)", arg.width + 30, arg.approx)
        notes = []
        if self.trace.config.mask == "causal" and step.name == "exp_scores":
            notes.append((("text", "Masked entries are exactly 0 (not "),
                          ("math", r"e^{-10^9}"), ("text", ").")))
        return rf"\exp\left({ops[0].symbol}\right)", [("", piece)], notes

    _f_exp_logits = _f_exp_scores

    def _f_exp_sum(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        if len(ops) != 1:
            return None
        f = rf"\sum_j {entry(ops[0].symbol, 'j')}"
        if len(ops[0].rows) != 1:
            return f, [], []
        row = ops[0].picked[0]
        if any(size(x, self.opts.size_limit + 1) > self.opts.size_limit for x in row) \
                or len(row) > self.opts.max_cols:
            return f, [], []
        text = _sum_tex([tex(x) for x in row])
        if width(text, "display") > budget:
            return f, [], []
        return f, [("", Shown(text, width(text, "display")))], []

    _f_exp_logits_sum = _f_exp_sum

    def _f_weights(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        if len(ops) != 2:
            return None
        soft = SOFTMAX.get(step.name, SOFTMAX["weights"])[2]
        arg = self.symbol(soft, step.head,
                          result.rows[0] if self.per_token(step.name, step.value) else None)
        f = rf"\operatorname{{softmax}}({arg}) = \frac{{{ops[0].symbol}}}{{{ops[1].symbol}}}"
        if len(ops[1].rows) != 1:
            return f, [], []
        total = ops[1].picked[0][0]
        if size(total, self.opts.size_limit + 1) > self.opts.size_limit:
            return f, [], []
        inv = r"\frac{1}{" + tex(total) + "}"
        vec = self.operand(ops[0], budget - width(inv, "display"))
        return f, [("", Shown(inv, width(inv, "display"))), ("", vec)], []

    _f_probs = _f_weights

    def _f_scaled_logits(self, step: Step, result: _View, ops: list[_View], budget: float
                         ) -> Any:
        if len(ops) != 2:
            return None
        if ops[1].value[0][0] == 1:
            return rf"\frac{{{ops[0].symbol}}}{{T}}", [], [(("text", "Here "), ("math", "T = 1"),
                                                            ("text", ": nothing changes."))]
        return (rf"\frac{{{ops[0].symbol}}}{{T}}",
                [("", Shown(r"\frac{1}{" + tex(ops[1].value[0][0]) + "}", 24.0)),
                 ("", self.operand(ops[0], budget))], [])

    def _f_z(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        if len(ops) != 2:
            return None
        f = f"{ops[0].symbol} \\, {ops[1].symbol}"
        return f, [("", self.operand(ops[0], budget)), ("", self.operand(ops[1], budget))], []

    def _f_concat(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        if len(ops) == 1:
            return ops[0].symbol, [], []
        f = r"\left[" + ", ".join(v.symbol for v in ops) + r"\right]"
        pieces = [("", self.operand(v, budget)) for v in ops]
        return f, pieces, []

    def _f_ffn_act(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        act = self.trace.config.activation
        if len(ops) != 1 or act not in ACTIVATIONS:
            return None
        fn = ACTIVATIONS[act]
        arg = self.operand(ops[0], budget - 60)
        notes: list[tuple[Run, ...]] = []
        if act == "gelu":
            notes.append((("math", r"\operatorname{GELU}(h) = \tfrac{h}{2}\left(1 + "
                                   r"\operatorname{erf}(h/\sqrt{2})\right)"), ("text", ".")))
        elif act == "gelu_tanh":
            notes.append((("math", r"\operatorname{GELU}_{\tanh}(h) = \tfrac{h}{2}\left(1 + "
                                   r"\tanh\left(\sqrt{2/\pi}\,(h + 0.044715 h^3)\right)\right)"),
                          ("text", ".")))
        elif act == "silu":
            notes.append((("math", r"\operatorname{SiLU}(h) = h / (1 + e^{-h})"), ("text", ".")))
        else:
            notes.append((("math", r"\operatorname{ReLU}(h) = \max(h, 0)"),
                          ("text", ", entry by entry.")))
        return (rf"{fn}\left({ops[0].symbol}\right)",
                [("", Shown(fn + r"\left(" + arg.tex + r"\right)", arg.width + 50, arg.approx))],
                notes)

    def _norm_mean(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        if len(ops) != 1:
            return None
        d = len(step.operands[0][1][0])
        f = rf"\frac{{1}}{{{d}}} \sum_i {entry(ops[0].symbol, 'i')}"
        if len(ops[0].rows) != 1 or d > self.opts.max_cols:
            return f, [], []
        row = ops[0].picked[0]
        if any(size(x, 20) > 12 for x in row):
            return f, [], []
        text = rf"\frac{{1}}{{{d}}}\left(" + _sum_tex([tex(x) for x in row]) + r"\right)"
        if width(text, "display") > budget:
            return f, [], []
        return f, [("", Shown(text, width(text, "display")))], []

    def _norm_var(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        if len(ops) != 2:
            return None
        d = len(step.operands[0][1][0])
        f = (rf"\frac{{1}}{{{d}}} \sum_i \left({entry(ops[0].symbol, 'i')} - "
             rf"{ops[1].symbol}\right)^2")
        if len(ops[0].rows) != 1 or d > self.opts.max_cols:
            return f, [], []
        row, mean = ops[0].picked[0], ops[1].picked[0][0]
        if any(size(x, 20) > 12 for x in (*row, mean)):
            return f, [], []
        m = tex(mean)
        terms = [rf"\left({tex(x)} - {_paren(m)}\right)^2" for x in row]
        text = rf"\frac{{1}}{{{d}}}\left(" + " + ".join(terms) + r"\right)"
        if width(text, "display") > budget:
            return f, [], []
        return f, [("", Shown(text, width(text, "display")))], []

    def _norm_out(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        if len(ops) < 3:
            return None
        x, mu, var = ops[0], ops[1], ops[2]
        eps = self.trace.config.norm_eps
        under = var.symbol + ("" if eps == 0 else r" + \varepsilon")
        f = rf"\frac{{{x.symbol} - {mu.symbol}}}{{\sqrt{{{under}}}}}"
        rest = ops[3:]
        for p in rest:
            f += (r" \odot " if p.name.startswith("gamma") else " + ") + p.symbol
        pieces: list[tuple[str, Shown]] = []
        if len(x.rows) == 1:
            m, v = mu.picked[0][0], var.picked[0][0]
            if size(m, 20) <= 12 and size(v, 20) <= 12:
                inside = tex(v) + ("" if eps == 0 else " + " + tex(eps))
                inv = r"\frac{1}{\sqrt{" + inside + "}}"
                vec = self.operand(x, budget - 120)
                mean_tex = _paren(tex(m))
                total = vec.width + width(inv, "display") + width(mean_tex, "display") + 40
                if total > budget:  # long integers (a structured value's closed form)
                    return f, [], []
                pieces = [("", Shown(inv + r"\left(" + vec.tex + " - " + mean_tex
                                     + r"\right)", total, vec.approx))]
                for p in rest:
                    joiner = r"\odot" if p.name.startswith("gamma") else "+"
                    pieces.append((joiner, self.operand(p, budget)))
        return f, pieces, []

    _f_ln1_mean = _f_ln2_mean = _f_lnf_mean = _norm_mean
    _f_ln1_var = _f_ln2_var = _f_lnf_var = _norm_var
    _f_ln1 = _f_ln2 = _f_lnf = _norm_out

    def _f_embed(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        if not ops:
            return None
        if len(result.rows) == 1:
            return rf"E\left[{self.symbol('ids', None, result.rows[0])}\right]", [], []
        return r"E\left[\mathrm{ids}\right]", [], []

    def _f_cosine(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        return (r"\frac{e_i \cdot e_j}{\lVert e_i \rVert \, \lVert e_j \rVert}", [],
                [(("text", "For every pair of tokens "), ("math", "i, j"),
                  ("text", ", with their embeddings "), ("math", "e_i, e_j"),
                  ("text", "; square roots are kept exact."))])

    def _f_analogy_cosine(self, step: Step, result: _View, ops: list[_View], budget: float
                          ) -> Any:
        return (r"\frac{a \cdot E_j}{\lVert a \rVert \, \lVert E_j \rVert}", [],
                [(("text", "For every word "), ("math", "j"), ("text", " of the vocabulary, "),
                  ("math", "E_j"), ("text", " its row of the embedding table."))])

    def _f_rope_angle(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        b = tex(self.trace.config.positional_base)
        return (rf"\frac{{p}}{{{b}^{{2i/d_k}}}}", [],
                [(("text", "For position "), ("math", "p"), ("text", " (from 0) and the pair "),
                  ("math", "(2i, 2i+1)"), ("text", " of each query and key.")),])

    def _f_pos(self, step: Step, result: _View, ops: list[_View], budget: float) -> Any:
        cfg = self.trace.config
        if cfg.positional in ("sinusoidal", "sinusoidal_guide"):
            b = tex(cfg.positional_base)
            ex = "j/d" if cfg.positional == "sinusoidal_guide" else "2i/d"
            f = (rf"\left(\sin\frac{{p}}{{{b}^{{{ex}}}}},\ \cos\frac{{p}}{{{b}^{{{ex}}}}}"
                 r"\right)_{i}")
            return f, [], [(("text", "Position p starts at 0; even columns take the sine, odd "
                                     "columns the cosine."),)]
        if cfg.positional == "learned":
            return r"P\left[0, \ldots, n-1\right]", [], []
        return None

    # -- heatmap ----------------------------------------------------------------------
    def heatmap(self, step: Step) -> Heatmap:
        trace = self.trace
        rows = trace.tokens if len(step.value) == len(trace.tokens) else \
            tuple(str(i) for i in range(len(step.value)))
        keys = trace.kv_tokens or trace.tokens
        cols = keys if len(step.value[0]) == len(keys) else \
            tuple(str(j) for j in range(len(step.value[0])))
        cells, shades = [], []
        for r in step.value:
            texts = tuple(to_fixed(_exact_number(x), 2) if _exact_number(x) is not None
                          else "n/a" for x in r)
            cells.append(tuple("0" if x == 0 else s for x, s in zip(r, texts, strict=True)))
            shades.append(tuple(int(s.replace(".", "")) if x != 0 else 0
                                for x, s in zip(r, texts, strict=True)))
        where = [f"layer {step.layer}"] if step.layer is not None else []
        if step.head is not None:
            where.append(f"head {step.head}")
        caption: tuple[Run, ...] = (
            ("text", "Attention weights" + (f" ({', '.join(where)})" if where else "")
             + ": row = the token that reads (query), column = the token it reads (key); "
               "each row sums to 1."),)
        highlight = self.opts.token if self.opts.token is not None and \
            len(step.value) == len(trace.tokens) else None
        return Heatmap(caption, tuple(rows), tuple(cols), tuple(cells), tuple(shades), highlight)


WORD_WIDTH = 5.4
"""Points per character of a formula in words (11 pt roman, a little generous)."""


def _break_words(text: str, room: int) -> list[tuple[str, str]]:
    """``(relation, words)`` lines of at most ``room`` characters: each ``→`` starts a line
    of its own, and a longer stretch breaks after a comma (or, failing that, a space).

    >>> _break_words("a b → ab (merges 1)", 14)
    [('=', 'a b'), ('\\\\to', 'ab (merges 1)')]
    >>> _break_words("one, two, three", 8)
    [('=', 'one,'), ('\\\\quad', 'two,'), ('\\\\quad', 'three')]
    """
    if len(text) <= room:
        return [("=", text)]
    out: list[tuple[str, str]] = []
    for n, segment in enumerate(text.split(" → ")):
        rel = "=" if n == 0 else r"\to"
        for line in _fill(segment, room):
            out.append((rel, line))
            rel = r"\quad"
    return out


def _fill(text: str, room: int) -> list[str]:
    """``text`` in lines of at most ``room`` characters, broken after commas where possible."""
    lines: list[str] = []
    current = ""
    for piece in _pieces(text, room):
        if current and len(current) + 1 + len(piece) > room:
            lines.append(current)
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    return [*lines, current] if current else lines


def _pieces(text: str, room: int) -> list[str]:
    """Comma-ended pieces, each split at spaces when longer than ``room``."""
    out: list[str] = []
    for part in text.replace(", ", ",\n").split("\n"):
        if len(part) <= room:
            out.append(part)
        else:
            out += part.split(" ")
    return out


def _sentence(text: str) -> str:
    """``text`` as a sentence: capitalized, unless it starts with a symbol (``u = 0.42``)."""
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first.isalpha() and first.islower():
        text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _cell(text: str, strut: str) -> str:
    """Fractions in a matrix at full size (a textbook's habit; script-size is unreadable),
    with a strut so that stacked fractions do not touch."""
    return r"\displaystyle" + strut + " " + text if r"\frac" in text else text


def _title(name: str) -> str:
    """A step's heading: ``Queries``, ``Gradient for the logits``, ``Updated W_Q``."""
    if name.startswith("grad."):
        base = name[5:]
        return "Gradient for " + (TITLES[base][0].lower() + TITLES[base][1:]
                                  if base in TITLES else base)
    if name.startswith("new."):
        return "Updated " + name[4:]
    numbered = _numbered(name)
    if numbered is not None:
        return NUMBERED_TITLES[numbered[0]].format(numbered[1])
    return TITLES.get(name, name)


def _numbered(name: str) -> tuple[str, str] | None:
    """``("bpe.merge", "3")`` for ``bpe.merge.3``; ``None`` for other names."""
    stem, _, number = name.rpartition(".")
    return (stem, number) if stem in NUMBERED_TITLES and number.isdigit() else None


def _size_words(n: int) -> str:
    return "more than 10,000 symbols" if n > 10_000 else f"{n} symbols"


def entry(symbol: str, index: str) -> str:
    """The symbol of one entry: ``u_{\\text{cat}}`` -> ``u_{\\text{cat},j}``, ``u`` -> ``u_{j}``.

    >>> entry("u", "j"), entry(r"u_{\\text{cat}}", "j"), entry("(s)^2", "j")
    ('u_{j}', 'u_{\\\\text{cat},j}', '\\\\left((s)^2\\\\right)_{j}')
    """
    if symbol.endswith("}"):
        depth = 0
        for i in range(len(symbol) - 1, -1, -1):
            depth += {"}": 1, "{": -1}.get(symbol[i], 0)
            if depth == 0:
                if i > 0 and symbol[i - 1] == "_":
                    return symbol[:-1] + "," + index + "}"
                return f"{symbol}_{{{index}}}"
    if symbol.endswith(")") or symbol[-2:-1] == "^":
        return rf"\left({symbol}\right)_{{{index}}}"
    return f"{symbol}_{{{index}}}"


def sup(symbol: str, superscript: str) -> str:
    """``symbol`` with a superscript, braced when it has one already (``K^{(0)}``, ``x'``).

    >>> sup("K", r"\\top"), sup("K^{(0)}", r"\\top")
    ('K^{\\\\top}', '{K^{(0)}}^{\\\\top}')
    """
    if "^" in symbol or "'" in symbol:
        return "{" + symbol + "}^{" + superscript + "}"
    return symbol + "^{" + superscript + "}"


def _top_level(text: str) -> str:
    """``text`` without its brace groups (what a sum or product sees)."""
    out, depth = [], 0
    for ch in text:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0 and ch not in "{}":
            out.append(ch)
    return "".join(out)


def _paren(text: str) -> str:
    top = _top_level(text).strip()
    return rf"\left({text}\right)" if any(c in top.lstrip("-") for c in "+-") else text


def _sum_tex(terms: Sequence[str]) -> str:
    """Terms joined by ``+`` (``- 3`` rather than ``+ -3``)."""
    out = ""
    for term in terms:
        if not out:
            out = term
        elif term.startswith("-") and not any(c in _top_level(term)[1:] for c in "+-"):
            out += " - " + term[1:].strip()
        else:
            out += " + " + _paren(term)
    return out


def _kind(step: Step, ops: list[_View]) -> str:
    inputs = step.inputs
    params = [v for v in ops if v.param]
    if len(inputs) == 1 and params and params[0].name.startswith("W"):
        return "linear"
    if len(inputs) == 2 and not params and step.formula == f"{inputs[0][0]} + {inputs[1][0]}":
        return "add"
    if len(inputs) == 1 and not params and step.formula == inputs[0][0]:
        return "identity"
    return "other"


def _agrees(form: SoftmaxForm, rows: Sequence[Sequence[sympy.Expr]]) -> bool:
    """A guard: the readable form evaluates to the trace's values (30 digits)."""
    t = sympy.exp(form.base)
    for frow, vrow in zip(form.entries, rows, strict=True):
        for f, v in zip(frow, vrow, strict=True):
            a = sympy.N(f.subs(T, t), 30)
            b = sympy.N(v, 30)
            if abs(a - b) > sympy.Float("1e-20", 30) * (1 + abs(b)):
                return False
    return True


# --------------------------------------------------------------------------- claims


def claims_blocks(report: Any, trace: Trace, target: Target, opts: Options) -> list[Block]:
    """The errata table: what the source printed, the exact value, its correct rounding,
    and the checker's verdict (``report`` is :func:`exacttransformer.check.check`'s)."""
    rows = []
    for c in report.ordered():
        claim = c.claim
        label: list[Run] = [("code", claim.name)]
        if claim.token is not None:
            label += [("text", " of "), ("code", str(claim.token))]
        extra = []
        if claim.layer:
            extra.append(f"layer {claim.layer}")
        if claim.head:
            extra.append(f"head {claim.head}")
        if extra:
            label.append(("text", f" ({', '.join(extra)})"))
        printed = tuple((e.claimed, e.verdict) for e in c.elements)
        exact = tuple(_claim_exact(e.exact, opts) for e in c.elements)
        readable = _claim_softmax(c, trace)
        exact_note = ""
        if readable is not None:
            exact, exact_note = readable
        correct: list[Run] = []
        for e in c.elements:
            if getattr(e.printed, "unit", 0) is None:
                correct.append(("math", _claim_exact(e.exact, opts)))
            else:
                correct.append(("text", e.correct))
        for start in range(0, len(printed), CLAIM_ROW_ELEMENTS):
            end = start + CLAIM_ROW_ELEMENTS
            first = start == 0
            part_label = tuple(label) if first else (*label, ("text", " (continued)"))
            rows.append(ClaimRow(part_label, claim.note if first else "", printed[start:end],
                                 exact[start:end], _slice_runs(correct, start, end),
                                 c.verdict if first else None, exact_note if first else ""))
    intro: tuple[Run, ...] = (
        ("text", "Every number the source prints, next to the exact value and its correct "
                 "rounding at the printed precision. Verdicts: exact; rounded (correctly "
                 "rounded); truncated (cut off, not rounded); float (a program's float64 "
                 "output); drift (right only for the source's own rounded inputs); carried "
                 "(inherits an earlier wrong number); wrong."),)
    return [Heading(2, (("text", "What the source claims"),)), Para(intro),
            ClaimsTable(tuple(rows))]


CLAIM_ROW_ELEMENTS = 6
"""A claim with more printed numbers continues on further rows of the table."""


def _slice_runs(runs: Sequence[Run], start: int, end: int) -> tuple[Run, ...]:
    """Elements ``start:end`` (one run each), separated by commas."""
    out: list[Run] = []
    for n, run in enumerate(runs[start:end]):
        if n:
            out.append(("text", ", "))
        out.append(run)
    return tuple(out)


def _claim_softmax(c: Any, trace: Trace) -> tuple[tuple[str, ...], str] | None:
    """Softmax claims on one row in the pulled-out form, with what ``t`` is."""
    name = c.claim.name
    rows = {e.index[0] for e in c.elements}
    if name not in SOFTMAX or len(rows) != 1:
        return None
    exps = trace.find(SOFTMAX[name][0], c.step.layer, c.step.head)
    if exps is None:
        return None
    row = rows.pop()
    form = softmax_form([exps.value[row]])
    if form is None or not _agrees(form, [c.step.value[row]]):
        return None
    texts = tuple(inline(form.entries[0][e.index[1]]) for e in c.elements)
    if any(t is None or 0.9 * width(t) > CLAIM_CELL_WIDTH for t in texts):
        return None
    return tuple(t for t in texts if t is not None), "t = " + tex(sympy.exp(form.base))


CLAIM_CELL_WIDTH = 66.0
"""Points an exact value may take in the claims table (a narrow column, small type)."""


def inline(x: sympy.Expr) -> str | None:
    """A one-line form for running text and tables (``29/50``, ``t/(t + 2)``), or ``None``.

    >>> from sympy import Rational, Symbol, exp, sqrt
    >>> inline(Rational(-29, 50)), inline(1 / (Symbol("t") + 2)), inline(exp(sqrt(2)))
    ('-29/50', '1/(t + 2)', 'e^{\\\\sqrt{2}}')
    """
    if x.is_Rational and not x.is_Integer:
        return f"{x.p}/{x.q}" if x.p > 0 else f"-{-x.p}/{x.q}"
    if x.is_Mul and r"\frac" in tex(x) and "/" in folded(x):
        return folded(x)  # 3/\sqrt{2}
    num, den = sympy.fraction(x)
    if den == 1:
        text = tex(x)
        return None if r"\frac" in text else text
    n, d = tex(num), tex(den)
    if r"\frac" in n + d:
        return None
    n = f"({n})" if any(c in n.lstrip("-") for c in "+-") else n
    d = f"({d})" if any(c in d for c in "+- ") else d
    return f"{n}/{d}"


def _claim_exact(x: sympy.Expr, opts: Options) -> str:
    if size(x, 30) <= 24:
        text = inline(x)
        if text is not None and 0.9 * width(text) <= CLAIM_CELL_WIDTH:
            return text
    return r"\approx " + _decimal(x, opts.digits + 2)


# --------------------------------------------------------------------------- entry


def build(trace: Trace, target: Target, options: Options | None = None, *,
          report: Any = None, source_name: str = "") -> list[Block]:
    """The whole worked example as blocks (title, setup, one section per layer, claims)."""
    opts = options or Options()
    if opts.token is not None and not 0 <= opts.token < len(trace.tokens):
        raise InputError(f"token index {opts.token} is out of range "
                         f"(the trace has {len(trace.tokens)} tokens)", key="--token")
    return _Builder(trace, target, opts).document(report, source_name)


def step_blocks(trace: Trace, target: Target, options: Options | None = None) -> list[Block]:
    """Only the steps (no title, setup or claims): for notebooks."""
    builder = _Builder(trace, target, options or Options())
    out: list[Block] = []
    for n, step in enumerate(trace.steps, start=1):
        out += builder.step(n, step)
    return out
