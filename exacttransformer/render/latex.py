"""Trace -> a LaTeX worked example that compiles with ``pdflatex -halt-on-error``.

Layer: presentation (writes the blocks of :mod:`exacttransformer.render.mathdoc`).

The document uses the article class and four packages only (amsmath, booktabs, xcolor,
TikZ), all in TeX Live's ``texlive-latex-base``, ``-latex-recommended`` and ``-pictures``.
Every user string (title, source, tokens, claim notes) goes through :func:`escape`: the
characters TeX treats specially are typeset from the typewriter font by their character
code, so ``\\input{/etc/passwd}`` or ``$100`` print literally and never run; characters the
default (OT1) fonts lack are written as accents, math symbols or ``[U+XXXX]``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from ..graph.trace import Trace
from .document import (
    Block,
    ClaimRow,
    ClaimsTable,
    Display,
    Heading,
    Heatmap,
    Items,
    Options,
    Para,
    Run,
    Table,
)
from .mathdoc import build

PACKAGES = ("amsmath", "booktabs", "xcolor", "tikz")
MAX_SUBSCRIPT = 12  # characters of a token shown as a subscript
TEXT_WIDTH_IN = 6.5
FRAGMENT_BUDGET = 330.0  # points per display line when \input into an unknown page
DOCUMENT_BUDGET = 410.0

# Typeset from the typewriter font by code: OT1 roman has no glyph for these (or draws a
# different one), and each is active or special in TeX.
_TT_CODES = {"\\": 92, "{": 123, "}": 125, "_": 95, "^": 94, "~": 126, "<": 60, ">": 62,
             "|": 124, "$": 36}  # \$ would take its glyph from the TS1 bitmap fonts
_SIMPLE = {"%": r"\%", "&": r"\&", "#": r"\#"}
_MATH = {
    "≈": r"\approx", "×": r"\times", "·": r"\cdot", "−": "-", "→": r"\to", "←": r"\leftarrow",
    "≤": r"\leq", "≥": r"\geq", "≠": r"\neq", "∞": r"\infty", "√": r"\surd", "∑": r"\sum",
    "∈": r"\in", "±": r"\pm", "÷": r"\div", "∘": r"\circ", "⊙": r"\odot", "°": r"^\circ",
    "ᵀ": r"^{\mathsf{T}}", "²": "^2", "³": "^3", "¹": "^1", "½": r"\tfrac12", "∂": r"\partial",
    "∇": r"\nabla", "′": "'", "…": r"\ldots", "⋯": r"\cdots", "ℓ": r"\ell",
    "⌊": r"\lfloor", "⌋": r"\rfloor", "✓": r"\surd", "✗": r"\times", "↳": r"\hookrightarrow",
}
_GREEK = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi "
          "rho varsigma sigma tau upsilon phi chi psi omega").split()
for _i, _name in enumerate(_GREEK):
    if _name not in ("omicron",):
        _MATH[chr(0x3B1 + _i)] = "\\" + _name
    _cap = _name.capitalize()
    if _cap in ("Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi",
                "Psi", "Omega"):
        _MATH[chr(0x391 + _i)] = "\\" + _cap
_MATH["ο"] = "o"
_TEXT = {
    "\u00a0": "~", "–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''",
    "•": r"\ensuremath{\bullet}", "§": r"\ensuremath{\S}", "¶": r"\ensuremath{\P}",
    "©": "(c)", "£": r"{\fontshape{it}\selectfont\char36}", "ß": r"\ss{}", "æ": r"\ae{}",
    "Æ": r"\AE{}", "ø": r"\o{}", "Ø": r"\O{}",
    "œ": r"\oe{}", "Œ": r"\OE{}", "ł": r"\l{}", "Ł": r"\L{}", "ı": r"\i{}", "¡": "!`",
    "¿": "?`",
}
_ACCENTS = {"\u0300": "`", "\u0301": "'", "\u0302": "^", "\u0303": "~", "\u0304": "=",
            "\u0306": "u", "\u0307": ".", "\u0308": '"', "\u030a": "r", "\u030b": "H",
            "\u030c": "v", "\u0327": "c"}


def _tt(code: int) -> str:
    return r"{\ttfamily\char" + str(code) + "}"


def _accented(ch: str) -> str | None:
    """``é`` -> ``\\'{e}`` when the letter decomposes into ASCII and known accents."""
    parts = unicodedata.normalize("NFD", ch)
    base, marks = parts[0], parts[1:]
    if not (base.isascii() and base.isalpha()) or not marks:
        return None
    out = r"\i" if base == "i" else r"\j" if base == "j" else base
    for m in marks:
        accent = _ACCENTS.get(m)
        if accent is None:
            return None
        out = "\\" + accent + "{" + out + "}"
    return out


def escape(text: str, *, mono: bool = False) -> str:
    """User text as LaTeX that prints it literally (text mode).

    >>> escape(r"\\input{x}")
    '{\\\\ttfamily\\\\char92}input{\\\\ttfamily\\\\char123}x{\\\\ttfamily\\\\char125}'
    >>> escape("$100 50%")
    '{\\\\ttfamily\\\\char36}100 50\\\\%'
    >>> escape("a_b #1 & ~")
    'a{\\\\ttfamily\\\\char95}b \\\\#1 \\\\& {\\\\ttfamily\\\\char126}'
    >>> escape("café ≈ 8.33"), escape("😀")
    ("caf\\\\'{e} \\\\ensuremath{\\\\approx} 8.33", '{\\\\ttfamily[U+1F600]}')
    """
    out: list[str] = []
    quote_open = True
    word = since = 0
    for n, ch in enumerate(text):
        word = 0 if ch.isspace() else word + 1
        since = 0 if ch.isspace() else since + 1
        inside = n + 1 < len(text) and not text[n + 1].isspace()
        if not mono and inside and since > 1 and ((word > 8 and ch in "/.-_?=&#:") or since > 24):
            out.append(r"\allowbreak{}")  # a long URL, path or hash may break here
            since = 1
        if ch in _TT_CODES:
            out.append(_tt(_TT_CODES[ch]))
        elif ch in _SIMPLE:
            out.append(_SIMPLE[ch])
        elif ch == '"':
            if mono:
                out.append(_tt(34))
            else:
                out.append("``" if quote_open else "''")
                quote_open = not quote_open
        elif ch == "'":
            out.append(_tt(13) if mono else "'{}")
        elif ch == "`":
            out.append(_tt(18) if mono else "{}`{}")
        elif ch == "-":
            out.append("-{}")  # no -- or --- ligature
        elif ch == " ":
            out.append(r"\ " if mono else " ")
        elif ch in "\t\n\r":
            out.append(r"\ " if mono else " ")
        elif ch.isascii() and ch.isprintable():
            out.append(ch)
        elif ch in _TEXT:
            out.append(_TEXT[ch])
        elif ch in _MATH:
            out.append(r"\ensuremath{" + _MATH[ch] + "}")
        else:
            accented = _accented(ch)
            if accented is not None:
                out.append(accented)
            else:
                out.append(r"{\ttfamily[U+" + f"{ord(ch):04X}" + "]}")
    return "".join(out)


def code(text: str, *, breakable: bool = True) -> str:
    """A token or other literal string in typewriter type; long ones may break anywhere."""
    if not text:
        return r"\textup{(empty)}"
    if breakable and len(text) > 16:
        return r"\texttt{" + r"\allowbreak{}".join(escape(ch, mono=True) for ch in text) + "}"
    return r"\texttt{" + escape(text, mono=True) + "}"


class LatexTarget:
    """User text inside math for a LaTeX document."""

    def token(self, index: int, text: str) -> str:
        # A subscript cannot break across lines: a long token is named by its row.
        if not text or len(text) > MAX_SUBSCRIPT:
            return rf"\#{index}"
        return r"\text{" + escape(text) + "}"

    def words(self, text: str) -> str:
        return r"\text{" + escape(text) + "}"


# --------------------------------------------------------------------------- writing


def _runs(runs: Sequence[Run]) -> str:
    out = []
    for kind, text in runs:
        if kind == "math":
            out.append(f"${text}$")
        elif kind == "code":
            out.append(code(text))
        elif kind == "note":
            out.append(r"{\small " + escape(text) + "}")
        else:
            out.append(escape(text))
    return "".join(out)


def _heading(block: Heading) -> str:
    if block.level == 1:
        return (r"\begin{center}" + "\n" + r"{\LARGE\bfseries " + _runs(block.runs) + r"\par}"
                + "\n" + r"\end{center}" + "\n")
    if block.level == 2:
        return r"\section*{" + _runs(block.runs) + "}\n"
    main = [r for r in block.runs if r[0] != "note"]
    notes = [r for r in block.runs if r[0] == "note"]
    note = "".join(r"\quad{\normalfont\small " + escape(t) + "}" for _, t in notes if t)
    return r"\subsection*{" + _runs(main) + note + "}\n"


def _display(block: Display) -> str:
    lines = []
    for lhs, rel, rhs in block.lines:
        lines.append(f"{lhs} &{rel} {rhs}")
    return r"\begin{align*}" + "\n" + " \\\\\n".join(lines) + "\n" + r"\end{align*}" + "\n"


def _cm(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


def _label(text: str, limit: int = 14) -> str:
    if len(text) > limit:
        return code(text[: limit - 2], breakable=False) + r"\ldots"
    return code(text, breakable=False)


def _heatmap(block: Heatmap, width_cm: float) -> str:
    n, m = len(block.rows), len(block.cols)
    longest_row = min(max((len(r) for r in block.rows), default=1), 14)
    longest_col = min(max((len(c) for c in block.cols), default=1), 14)
    label_cm = 0.2 * longest_row + 0.3
    cell = max(min(1.3, (width_cm - label_cm - 0.2 * longest_col) / max(m, 1)), 0.25)
    font = r"\small" if cell >= 1.0 else r"\scriptsize" if cell >= 0.75 else r"\tiny"
    show_values = cell >= 0.55
    rotate = longest_col > max(2, int(cell / 0.2))
    out = [r"\begin{center}", rf"\begin{{tikzpicture}}[x={_cm(cell)}cm, y=-{_cm(cell)}cm, "
           rf"font={font}]"]
    for i, (texts, shades) in enumerate(zip(block.cells, block.shades, strict=True)):
        for j, (text, shade) in enumerate(zip(texts, shades, strict=True)):
            fill = "black!6" if text == "0" else f"blue!{shade}!white"
            out.append(rf"\fill[{fill}] ({j},{i}) rectangle ++(1,1);")
            if show_values:
                colour = "white" if shade >= 55 else "black!60" if text == "0" else "black"
                out.append(rf"\node[text={colour}] at ({j}.5,{i}.5) {{{text}}};")
    for i in range(n + 1):
        out.append(rf"\draw[white, line width=0.8pt] (0,{i}) -- ({m},{i});")
    for j in range(m + 1):
        out.append(rf"\draw[white, line width=0.8pt] ({j},0) -- ({j},{n});")
    if block.highlight is not None:
        h = block.highlight
        out.append(rf"\draw[orange!90!black, line width=1.6pt] (0,{h}) rectangle ({m},{h + 1});")
    for i, label in enumerate(block.rows):
        out.append(rf"\node[anchor=east] at (-0.08,{i}.5) {{{_label(label)}}};")
    for j, label in enumerate(block.cols):
        if rotate:
            out.append(rf"\node[anchor=west, rotate=90] at ({j}.5,-0.08) {{{_label(label)}}};")
        else:
            out.append(rf"\node[anchor=south] at ({j}.5,-0.05) {{{_label(label)}}};")
    out += [r"\end{tikzpicture}", r"\end{center}"]
    caption = _runs(block.caption) + " Darker is more."
    if block.highlight is not None:
        caption += " The framed row is the token followed here."
    return "\n".join(out) + "\n" + r"{\small " + caption + r"\par}" + "\n"


VERDICT_COLOURS = {"exact": "vgood", "rounded": "vgood", "truncated": "vwarn", "float": "vwarn",
                   "drift": "vwarn", "carried": "vbad", "wrong": "vbad"}


def _coloured(text: str, verdict: str | None) -> str:
    colour = VERDICT_COLOURS.get(verdict or "")
    return rf"\textcolor{{{colour}}}{{{text}}}" if colour else text


def _breakable(text: str) -> str:
    if len(text) <= 10:
        return escape(text)
    return r"\allowbreak{}".join(escape(ch) for ch in text)


def _claim_row(row: ClaimRow) -> str:
    label = _runs(row.label)
    if row.note:
        label += r"\newline{\footnotesize " + escape(row.note) + "}"
    printed = ", ".join(_coloured(_breakable(t), v) for t, v in row.printed)
    exact = ", ".join(f"${x}$" for x in row.exact)
    if row.exact_note:
        exact += rf" \newline (${row.exact_note}$)"
    correct = "".join(f"${t}$" if k == "math" else _breakable(t) if t != ", " else t
                      for k, t in row.correct)
    verdict = _coloured(r"\textbf{" + escape(row.verdict) + "}", row.verdict) \
        if row.verdict else "---"
    cells = [label, printed, exact, correct, verdict]
    return " & ".join(r"\raggedright " + c for c in cells) + r" \tabularnewline"


def _claims(block: ClaimsTable) -> str:
    head = (r"\begin{center}\small" + "\n" + r"\setlength{\tabcolsep}{4pt}" + "\n"
            r"\begin{tabular}{@{}p{0.24\linewidth}p{0.17\linewidth}p{0.21\linewidth}"
            r"p{0.16\linewidth}p{0.11\linewidth}@{}}" + "\n" + r"\toprule" + "\n"
            r"\raggedright Claim & \raggedright Printed & \raggedright Exact & "
            r"\raggedright Correct rounding & \raggedright Verdict \tabularnewline" + "\n"
            + r"\midrule" + "\n")
    tail = r"\bottomrule" + "\n" + r"\end{tabular}" + "\n" + r"\end{center}" + "\n"
    chunks: list[list[ClaimRow]] = [[]]
    lines = 0
    for row in block.rows:
        tall = _claim_lines(row)
        if chunks[-1] and lines + tall > CLAIMS_LINES_PER_TABLE:
            chunks.append([])
            lines = 0
        chunks[-1].append(row)
        lines += tall
    return "".join(head + "\n".join(_claim_row(r) for r in rows) + "\n" + tail
                   for rows in chunks)


CLAIMS_LINES_PER_TABLE = 36
"""A table is one unbreakable box: keep each well under a page (about 50 small lines)."""


def _claim_lines(row: ClaimRow) -> int:
    """A generous estimate of the lines a claim's table row takes."""
    label = 1 + (len(row.note) // 22 + 1 if row.note else 0) + len("".join(
        t for _, t in row.label)) // 24
    printed = sum(len(t) + 2 for t, _ in row.printed) // 14 + 1
    exact = len(row.exact) + (2 if row.exact_note else 0)
    correct = sum(len(t) for _, t in row.correct) // 14 + 1
    return max(label, printed, exact, correct)


def write_blocks(blocks: Sequence[Block], *, heatmap_width_cm: float) -> str:
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(_heading(block))
        elif isinstance(block, Para):
            out.append(_runs(block.runs) + "\n")
        elif isinstance(block, Items):
            items = "\n".join(r"\item[$\bullet$] " + _runs(item) for item in block.items)
            # \sloppy: a source's URL may leave no good break point in a line.
            out.append(r"{\sloppy" + "\n" + r"\begin{itemize}" + "\n" + items + "\n"
                       + r"\end{itemize}" + "\n" + r"\par}" + "\n")
        elif isinstance(block, Display):
            out.append(_display(block))
        elif isinstance(block, Heatmap):
            out.append(_heatmap(block, heatmap_width_cm))
        elif isinstance(block, ClaimsTable):
            out.append(_claims(block))
        elif isinstance(block, Table):
            out.append(_table(block))
    return "\n".join(out)


def _table(block: Table) -> str:
    """A small booktabs table: labels on the left, values in the other columns."""
    def cell(runs: Sequence[Run]) -> str:
        return "".join(f"${t}$" if k == "math" else code(t, breakable=False) if k == "code"
                       else escape(t) for k, t in runs)

    spec = "@{}l" + "l" * (len(block.header) - 1) + "@{}"
    lines = [" & ".join(cell(c) for c in block.header) + r" \\", r"\midrule"]
    lines += [" & ".join(cell(c) for c in row) + r" \\" for row in block.rows]
    return (r"\begin{center}\small" + "\n" + r"\setlength{\tabcolsep}{6pt}" + "\n"
            + r"\begin{tabular}{" + spec + "}\n" + r"\toprule" + "\n" + "\n".join(lines)
            + "\n" + r"\bottomrule" + "\n" + r"\end{tabular}" + "\n" + r"\end{center}" + "\n")


def preamble(max_cols: int) -> str:
    margin = (8.5 - TEXT_WIDTH_IN) / 2 - 1
    lines = [
        r"\documentclass[11pt]{article}",
        *(rf"\usepackage{{{p}}}" for p in PACKAGES),
        rf"\setlength{{\textwidth}}{{{TEXT_WIDTH_IN}in}}",
        rf"\setlength{{\oddsidemargin}}{{{margin:.2f}in}}",
        rf"\setlength{{\evensidemargin}}{{{margin:.2f}in}}",
        r"\setlength{\textheight}{9in}",
        r"\setlength{\topmargin}{-0.5in}",
        r"\setlength{\parindent}{0pt}",
        r"\setlength{\parskip}{0.6ex plus 0.3ex}",
        r"\setlength{\emergencystretch}{2em}",
        r"\allowdisplaybreaks",
        r"\makeatletter",
        r"\renewcommand\subsection{\@startsection{subsection}{2}{\z@}{-2.2ex\@plus -1ex"
        r"\@minus -.2ex}{0.6ex \@plus .2ex}{\normalfont\normalsize\bfseries}}",
        r"\makeatother",
        _body_setup(max_cols),
    ]
    return "\n".join(lines) + "\n"


def _body_setup(max_cols: int) -> str:
    return "\n".join([
        rf"\setcounter{{MaxMatrixCols}}{{{max(max_cols + 2, 10)}}}",
        r"\definecolor{vgood}{rgb}{0.05,0.45,0.1}",
        r"\definecolor{vwarn}{rgb}{0.75,0.4,0}",
        r"\definecolor{vbad}{rgb}{0.75,0.05,0.05}",
    ])


def render_latex(
    trace: Trace, *, token: int | None = None, digits: int = 4, fragment: bool = False,
    max_cols: int = 10, max_rows: int = 12, report: Any = None, source_name: str = "",
) -> str:
    """The worked example as a complete LaTeX document (or, with ``fragment``, its body
    for ``\\input`` into a book that loads amsmath, booktabs, xcolor and tikz)."""
    opts = Options(token=token, digits=digits, max_cols=max_cols, max_rows=max_rows,
                   budget=FRAGMENT_BUDGET if fragment else DOCUMENT_BUDGET,
                   strut=r"\rule[-1.1em]{0pt}{2.6em}")
    blocks = build(trace, LatexTarget(), opts, report=report, source_name=source_name)
    body = write_blocks(blocks, heatmap_width_cm=11.0 if fragment else 15.0)
    stamp = ("% Generated by exacttransformer: a worked example that compiles with pdflatex.\n"
             "% Regenerate it rather than edit it.\n")
    if fragment:
        needs = ", ".join(PACKAGES)
        return (stamp + f"% A fragment for \\input: the including document loads {needs}.\n"
                + _body_setup(max_cols) + "\n" + body)
    return (stamp + preamble(max_cols) + r"\begin{document}" + "\n" + body
            + r"\end{document}" + "\n")
