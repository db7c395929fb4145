"""Each step's formula: in symbols, with the numbers substituted, and in words.

Layer: presentation.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ..graph.trace import Step
from . import asked_forms
from .document import Run, WordLines
from .forms import size, tex, width
from .layout import pair_labels
from .notation import (
    ACTIVATIONS,
    SOFTMAX,
    WORD_WIDTH,
    Shown,
    break_words,
    entry,
    paren,
    sentence,
    sum_tex,
    sup,
)
from .stepview import StepView, View, step_kind


class StepFormulas(StepView):
    """The formula of each kind of step, on top of how its values are shown."""

    # -- formulas ---------------------------------------------------------------------
    def formula(self, step: Step, result: View
                ) -> tuple[str | WordLines, list[tuple[str, Shown]], list[tuple[Run, ...]]]:
        """The formula in symbols, the substituted pieces, and notes."""
        ops = self.operand_views(step)
        syms = [v.symbol for v in ops]
        name = step.name
        budget = self.opts.budget - 60
        special = getattr(self, f"_f_{name}", None)
        if asked_forms.formula(self, step, result, ops, budget) is not None:
            special = partial(asked_forms.formula, self)
        if special is not None:
            found: tuple[str, list[tuple[str, Shown]], list[tuple[Run, ...]]] | None = \
                special(step, result, ops, budget)
            if found is not None:
                # Special substitutions print values directly: exact traces only.
                return found if self.symbolic else (found[0], [], found[2])
        kind = step_kind(step, ops)
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

    def words_formula(self, step: Step, result: View) -> tuple[
            str | WordLines, list[tuple[str, Shown]], list[tuple[Run, ...]]]:
        """A formula in words: what the step adds once its value is known (after ``; ``)
        becomes a sentence below, and a long formula breaks at arrows and commas."""
        main, _, told = step.formula.partition("; ")
        notes: list[tuple[Run, ...]] = []
        if told:
            notes.append((("text", sentence(told)),))
        if pair_labels(step) is not None:  # the table below names the pairs
            main = main[:main.index(" (")]
        room = (self.opts.budget - width(result.symbol, "display") - 30) / WORD_WIDTH
        lines = break_words(main, max(int(room), 24))
        if len(lines) == 1:  # a short chain keeps its arrows in math
            return r" \to ".join(self.target.words(t) for t in main.split(" → ")), [], notes
        return WordLines(tuple((rel, self.target.words(text)) for rel, text in lines)), [], notes

    def _scalar(self, view: View) -> Shown:
        return self.operand(view, 200.0)

    def _f_scores(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
        if len(ops) != 2:
            return None
        f = ops[0].symbol + r" \, " + sup(ops[1].symbol, r"\top")
        pieces = [("", self.operand(ops[0], budget)),
                  ("", self.operand(ops[1], budget, transpose=True))]
        return f, pieces, []

    def _f_sqrt_dk(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
        d = len(step.operands[0][1][0]) if step.operands else None
        notes = [(("math", f"d_k = {d}"), ("text", ", the width of each key."),)] if d else []
        return (rf"\sqrt{{{d}}}" if d else r"\sqrt{d_k}"), [], notes

    def _f_scale(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
        if ops and ops[0].name == "sqrt_dk":
            return r"\frac{1}{\sqrt{d_k}}", [("", Shown(r"\frac{1}{" + tex(ops[0].value[0][0])
                                                        + "}", 30.0))], []
        return tex(step.value[0][0]), [], []

    def _f_scaled_scores(self, step: Step, result: View, ops: list[View], budget: float
                         ) -> Any:
        if len(ops) != 2:
            return None
        s = ops[0].symbol
        scale = self.trace.config.scale
        f = rf"\frac{{{s}}}{{\sqrt{{d_k}}}}" if scale == "sqrt_dk" else rf"\lambda \, {s}"
        pieces = [("", self._scalar(ops[1])), ("", self.operand(ops[0], budget))]
        return f, pieces, []

    def _f_shifted_scores(self, step: Step, result: View, ops: list[View], budget: float
                          ) -> Any:
        s = ops[0].symbol if ops else r"\tilde{s}"
        return rf"{s} - \max_j {entry(s, 'j')}", [], []

    def _f_exp_scores(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
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

    def _f_exp_sum(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
        if len(ops) != 1:
            return None
        f = rf"\sum_j {entry(ops[0].symbol, 'j')}"
        if len(ops[0].rows) != 1:
            return f, [], []
        row = ops[0].picked[0]
        if any(size(x, self.opts.size_limit + 1) > self.opts.size_limit for x in row) \
                or len(row) > self.opts.max_cols:
            return f, [], []
        text = sum_tex([tex(x) for x in row])
        if width(text, "display") > budget:
            return f, [], []
        return f, [("", Shown(text, width(text, "display")))], []

    _f_exp_logits_sum = _f_exp_sum

    def _f_weights(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
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

    def _f_scaled_logits(self, step: Step, result: View, ops: list[View], budget: float
                         ) -> Any:
        if len(ops) != 2:
            return None
        if ops[1].value[0][0] == 1:
            return rf"\frac{{{ops[0].symbol}}}{{T}}", [], [(("text", "Here "), ("math", "T = 1"),
                                                            ("text", ": nothing changes."))]
        return (rf"\frac{{{ops[0].symbol}}}{{T}}",
                [("", Shown(r"\frac{1}{" + tex(ops[1].value[0][0]) + "}", 24.0)),
                 ("", self.operand(ops[0], budget))], [])

    def _f_z(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
        if len(ops) != 2:
            return None
        f = f"{ops[0].symbol} \\, {ops[1].symbol}"
        return f, [("", self.operand(ops[0], budget)), ("", self.operand(ops[1], budget))], []

    def _f_concat(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
        if len(ops) == 1:
            return ops[0].symbol, [], []
        f = r"\left[" + ", ".join(v.symbol for v in ops) + r"\right]"
        pieces = [("", self.operand(v, budget)) for v in ops]
        return f, pieces, []

    def _f_ffn_act(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
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

    def _norm_mean(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
        if len(ops) != 1:
            return None
        d = len(step.operands[0][1][0])
        f = rf"\frac{{1}}{{{d}}} \sum_i {entry(ops[0].symbol, 'i')}"
        if len(ops[0].rows) != 1 or d > self.opts.max_cols:
            return f, [], []
        row = ops[0].picked[0]
        if any(size(x, 20) > 12 for x in row):
            return f, [], []
        text = rf"\frac{{1}}{{{d}}}\left(" + sum_tex([tex(x) for x in row]) + r"\right)"
        if width(text, "display") > budget:
            return f, [], []
        return f, [("", Shown(text, width(text, "display")))], []

    def _norm_var(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
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
        terms = [rf"\left({tex(x)} - {paren(m)}\right)^2" for x in row]
        text = rf"\frac{{1}}{{{d}}}\left(" + " + ".join(terms) + r"\right)"
        if width(text, "display") > budget:
            return f, [], []
        return f, [("", Shown(text, width(text, "display")))], []

    def _norm_out(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
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
                mean_tex = paren(tex(m))
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

    def _f_embed(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
        if not ops:
            return None
        if len(result.rows) == 1:
            return rf"E\left[{self.symbol('ids', None, result.rows[0])}\right]", [], []
        return r"E\left[\mathrm{ids}\right]", [], []

    def _f_cosine(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
        return (r"\frac{e_i \cdot e_j}{\lVert e_i \rVert \, \lVert e_j \rVert}", [],
                [(("text", "For every pair of tokens "), ("math", "i, j"),
                  ("text", ", with their embeddings "), ("math", "e_i, e_j"),
                  ("text", "; square roots are kept exact."))])

    def _f_analogy_cosine(self, step: Step, result: View, ops: list[View], budget: float
                          ) -> Any:
        return (r"\frac{a \cdot E_j}{\lVert a \rVert \, \lVert E_j \rVert}", [],
                [(("text", "For every word "), ("math", "j"), ("text", " of the vocabulary, "),
                  ("math", "E_j"), ("text", " its row of the embedding table."))])

    def _f_rope_angle(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
        b = tex(self.trace.config.positional_base)
        return (rf"\frac{{p}}{{{b}^{{2i/d_k}}}}", [],
                [(("text", "For position "), ("math", "p"), ("text", " (from 0) and the pair "),
                  ("math", "(2i, 2i+1)"), ("text", " of each query and key.")),])

    def _f_pos(self, step: Step, result: View, ops: list[View], budget: float) -> Any:
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
