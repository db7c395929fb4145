"""The topics a problem set can ask about: their sizes, the model each variant gets, and
the parts a student answers.

Layer: problem definitions (no arithmetic of the forward pass).  A :class:`Topic` builds a
:class:`Draft` — the variant's model as walkthrough-file data (SPEC §2) — in one or more
*stages*, drawing small integers from a seeded :class:`random.Random`; the generator
writes the draft as TOML, runs it through :func:`exacttransformer.io.files.loads` and the
forward pass, and checks the topic's constraints (:mod:`.constraints`) on the exact trace
after every stage.  Stages let the search redraw only the part that failed: the block
topic fixes its attention weights before it draws the feed-forward network.

Sizes come from a :class:`Shape`: a preset per topic and difficulty, which the command
line's ``--tokens``, ``--d-model``, ``--d-head``, ``--decimals`` and ``--max-entry`` may
override (a topic ignores the settings it has no use for).

>>> sorted(TOPICS)[:4]
['attention', 'block', 'decoding', 'ffn']
>>> TOPICS["attention"].shape("easy").d_head
4
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from fractions import Fraction
from typing import Any

from .specs import (
    DIFFICULTIES,
    ConstraintError,
    Draft,
    Entry,
    Given,
    Grid,
    Math,
    PartSpec,
    Piece,
    Shape,
    Topic,
)

WORDS = (
    "the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to", "big", "red", "sun", "we",
    "see", "it", "now", "my", "old", "hat", "fox", "jumps", "over", "lazy", "bird", "sings",
    "tree", "blue", "sky", "rain", "falls", "cold", "tea", "is", "hot", "owl", "eats", "jam",
    "pen", "ink", "map",
)
"""Token texts: short, distinct, plain ASCII (safe in LaTeX, HTML and TOML as they are)."""

VOCAB = (
    "apple", "bread", "cheese", "dates", "eggs", "figs", "grapes", "honey", "icing", "jelly",
    "kale", "lemon", "mango", "nuts", "olives", "pears",
)
"""Vocabulary words for the next-token topics (logits, decoding, training)."""



# --------------------------------------------------------------------------- drawing numbers


def _entry(rng: random.Random, bound: int, zeros: float) -> int:
    if rng.random() < zeros:
        return 0
    return rng.choice([v for v in range(-bound, bound + 1) if v])


def ints(rng: random.Random, rows: int, cols: int, bound: int, zeros: float = 0.0) -> Grid:
    """A ``rows × cols`` grid of integers in ``[-bound, bound]``, about ``zeros`` of them 0.

    >>> ints(random.Random(1), 2, 3, 2)
    ((-2, 2, 2), (-1, -2, 2))
    """
    return tuple(tuple(_entry(rng, bound, zeros) for _ in range(cols)) for _ in range(rows))


def nonzero_rows(rng: random.Random, rows: int, cols: int, bound: int, zeros: float = 0.0) -> Grid:
    """Like :func:`ints`, redrawing any all-zero row (a token with no features)."""
    out = []
    for _ in range(rows):
        row = ints(rng, 1, cols, bound, zeros)[0]
        while not any(row):
            row = ints(rng, 1, cols, bound, zeros)[0]
        out.append(row)
    return tuple(out)


def _tokens(rng: random.Random, n: int) -> tuple[str, ...]:
    return tuple(rng.sample(WORDS, n))


def _start(rng: random.Random, shape: Shape, title: str, *, first: int = 0) -> Draft:
    tokens = _tokens(rng, shape.tokens)
    return Draft(title=title, tokens=tokens, row=rng.randrange(first, shape.tokens))


def _need(draft: Draft | None) -> Draft:
    if draft is None:
        raise ValueError("a later stage needs the draft of the earlier ones")
    return draft


def _g(key: str, latex: str, plain: str, value: Grid, section: str = "weights",
       rows: str = "", cols: str = "", vector: bool = False) -> Given:
    return Given(key=key, section=section, symbol=Math(latex, plain), value=value, rows=rows,
                 cols=cols, vector=vector)


def _vec(rng: random.Random, n: int, bound: int, zeros: float = 0.0) -> Grid:
    return ints(rng, 1, n, bound, zeros)


def _ordinal(tokens: Sequence[str]) -> str:
    return ", ".join(f"“{t}”" for t in tokens)


def _row_convention() -> tuple[Piece, ...]:
    return ("Vectors are rows, as in PyTorch: a projection is ", Math("x W", "x W"),
            ", with ", Math("W", "W"), " of shape ", Math(r"d_{\mathrm{in}} \times d_{\mathrm{out}}",
                                                        "d_in × d_out"), ". ")


def _scaling() -> tuple[Piece, ...]:
    return ("The scores ", Math(r"q k^{\mathsf{T}}", "q kᵀ"), " are divided by ",
            Math(r"\sqrt{d_k}", "√d_k"), ", where ", Math("d_k", "d_k"),
            " is the width of a key. ")


# --------------------------------------------------------------------------- the topics


def _projection(rng: random.Random, s: Shape, _: Draft | None, __: Any = None) -> Draft:
    d = _start(rng, s, "Queries, keys and values")
    x = nonzero_rows(rng, s.tokens, s.d_model, s.x_entry, s.zeros)
    ws = [nonzero_rows(rng, s.d_model, s.d_head, s.w_entry, s.zeros) for _ in range(3)]
    return d.with_(
        givens=[_g("X", "X", "X", x, "input", rows="tokens"),
                _g("W_Q", "W_Q", "W_Q", ws[0]), _g("W_K", "W_K", "W_K", ws[1]),
                _g("W_V", "W_V", "W_V", ws[2])],
        facts=_row_convention())


def _projection_parts(s: Shape) -> tuple[PartSpec, ...]:
    return (PartSpec("q", "the query q of “{token}”", "exact"),
            PartSpec("k", "its key k", "exact"),
            PartSpec("v", "its value v", "exact"))


def _scores(rng: random.Random, s: Shape, _: Draft | None, __: Any = None) -> Draft:
    d = _start(rng, s, "Scaled attention scores")
    q = nonzero_rows(rng, s.tokens, s.d_head, s.x_entry, s.zeros)
    k = nonzero_rows(rng, s.tokens, s.d_head, s.x_entry, s.zeros)
    return d.with_(givens=[_g("q", "Q", "Q", q, "input", rows="tokens"),
                           _g("k", "K", "K", k, "input", rows="tokens")],
                   facts=_scaling())


def _scores_parts(s: Shape) -> tuple[PartSpec, ...]:
    return (PartSpec("scores", "the scores of “{token}” against every key (q kᵀ)", "exact"),
            PartSpec("scaled_scores", "the same scores scaled by 1/√d_k", "exact"))


def _softmax(rng: random.Random, s: Shape, _: Draft | None, __: Any = None) -> Draft:
    d = _start(rng, s, "Softmax: attention weights")
    lo, hi = -s.x_entry, s.x_entry + 1
    values: list[Entry] = list(range(lo, hi + 1))
    if s.halves:
        values = [Fraction(k, 2) for k in range(2 * lo, 2 * hi + 1)]
    grid = tuple(tuple(rng.sample(values, s.tokens)) for _ in range(s.tokens))
    return d.with_(givens=[_g("scaled_scores", r"\tilde{S}", "S", grid, "input", rows="tokens",
                              cols="tokens")],
                   facts=("These are already scaled scores: row i holds token i's scores "
                          "against every key, in token order. The weights are the softmax of "
                          "each row, ", Math(r"\alpha_{j} = e^{s_j} / \sum_m e^{s_m}",
                                             "α_j = exp(s_j) / Σ_m exp(s_m)"), ". "))


def _softmax_parts(s: Shape) -> tuple[PartSpec, ...]:
    return (PartSpec("exp_sum", "the sum of the exponentials of the scores of “{token}”"),
            PartSpec("weights", "the attention weights of “{token}” (write each also as an "
                                "exact expression in e)"))


def _attention(rng: random.Random, s: Shape, _: Draft | None, __: Any = None) -> Draft:
    d = _start(rng, s, "Scaled dot-product attention")
    q = nonzero_rows(rng, s.tokens, s.d_head, s.x_entry, s.zeros)
    k = nonzero_rows(rng, s.tokens, s.d_head, s.x_entry, s.zeros)
    v = ints(rng, s.tokens, s.d_v, s.x_entry + 1)
    return d.with_(givens=[_g("q", "Q", "Q", q, "input", rows="tokens"),
                           _g("k", "K", "K", k, "input", rows="tokens"),
                           _g("v", "V", "V", v, "input", rows="tokens")],
                   facts=_scaling())


def _attention_parts(s: Shape) -> tuple[PartSpec, ...]:
    return (PartSpec("scaled_scores", "the scaled scores of “{token}”", "exact"),
            PartSpec("weights", "its attention weights"),
            PartSpec("z", "its output z, the weighted sum of the value rows"))


def _mh_attention(rng: random.Random, s: Shape, _: Draft | None, __: Any = None) -> Draft:
    """Head 0 alone (a one-head model), so its constraints are met before head 1 is drawn."""
    d = _start(rng, s, "Multi-head attention")
    x = nonzero_rows(rng, s.tokens, s.d_model, s.x_entry, s.zeros)
    ws = [nonzero_rows(rng, s.d_model, s.d_head, s.w_entry, s.zeros) for _ in range(3)]
    heads = ("two heads" if s.heads == 2 else f"{s.heads} heads")
    return d.with_(
        givens=[_g("X", "X", "X", x, "input", rows="tokens"), _g("W_Q", "W_Q", "W_Q", ws[0]),
                _g("W_K", "W_K", "W_K", ws[1]), _g("W_V", "W_V", "W_V", ws[2])],
        facts=_row_convention() + (
            f"The model has {heads} of width {s.d_head}: head h owns columns "
            f"{s.d_head}h to {s.d_head}h + {s.d_head - 1} (from 0) of ", Math("W_Q", "W_Q"),
            ", ", Math("W_K", "W_K"), " and ", Math("W_V", "W_V"), ". ") + _scaling()
        + ("The heads' outputs are put side by side (concat) and multiplied by ",
           Math("W_O", "W_O"), ". "))


def _mh_more_heads(rng: random.Random, s: Shape, draft: Draft | None, __: Any = None) -> Draft:
    """The other heads' columns, appended to head 0's."""
    d = _need(draft)
    givens = []
    for key in ("W_Q", "W_K", "W_V"):
        g = d.given(key)
        assert g is not None
        head0 = tuple(row[:s.d_head] for row in g.value)
        more = nonzero_rows(rng, s.d_model, s.d_head * (s.heads - 1), s.w_entry, s.zeros)
        givens.append(replace(g, value=tuple(a + b for a, b in zip(head0, more, strict=True))))
    return d.with_(model=[("heads", s.heads)], givens=givens)


def _mh_output(rng: random.Random, s: Shape, draft: Draft | None, __: Any = None) -> Draft:
    w_o = nonzero_rows(rng, s.d_head * s.heads, s.d_model, s.w_entry, s.zeros)
    return _need(draft).with_(givens=[_g("W_O", "W_O", "W_O", w_o)])


def _multihead_parts(s: Shape) -> tuple[PartSpec, ...]:
    parts = [PartSpec("weights", f"the attention weights of “{{token}}” in head {h}", head=h)
             for h in range(s.heads)]
    return tuple(parts) + (PartSpec("concat", "its concatenated head outputs", head=None),
                           PartSpec("attn_out", "its attention output (concat W_O)", head=None))


def _residual(rng: random.Random, s: Shape, _: Draft | None, __: Any = None) -> Draft:
    d = _start(rng, s, "Output projection and residual connection")
    x = nonzero_rows(rng, s.tokens, s.d_model, s.x_entry, s.zeros)
    z = nonzero_rows(rng, s.tokens, s.d_v, s.x_entry, s.zeros)
    w_o = nonzero_rows(rng, s.d_v, s.d_model, s.w_entry, s.zeros)
    givens = [_g("X", "X", "X", x, "input", rows="tokens"),
              _g("z", "Z", "Z", z, "input", rows="tokens"), _g("W_O", "W_O", "W_O", w_o)]
    if s.bias:
        givens.append(_g("b_O", "b_O", "b_O", _vec(rng, s.d_model, s.w_entry), vector=True))
    return d.with_(givens=givens, facts=(
        "Attention has already produced the rows of ", Math("Z", "Z"), " (one head). The "
        "block projects them back to the model width and adds the input: ",
        Math(r"x' = x + z W_O" + (" + b_O" if s.bias else ""),
             "x' = x + z W_O" + (" + b_O" if s.bias else "")), ". "))


def _residual_parts(s: Shape) -> tuple[PartSpec, ...]:
    return (PartSpec("attn_out", "the attention output of “{token}” (z W_O"
                     + (" + b_O" if s.bias else "") + ")", "exact", head=None),
            PartSpec("resid_mid", "its residual sum x + attention output", "exact", head=None))


def _ffn(rng: random.Random, s: Shape, _: Draft | None, __: Any = None) -> Draft:
    d = _start(rng, s, "Feed-forward network with ReLU")
    x = nonzero_rows(rng, s.tokens, s.d_model, s.x_entry, s.zeros)
    w1 = nonzero_rows(rng, s.d_model, s.d_ff, s.w_entry, s.zeros)
    w2 = nonzero_rows(rng, s.d_ff, s.d_model, s.w_entry, s.zeros)
    givens = [_g("ffn_in", "F", "F", x, "input", rows="tokens"), _g("W1", "W_1", "W_1", w1)]
    if s.bias:
        givens.append(_g("b1", "b_1", "b_1", _vec(rng, s.d_ff, s.w_entry), vector=True))
    givens.append(_g("W2", "W_2", "W_2", w2))
    if s.difficulty == "hard":
        givens.append(_g("b2", "b_2", "b_2", _vec(rng, s.d_model, s.w_entry), vector=True))
    b1 = " + b_1" if s.bias else ""
    b2 = " + b_2" if s.difficulty == "hard" else ""
    return d.with_(model=[("activation", "relu")], givens=givens, facts=(
        "Each row f of ", Math("F", "F"), " goes through the feed-forward network ",
        Math(rf"\operatorname{{ReLU}}(f W_1{b1})\, W_2{b2}", f"ReLU(f W_1{b1}) W_2{b2}"),
        ", where ", Math(r"\operatorname{ReLU}(h) = \max(0, h)", "ReLU(h) = max(0, h)"),
        " entry by entry. "))


def _ffn_parts(s: Shape) -> tuple[PartSpec, ...]:
    return (PartSpec("ffn_pre", "the hidden layer of “{token}” before the activation", "exact",
                     head=None),
            PartSpec("ffn_act", "the same after ReLU", "exact", head=None),
            PartSpec("ffn_out", "the feed-forward output", "exact", head=None))


def _layernorm(rng: random.Random, s: Shape, _: Draft | None, __: Any = None) -> Draft:
    d = _start(rng, s, "Layer normalization")
    rows = tuple(_ln_row(rng, s) for _ in range(s.tokens))
    givens = [_g("x", "X", "X", rows, "input", rows="tokens")]
    affine = s.difficulty == "hard"
    if affine:
        givens += [_g("gamma1", r"\gamma", "γ", _vec(rng, s.d_model, 2), vector=True),
                   _g("beta1", r"\beta", "β", _vec(rng, s.d_model, 2, 0.3), vector=True)]
    formula = (r"\hat{x} = \gamma \odot \frac{x - \mu}{\sigma} + \beta" if affine
               else r"\hat{x} = \frac{x - \mu}{\sigma}")
    plain = "x̂ = γ ⊙ (x − μ)/σ + β" if affine else "x̂ = (x − μ)/σ"
    return d.with_(model=[("norm", "pre")], givens=givens, facts=(
        "Layer normalization rescales each row x: ", Math(formula, plain), ", where ",
        Math(r"\mu", "μ"), " is the mean of the row and ", Math(r"\sigma^2", "σ²"),
        " its biased (population) variance, ", Math(r"\sigma^2 = \frac{1}{d}\sum_j (x_j - \mu)^2",
                                                   "σ² = (1/d) Σ_j (x_j − μ)²"),
        ", with ", Math(r"\varepsilon = 0", "ε = 0"), ". "))


def _ln_row(rng: random.Random, s: Shape) -> tuple[Entry, ...]:
    """A row whose variance is not 0 and, where exact roots are wanted, whose mean,
    variance and normalized entries are all terminating decimals (the variance a perfect
    square).  Drawn by rejection; the constraints re-check the exact trace."""
    for _ in range(3_000):
        row = ints(rng, 1, s.d_model, s.x_entry)[0]
        mean = Fraction(sum(row)) / len(row)
        var = sum(((Fraction(v) - mean) ** 2 for v in row), Fraction(0)) / len(row)
        if var == 0:
            continue
        if not s.exact:
            return row
        root = _rational_sqrt(var)
        if root is None or not all(_terminates(x) for x in (mean, var)):
            continue
        if all(_terminates((v - mean) / root) for v in row):
            return row
    raise ConstraintError(f"no row of {s.d_model} whole numbers from -{s.x_entry} to "
                          f"{s.x_entry} found with a terminating mean and a perfect-square "
                          "variance in 3000 draws; try a larger --max-entry or another "
                          "--d-model")


def _rational_sqrt(x: Fraction) -> Fraction | None:
    import math

    p, q = math.isqrt(x.numerator), math.isqrt(x.denominator)
    return Fraction(p, q) if p * p == x.numerator and q * q == x.denominator else None


def _terminates(x: Fraction, digits: int = 3) -> bool:
    return (x * 10 ** digits).denominator == 1


def _layernorm_parts(s: Shape) -> tuple[PartSpec, ...]:
    form = "exact" if s.exact else "decimals"
    return (PartSpec("ln1_mean", "the mean μ of the row of “{token}”", "exact", head=None),
            PartSpec("ln1_var", "its variance σ²", "exact", head=None),
            PartSpec("ln1", "its normalized row", form, head=None))


def _block_attention(rng: random.Random, s: Shape, _: Draft | None, __: Any = None) -> Draft:
    d = _start(rng, s, "One transformer block")
    x = nonzero_rows(rng, s.tokens, s.d_model, s.x_entry, s.zeros)
    ws = [nonzero_rows(rng, s.d_model, s.d_head, s.w_entry, s.zeros) for _ in range(3)]
    return d.with_(
        givens=[_g("X", "X", "X", x, "input", rows="tokens"), _g("W_Q", "W_Q", "W_Q", ws[0]),
                _g("W_K", "W_K", "W_K", ws[1]), _g("W_V", "W_V", "W_V", ws[2])],
        model=[("activation", "relu")],
        facts=_row_convention() + ("One head of attention: ",) + _scaling() + (
            "Then ", Math(r"x' = x + z W_O", "x' = x + z W_O"), " and the output is ",
            Math(r"x' + \operatorname{ReLU}(x' W_1) W_2", "x' + ReLU(x' W_1) W_2"),
            " (no layer norm). "))


def _block_output(rng: random.Random, s: Shape, draft: Draft | None, __: Any = None) -> Draft:
    w_o = nonzero_rows(rng, s.d_head, s.d_model, s.w_entry, s.zeros)
    return _need(draft).with_(givens=[_g("W_O", "W_O", "W_O", w_o)])


def _block_ffn(rng: random.Random, s: Shape, draft: Draft | None, trace: Any = None) -> Draft:
    """W1 aimed at the asked token's ReLU inputs: each column is drawn until the certified
    decimals of ``x' W_1`` put it clearly on one side of 0, with both sides used."""
    d = _need(draft)
    w1 = _aimed_w1(rng, s, d, trace)
    w2 = nonzero_rows(rng, s.d_ff, s.d_model, s.w_entry, s.zeros)
    return d.with_(givens=[_g("W1", "W_1", "W_1", w1), _g("W2", "W_2", "W_2", w2)])


def _aimed_w1(rng: random.Random, s: Shape, d: Draft, trace: Any) -> Grid:
    if trace is None or "resid_mid" not in trace.names():
        return nonzero_rows(rng, s.d_model, s.d_ff, s.w_entry, s.zeros)
    from .constraints import fixed

    row = [Fraction(fixed(x, 4)) for x in trace.value("resid_mid", 0, None)[d.row]]
    columns: list[tuple[Entry, ...]] = []
    signs: set[int] = set()
    for j in range(s.d_ff):
        want = 0
        if j == s.d_ff - 1 and len(signs) < 2:
            want = -1 if 1 in signs else 1  # the last column supplies the missing side
        for _ in range(50):
            col = ints(rng, s.d_model, 1, s.w_entry, s.zeros)
            h = sum((r * c[0] for r, c in zip(row, col, strict=True)), Fraction(0))
            if abs(h) >= Fraction(3, 10) and (want == 0 or (h > 0) == (want > 0)):
                break
        columns.append(tuple(c[0] for c in col))
        signs.add(1 if h > 0 else -1)
    return tuple(tuple(col[i] for col in columns) for i in range(s.d_model))


def _block_parts(s: Shape) -> tuple[PartSpec, ...]:
    return (PartSpec("scaled_scores", "the scaled scores of “{token}”", "exact"),
            PartSpec("weights", "its attention weights"),
            PartSpec("z", "its attention output z"),
            PartSpec("resid_mid", "its residual sum x' = x + z W_O", head=None),
            PartSpec("ffn_pre", "the feed-forward hidden layer x' W_1 (before ReLU)", head=None),
            PartSpec("out", "the block output", head=None))


def _positional(rng: random.Random, s: Shape, _: Draft | None, __: Any = None) -> Draft:
    d = _start(rng, s, "Sinusoidal positional encoding", first=1)
    exponent = Math(r"2i/d", "2i/d")
    return d.with_(
        model=[("positional", "sinusoidal"), ("positional_base", str(s.base)),
               ("d_model", s.d_model)],
        facts=(f"The model width is d = {s.d_model} and positions count from 0. Position p "
               "gets ", Math(rf"PE_{{p,2i}} = \sin\!\big(p / {s.base}^{{2i/d}}\big)",
                             f"PE(p, 2i) = sin(p / {s.base}^(2i/d))"), " and ",
               Math(rf"PE_{{p,2i+1}} = \cos\!\big(p / {s.base}^{{2i/d}}\big)",
                    f"PE(p, 2i+1) = cos(p / {s.base}^(2i/d))"), " (the exponent is ",
               exponent, "; angles in radians). "))


def _positional_parts(s: Shape) -> tuple[PartSpec, ...]:
    return (PartSpec("pos", "the positional encoding of “{token}” (position {row})",
                     layer=None, head=None),)


def _final_and_unembedding(rng: random.Random, s: Shape, title: str) -> Draft:
    d = Draft(title=title, tokens=(rng.choice(WORDS),), row=0)
    vocab = tuple(rng.sample(VOCAB, s.vocab))
    h = nonzero_rows(rng, 1, s.d_model, s.x_entry, s.zeros)
    w_u = nonzero_rows(rng, s.d_model, s.vocab, s.w_entry + 1, s.zeros)
    givens = [_g("final", "h", "h", h, "input", rows="tokens"),
              _g("W_U", "W_U", "W_U", w_u, cols="vocab")]
    if s.bias:
        givens.append(_g("b_U", "b_U", "b_U", _vec(rng, s.vocab, s.w_entry), vector=True,
                         cols="vocab"))
    return d.with_(givens=givens, extra_input=[("vocab", list(vocab))], facts=(
        "The last hidden state of “{token}” is ", Math("h", "h"), ". The vocabulary is ",
        _ordinal(vocab), " (the columns of ", Math("W_U", "W_U"), ", in this order). "))


def _temperature_fact(t: Fraction) -> tuple[Piece, ...]:
    return ("The logits are ", Math(r"\ell = h W_U", "ℓ = h W_U"), " and the next-token "
            "probabilities are ", Math(r"\operatorname{softmax}(\ell / T)",
                                       "softmax(ℓ / T)"), " at temperature ",
            Math(f"T = {_frac_tex(t)}", f"T = {t}"), ". ")


def _frac_tex(x: Fraction) -> str:
    if x.denominator == 1:
        return str(x.numerator)
    sign = "-" if x < 0 else ""
    return rf"{sign}\tfrac{{{abs(x.numerator)}}}{{{x.denominator}}}"


def _logits(rng: random.Random, s: Shape, _: Draft | None, __: Any = None) -> Draft:
    d = _final_and_unembedding(rng, s, "Next-token probabilities at a temperature")
    t = rng.choice(s.temperatures)
    return d.with_(model=[("temperature", str(t))], facts=_temperature_fact(t))


def _logits_parts(s: Shape) -> tuple[PartSpec, ...]:
    return (PartSpec("logits", "the logits ℓ = h W_U" + (" + b_U" if s.bias else ""), "exact",
                     layer=None, head=None),
            PartSpec("probs", "the next-token probabilities", layer=None, head=None))


def _decoding(rng: random.Random, s: Shape, _: Draft | None, __: Any = None) -> Draft:
    d = Draft(title="Choosing the next token", tokens=(rng.choice(WORDS),), row=0)
    vocab = tuple(rng.sample(VOCAB, s.vocab))
    values: list[Entry] = list(range(-s.x_entry, s.x_entry + 2))
    if s.halves:
        values = [Fraction(k, 2) for k in range(-2 * s.x_entry, 2 * s.x_entry + 3)]
    logits = (tuple(rng.sample(values, s.vocab)),)
    p = rng.choice(s.top_ps)
    return d.with_(
        givens=[_g("logits", r"\ell", "ℓ", logits, "input", rows="tokens", cols="vocab")],
        extra_input=[("vocab", list(vocab))],
        decoding=[("top_k", s.top_k), ("top_p", str(p))],
        facts=("After “{token}”, the model's logits over the vocabulary ", _ordinal(vocab),
               " (in this order) are ", Math(r"\ell", "ℓ"), "; the probabilities are their "
               "softmax (temperature 1). Top-k keeps the ", Math(f"k = {s.top_k}",
                                                                  f"k = {s.top_k}"),
               " most probable words; top-p keeps the fewest most probable words whose "
               "probabilities add up to at least ", Math(f"p = {_frac_tex(p)}", f"p = {p}"),
               ". Both renormalize the kept probabilities to sum to 1 (the rest become 0). "))


def _decoding_parts(s: Shape) -> tuple[PartSpec, ...]:
    return (PartSpec("probs", "the next-token probabilities", layer=None, head=None),
            PartSpec("greedy", "the word greedy decoding chooses", "choice", layer=None,
                     head=None),
            PartSpec("top_k_probs", "the probabilities after top-k filtering", layer=None,
                     head=None),
            PartSpec("top_p_probs", "the probabilities after top-p (nucleus) filtering",
                     layer=None, head=None))


def _training(rng: random.Random, s: Shape, _: Draft | None, __: Any = None) -> Draft:
    d = _final_and_unembedding(rng, s, "Cross-entropy and one gradient step")
    vocab = dict(d.extra_input)["vocab"]
    target = rng.choice(vocab)
    lr = s.learning_rate
    return d.with_(
        model=[("learning_rate", str(lr))], extra_input=[("target", target)],
        facts=_temperature_fact(Fraction(1)) + (
            "The correct next word is “" + target + "”. The loss is the cross-entropy ",
            Math(r"\mathcal{L} = -\log \pi_{\mathrm{target}}", "L = −log p(target)"),
            "; one step of gradient descent with learning rate ",
            Math(rf"\eta = {_frac_tex(lr)}", f"η = {lr}"), " updates ",
            Math(r"W_U \leftarrow W_U - \eta\, \partial\mathcal{L}/\partial W_U",
                 "W_U ← W_U − η ∂L/∂W_U"), ". "))


def _training_parts(s: Shape) -> tuple[PartSpec, ...]:
    return (PartSpec("loss", "the loss", layer=None, head=None, row=False),
            PartSpec("grad.logits", "the gradient of the loss with respect to the logits",
                     layer=None, head=None),
            PartSpec("new.W_U", "the updated unembedding matrix W_U", layer=None, head=None,
                     row=False))


# --------------------------------------------------------------------------- presets


def _presets(**per: Mapping[str, Any]) -> dict[str, Shape]:
    """One :class:`Shape` per difficulty: ``easy={...}, medium={...}, hard={...}``."""
    return {name: replace(Shape(difficulty=name), **dict(per.get(name, {})))
            for name in DIFFICULTIES}


_ROUND = {"easy": {"decimals": 2}, "medium": {"decimals": 2}, "hard": {"decimals": 3}}

TOPIC_LIST: tuple[Topic, ...] = (
    Topic("projection", "Queries, keys and values", "q, k and v of one token (x W)",
          _presets(easy=dict(d_model=3, d_head=2, x_entry=1, bound=10),
                   medium=dict(d_model=4, d_head=3, x_entry=2, bound=20),
                   hard=dict(tokens=4, d_model=4, d_head=4, x_entry=2, w_entry=2, bound=30)),
          (_projection,), _projection_parts, ("q", "k", "v"),
          uses=frozenset(("tokens", "d_model", "d_head", "max_entry"))),
    Topic("scores", "Scaled attention scores", "q kᵀ and its scaling by 1/√d_k",
          _presets(easy=dict(x_entry=1, bound=10, max_den=2),
                   medium=dict(x_entry=2, bound=20, max_den=2),
                   hard=dict(tokens=4, x_entry=3, bound=40, max_den=2)),
          (_scores,), _scores_parts, ("scores", "sqrt_dk", "scale", "scaled_scores"),
          uses=frozenset(("tokens", "d_head", "max_entry"))),
    Topic("softmax", "Softmax: attention weights", "the softmax of given scores",
          _presets(easy=dict(x_entry=1, bound=5, max_den=1, **_ROUND["easy"]),
                   medium=dict(x_entry=2, bound=5, max_den=1, **_ROUND["medium"]),
                   hard=dict(tokens=4, x_entry=2, halves=True, bound=5, max_den=2,
                             **_ROUND["hard"])),
          (_softmax,), _softmax_parts, ("exp_scores", "exp_sum", "weights"),
          uses=frozenset(("tokens", "decimals", "max_entry"))),
    Topic("attention", "Scaled dot-product attention", "weights and output z of one token",
          _presets(easy=dict(x_entry=1, bound=10, max_den=2, **_ROUND["easy"]),
                   medium=dict(x_entry=1, bound=20, max_den=2, d_v=3, **_ROUND["medium"]),
                   hard=dict(tokens=4, x_entry=2, bound=40, max_den=2, d_v=3,
                             **_ROUND["hard"])),
          (_attention,), _attention_parts,
          ("scores", "sqrt_dk", "scale", "scaled_scores", "exp_scores", "exp_sum", "weights",
           "z"),
          uses=frozenset(("tokens", "d_head", "decimals", "max_entry"))),
    Topic("multihead", "Multi-head attention", "two heads, concat and W_O",
          _presets(easy=dict(heads=2, d_model=2, d_head=2, x_entry=1, zeros=0.15,
                             **_ROUND["easy"]),
                   medium=dict(heads=2, d_model=3, d_head=2, x_entry=1, zeros=0.15,
                               **_ROUND["medium"]),
                   hard=dict(heads=2, d_model=4, d_head=2, x_entry=2, zeros=0.15,
                             **_ROUND["hard"])),
          (_mh_attention, _mh_more_heads, _mh_output), _multihead_parts,
          ("q", "k", "v", "scores", "sqrt_dk", "scale", "scaled_scores", "exp_scores",
           "exp_sum", "weights", "z", "concat", "attn_out"),
          uses=frozenset(("tokens", "d_model", "d_head", "decimals", "max_entry"))),
    Topic("residual", "Output projection and residual", "z W_O and x + attention output",
          _presets(easy=dict(d_model=3, x_entry=2, bound=20),
                   medium=dict(d_model=4, d_v=3, x_entry=2, w_entry=2, bound=30),
                   hard=dict(d_model=4, d_v=3, x_entry=3, w_entry=2, bias=True, bound=40)),
          (_residual,), _residual_parts, ("attn_out", "resid_mid"),
          uses=frozenset(("tokens", "d_model", "max_entry"))),
    Topic("ffn", "Feed-forward network with ReLU", "ReLU(f W_1 + b_1) W_2 + b_2 for one row",
          _presets(easy=dict(d_model=3, d_ff=3, x_entry=2, bound=20),
                   medium=dict(d_model=3, d_ff=4, x_entry=2, bias=True, bound=30),
                   hard=dict(d_model=4, d_ff=5, x_entry=3, w_entry=2, bias=True, bound=60)),
          (_ffn,), _ffn_parts, ("ffn_pre", "ffn_act", "ffn_out"),
          uses=frozenset(("tokens", "d_model", "max_entry"))),
    Topic("layernorm", "Layer normalization", "mean, variance and normalized row",
          _presets(easy=dict(tokens=2, d_model=4, x_entry=4, bound=20, max_den=4),
                   medium=dict(d_model=4, x_entry=6, bound=40, max_den=4),
                   hard=dict(d_model=5, x_entry=5, exact=False, bound=40, max_den=25,
                             **_ROUND["hard"])),
          (_layernorm,), _layernorm_parts, ("ln1_mean", "ln1_var", "ln1"),
          uses=frozenset(("tokens", "d_model", "decimals", "max_entry"))),
    Topic("block", "One transformer block", "attention, residual and ReLU feed-forward",
          _presets(easy=dict(d_model=3, d_ff=3, x_entry=1, bound=10, max_den=2,
                             **_ROUND["easy"]),
                   medium=dict(d_model=4, d_ff=4, x_entry=1, bound=20, max_den=2,
                               **_ROUND["medium"]),
                   hard=dict(tokens=4, d_model=4, d_ff=4, x_entry=2, bound=40, max_den=2,
                             **_ROUND["hard"])),
          (_block_attention, _block_output, _block_ffn), _block_parts,
          ("q", "k", "v", "scores", "sqrt_dk", "scale", "scaled_scores", "exp_scores",
           "exp_sum", "weights", "z", "attn_out", "resid_mid", "ffn_pre", "ffn_act",
           "ffn_out", "resid_post", "out"),
          uses=frozenset(("tokens", "d_model", "d_head", "decimals", "max_entry"))),
    Topic("positional", "Sinusoidal positional encoding", "sin/cos values of one position",
          _presets(easy=dict(tokens=3, d_model=4, base=100, decimals=3),
                   medium=dict(tokens=4, d_model=4, base=10000, decimals=3),
                   hard=dict(tokens=5, d_model=8, base=10000, decimals=4)),
          (_positional,), _positional_parts, ("pos",),
          uses=frozenset(("tokens", "d_model", "decimals"))),
    Topic("logits", "Next-token probabilities", "logits h W_U and softmax at a temperature",
          _presets(easy=dict(d_model=2, vocab=3, x_entry=1, bound=10, **_ROUND["easy"]),
                   medium=dict(d_model=3, vocab=4, x_entry=1, bound=10,
                               temperatures=(Fraction(1, 2), Fraction(2)), **_ROUND["medium"]),
                   hard=dict(d_model=3, vocab=5, x_entry=2, bias=True, bound=20,
                             temperatures=(Fraction(1, 2), Fraction(2), Fraction(3, 2)),
                             **_ROUND["hard"])),
          (_logits,), _logits_parts,
          ("logits", "scaled_logits", "exp_logits", "exp_logits_sum", "probs"),
          requires=("probs",), uses=frozenset(("d_model", "decimals", "max_entry"))),
    Topic("decoding", "Choosing the next token", "greedy, top-k and top-p",
          _presets(easy=dict(vocab=4, x_entry=1, top_k=2, top_ps=(Fraction(4, 5),),
                             **_ROUND["easy"]),
                   medium=dict(vocab=5, x_entry=1, halves=True, top_k=2,
                               top_ps=(Fraction(4, 5), Fraction(9, 10)), **_ROUND["medium"]),
                   hard=dict(vocab=6, x_entry=1, halves=True, top_k=3,
                             top_ps=(Fraction(3, 4), Fraction(4, 5), Fraction(9, 10)),
                             **_ROUND["hard"])),
          (_decoding,), _decoding_parts,
          ("scaled_logits", "exp_logits", "exp_logits_sum", "probs", "greedy", "top_k_probs",
           "top_p_sorted", "top_p_cumsum", "top_p_probs"),
          requires=("greedy", "top_k_probs", "top_p_probs"),
          uses=frozenset(("decimals", "max_entry"))),
    Topic("training", "Cross-entropy and one gradient step", "loss, ∂L/∂logits, new W_U",
          _presets(easy=dict(d_model=2, vocab=3, x_entry=1, bound=10, **_ROUND["easy"]),
                   medium=dict(d_model=2, vocab=3, x_entry=1, bound=10,
                               learning_rate=Fraction(1, 10), **_ROUND["medium"]),
                   hard=dict(d_model=3, vocab=4, x_entry=2, bound=20,
                             learning_rate=Fraction(1, 10), **_ROUND["hard"])),
          (_training,), _training_parts,
          ("logits", "exp_logits", "exp_logits_sum", "probs", "loss", "grad.logits",
           "grad.W_U", "new.W_U"),
          requires=("loss", "grad.logits", "new.W_U"),
          uses=frozenset(("d_model", "decimals", "max_entry"))),
)

TOPICS: dict[str, Topic] = {t.name: t for t in TOPIC_LIST}
"""Every topic by name, in the order ``--help`` lists them."""
