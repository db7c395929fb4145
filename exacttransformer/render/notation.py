"""The notation of a worked example: each step's title and symbol, a number as a TeX cell
(exact or certified decimal), matrices cut to the room they have, and small TeX helpers.

Layer: presentation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sympy

from ..errors import ExactTransformerError
from ..exact.printing import to_sig
from . import asked_forms
from .document import Options
from .forms import SoftmaxForm, T, decimal_tex, width

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
    "score_sum": "Sum of the scaled scores", "logit_sum": "Sum of the scaled logits",
    "contrib": "What each key contributes", "sigmoid": "Sigmoid of the logits",
    "bce": "Binary cross-entropy loss",
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
    "score_sum": (r"\Sigma@h@r", r"\Sigma@h"),
    "contrib": (r"(\alpha v)@h@r", r"(\alpha V)@h"),
    "sigmoid": (r"\hat{y}@r", r"\hat{Y}"),
    "bce": (r"\mathcal{L}_{\mathrm{BCE}}", r"\mathcal{L}_{\mathrm{BCE}}"),
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
    "logit_sum": (r"\Sigma^{\mathrm{voc}}@r", r"\Sigma^{\mathrm{voc}}"),
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


def exact_number(x: Any) -> Any:
    """A float64 value (a trace computed with the float backend) as the exact binary number
    it is, so that it prints correctly rounded rather than as a ``repr``."""
    if isinstance(x, float):
        return sympy.Rational(x) if x == x and abs(x) != float("inf") else None
    return x


@lru_cache(maxsize=65536)
def decimal(x: sympy.Expr, digits: int) -> str:
    value = exact_number(x)
    if value is None:
        return NOT_PRINTABLE
    try:
        return decimal_tex(to_sig(value, digits))
    except ExactTransformerError:
        return NOT_PRINTABLE


def is_integer(x: Any) -> bool:
    return bool(getattr(x, "is_Integer", False))


def pick(n: int, limit: int) -> list[int | None]:
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
    rows = pick(n_rows, opts.max_rows)
    cols = pick(n_cols, opts.max_cols)
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


# --------------------------------------------------------------------------- helpers


WORD_WIDTH = 5.4
"""Points per character of a formula in words (11 pt roman, a little generous)."""


def break_words(text: str, room: int) -> list[tuple[str, str]]:
    """``(relation, words)`` lines of at most ``room`` characters: each ``→`` starts a line
    of its own, and a longer stretch breaks after a comma (or, failing that, a space).

    >>> break_words("a b → ab (merges 1)", 14)
    [('=', 'a b'), ('\\\\to', 'ab (merges 1)')]
    >>> break_words("one, two, three", 8)
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


def sentence(text: str) -> str:
    """``text`` as a sentence: capitalized, unless it starts with a symbol (``u = 0.42``)."""
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first.isalpha() and first.islower():
        text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def cell(text: str, strut: str) -> str:
    """Fractions in a matrix at full size (a textbook's habit; script-size is unreadable),
    with a strut so that stacked fractions do not touch."""
    return r"\displaystyle" + strut + " " + text if r"\frac" in text else text


def step_title(name: str) -> str:
    """A step's heading: ``Queries``, ``Gradient for the logits``, ``Updated W_Q``."""
    if name.startswith("grad."):
        base = name[5:]
        return "Gradient for " + (TITLES[base][0].lower() + TITLES[base][1:]
                                  if base in TITLES else base)
    if name.startswith("new."):
        return "Updated " + name[4:]
    asked = asked_forms.title(name, TITLES)
    if asked is not None:
        return asked
    numbered = numbered_parts(name)
    if numbered is not None:
        return NUMBERED_TITLES[numbered[0]].format(numbered[1])
    return TITLES.get(name, name)


def numbered_parts(name: str) -> tuple[str, str] | None:
    """``("bpe.merge", "3")`` for ``bpe.merge.3``; ``None`` for other names."""
    stem, _, number = name.rpartition(".")
    return (stem, number) if stem in NUMBERED_TITLES and number.isdigit() else None


def size_words(n: int) -> str:
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


def paren(text: str) -> str:
    top = _top_level(text).strip()
    return rf"\left({text}\right)" if any(c in top.lstrip("-") for c in "+-") else text


def sum_tex(terms: Sequence[str]) -> str:
    """Terms joined by ``+`` (``- 3`` rather than ``+ -3``)."""
    out = ""
    for term in terms:
        if not out:
            out = term
        elif term.startswith("-") and not any(c in _top_level(term)[1:] for c in "+-"):
            out += " - " + term[1:].strip()
        else:
            out += " + " + paren(term)
    return out


def agrees(form: SoftmaxForm, rows: Sequence[Sequence[sympy.Expr]]) -> bool:
    """A guard: the readable form evaluates to the trace's values (30 digits)."""
    t = sympy.exp(form.base)
    for frow, vrow in zip(form.entries, rows, strict=True):
        for f, v in zip(frow, vrow, strict=True):
            a = sympy.N(f.subs(T, t), 30)
            b = sympy.N(v, 30)
            if abs(a - b) > sympy.Float("1e-20", 30) * (1 + abs(b)):
                return False
    return True
