"""How one step is shown: the views of its result and operands (which rows, which
symbols), its matrices printed exact or as certified decimals within a width budget,
and rows labelled by words.

Layer: presentation.  The formulas are in
:mod:`exacttransformer.render.formulas`, the document in :mod:`exacttransformer.render.mathdoc`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy

from ..exact.linalg import Matrix
from ..graph.trace import Key, Step, Trace
from . import asked_forms
from .document import Block, Options, Run, Table, Target
from .forms import SoftmaxForm, size, softmax_form, tex, width
from .layout import PARAM_NAMES, ROWS_ARE_KEYS, column_labels
from .notation import (
    HEAD_PARAMS,
    KEY_COLUMNS,
    NOT_PRINTABLE,
    NUMBERED_SYMBOLS,
    PARAM_SYMBOLS,
    SOFTMAX,
    SYMBOLS,
    WORD_WIDTH,
    Shown,
    agrees,
    cell,
    decimal,
    grid,
    is_integer,
    numbered_parts,
    pick,
    size_words,
    sup,
)


@dataclass
class View:
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


def step_kind(step: Step, ops: list[View]) -> str:
    inputs = step.inputs
    params = [v for v in ops if v.param]
    if len(inputs) == 1 and params and params[0].name.startswith("W"):
        return "linear"
    if len(inputs) == 2 and not params and step.formula == f"{inputs[0][0]} + {inputs[1][0]}":
        return "add"
    if len(inputs) == 1 and not params and step.formula == inputs[0][0]:
        return "identity"
    return "other"


@dataclass
class StepView:
    """The trace, the output target and the options, and how each step's values are shown."""

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
        asked = asked_forms.symbol(self, name, head, row)
        if asked is not None:
            return asked
        numbered = numbered_parts(name)
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
             row_mode: bool = True) -> View:
        head = key[2] if key is not None else None
        if row_mode and self.per_token(name, value, param):
            t = self.opts.token
            assert t is not None
            return View(name, key, value, (t,), self.symbol(name, head, t), param)
        return View(name, key, value, tuple(range(len(value))),
                     self.symbol(name, head, None), param, self.row_labels(name, value, param))

    def row_labels(self, name: str, value: Matrix, param: bool) -> tuple[str, ...] | None:
        """Token labels for a matrix with one row per token (more than one row)."""
        tokens = self.trace.kv_tokens if name in ROWS_ARE_KEYS and self.trace.kv_tokens \
            else self.trace.tokens
        if param or len(value) < 2 or len(value) != len(tokens):
            return None
        return tuple(self.target.token(i, t) for i, t in enumerate(tokens))

    def result_view(self, step: Step) -> View:
        return self.view(step.name, step.key, step.value)

    def operand_views(self, step: Step) -> list[View]:
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

    def readable(self, view: View) -> SoftmaxForm | None:
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
            if form is not None and not agrees(form, rows):
                form = None
        self.forms[cache_key] = form
        return form

    def exact(self, view: View, budget: float, *, transpose: bool = False
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
        picked_r = [i for i in pick(n_rows, self.opts.max_rows) if i is not None]
        picked_c = [j for j in pick(n_cols, self.opts.max_cols) if j is not None]
        biggest = max(size(source[i][j], self.opts.size_limit + 1)
                      for i in picked_r for j in picked_c)
        if biggest > self.opts.size_limit:
            return None, biggest
        strut = self.opts.strut
        shown = grid(n_rows, n_cols, lambda i, j: cell(tex(source[i][j]), strut), self.opts,
                     budget, labels=None if transpose else view.labels)
        if (shown is None or shown.elided) and n_rows == 1 and not transpose \
                and 1 < n_cols <= self.opts.max_rows:
            # A row too wide for the line, whole as a column (labelled by the keys it reads)
            # rather than shortened with \cdots.
            column = grid(n_cols, 1, lambda i, j: cell(tex(source[0][i]), strut), self.opts,
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

    def first_big(self, view: View) -> int:
        """The size of the first shown entry over the limit (counted up to 10,000)."""
        form = self.readable(view)
        source = form.entries if form is not None else view.picked
        for row in source:
            for x in row:
                if size(x, self.opts.size_limit + 1) > self.opts.size_limit:
                    return size(x, 10_001)
        return 0

    def decimals(self, view: View, budget: float, *, transpose: bool = False) -> Shown | None:
        rows = view.picked
        if transpose:
            rows = tuple(zip(*rows, strict=True))
        digits = self.opts.digits
        shown = grid(len(rows), len(rows[0]), lambda i, j: decimal(rows[i][j], digits),
                     self.opts, budget, labels=None if transpose else view.labels)
        if shown is None:
            return None
        return Shown(shown.tex, shown.width, approx=True, elided=shown.elided)

    def piece(self, text: str) -> Shown:
        """A short piece of LaTeX for a substitution line."""
        return Shown(text, width(text, "display"))

    def operand(self, view: View, budget: float, *, transpose: bool = False) -> Shown:
        """An operand for the substitution line: exact where it fits, else decimals."""
        shown, _ = self.exact(view, budget, transpose=transpose)
        if shown is not None:
            return shown
        dec = self.decimals(view, budget, transpose=transpose)
        if dec is None:  # cannot happen with three short columns, but never overflow
            return Shown(r"\cdots", 13.0, approx=True)
        return dec

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

    def labelled(self, result: View, head: str, labels: tuple[Run, ...]
                 ) -> tuple[list[Block], list[tuple[Run, ...]]]:
        """The result as tables (and the notes that follow them): whole numbers across the
        page in chunks, one column per label; anything else down the page, one row per
        label, exact and decimal side by side."""
        if len(result.rows) == 1 and all(is_integer(x) for x in result.picked[0]):
            return self.across(result, head, labels), []
        return self.down(result, head, labels)

    def across(self, result: View, head: str, labels: tuple[Run, ...]) -> list[Block]:
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

    def _across_table(self, result: View, head: str, labels: tuple[Run, ...], start: int,
                      end: int) -> Table:
        cells = tuple(((("math", tex(x)),)) for x in result.picked[0][start:end])
        return Table(header=((("text", head),), *((label,) for label in labels[start:end])),
                     rows=(((("math", result.symbol),), *cells),))

    def down(self, result: View, head: str, labels: tuple[Run, ...]
             ) -> tuple[list[Block], list[tuple[Run, ...]]]:
        rows = result.picked
        picked = pick(len(rows[0]), 2 * self.opts.max_rows)
        integers = all(is_integer(x) for r in rows for x in r)
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
                columns.append([decimal(row[j], self.opts.digits) if j is not None
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

    def exact_column(self, result: View, n: int, picked: list[int | None]
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
            return None, (f"an entry has {size_words(size(big, 10_001))}, more than the limit "
                          f"of {self.opts.size_limit}")
        texts = [tex(x) for x in shown]
        if max(width(t, "display") for t in texts) > self.opts.budget - 160:
            return None, "they are too wide for the table"
        cells = iter(cell(t, self.opts.strut) for t in texts)
        return [next(cells) if j is not None else r"\vdots" for j in picked], None

    def result_lines(self, step: Step, result: View, lines: list[tuple[str, str, str]],
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
                why = (f"an entry has {size_words(self.first_big(result))}, more than the "
                       f"limit of {self.opts.size_limit}")
            else:
                why = "they are too wide for the page"
            notes.append((("text", f"The closed forms are omitted ({why}); the decimals are "
                                   "correct in every digit shown."),))
        form = self.readable(result)
        if form is not None and exact is not None:
            notes.append(self.form_note(form, result))
        integers = all(is_integer(x) for r in result.picked for x in r)
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

    def form_note(self, form: SoftmaxForm, view: View) -> tuple[Run, ...]:
        t = sympy.exp(form.base)
        runs: list[Run] = [("text", "where "),
                           ("math", rf"t = {tex(t)} \approx {decimal(t, self.opts.digits)}"),
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
