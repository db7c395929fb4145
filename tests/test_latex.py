"""The LaTeX worked examples: readable exact forms, escaping, layout, and that every
document compiles with pdflatex (no error, no overfull box over 10 pt, a non-blank page 1).

The compile tests skip cleanly when pdflatex/pdftoppm/pdftotext are not installed; CI
installs texlive-latex-base, -latex-recommended, -pictures and poppler-utils.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st
from strategies import budget, models

import exacttransformer as et
from exacttransformer.check import check
from exacttransformer.cli import main
from exacttransformer.graph.forward import forward
from exacttransformer.render.document import Options
from exacttransformer.render.forms import T, size, softmax_form, tex, width
from exacttransformer.render.latex import escape, render_latex
from exacttransformer.render.mathdoc import build, inline

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted((ROOT / "worked_examples").glob("*.toml"))
TOOLS = all(shutil.which(t) for t in ("pdflatex", "pdftoppm", "pdftotext"))
needs_tex = pytest.mark.skipif(not TOOLS, reason="pdflatex/poppler not installed (CI has them)")
TRICKY = ["$100", "50%", "a_b", "#1", "&", r"\input{/etc/passwd}", "{", "~", "^"]
OVERFULL = re.compile(r"^Overfull \\[hv]box \((\d+(?:\.\d+)?)pt too (?:wide|high)", re.M)


# --- compiling ---------------------------------------------------------------------------


def compile_tex(text: str, folder: Path, name: str = "doc") -> Path:
    """pdflatex the text; fail on any error or an overfull box over 10 pt."""
    tex_path = folder / f"{name}.tex"
    tex_path.write_text(text, encoding="utf-8")
    run = subprocess.run(
        ["pdflatex", "-halt-on-error", "-interaction=nonstopmode", "-no-shell-escape",
         tex_path.name], cwd=folder, capture_output=True, timeout=300, check=False)
    log = (folder / f"{name}.log").read_text(encoding="latin-1")
    errors = [ln for ln in log.splitlines() if ln.startswith("!")]
    assert run.returncode == 0 and not errors, f"{name}: LaTeX error {errors[:3]}"
    too_wide = [float(pt) for pt in OVERFULL.findall(log) if float(pt) > 10]
    assert not too_wide, f"{name}: overfull boxes of {too_wide} pt"
    return folder / f"{name}.pdf"


def pdf_text(pdf: Path) -> str:
    """The PDF's text (accents composed: pdftotext gives e + a combining accent)."""
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True,
                         check=True)
    return unicodedata.normalize("NFC", out.stdout.decode("utf-8"))


def ink(pdf: Path, folder: Path) -> float:
    """The share of page 1's pixels that are not white (pdftoppm, greyscale PGM)."""
    stem = folder / "page"
    subprocess.run(["pdftoppm", "-r", "50", "-gray", "-f", "1", "-l", "1", "-singlefile",
                    str(pdf), str(stem)], check=True, capture_output=True)
    data = (folder / "page.pgm").read_bytes()
    header = data.split(maxsplit=4)  # P5, width, height, maxval, pixels
    assert header[0] == b"P5"
    pixels = header[4]
    return sum(1 for p in pixels if p < 200) / len(pixels)


def latex_of(path: str | Path, **kw: object) -> str:
    walk = et.load(path)
    report = check(walk) if walk.claims else None
    return render_latex(walk.forward(), report=report, source_name=Path(walk.path).name,
                        **kw)  # type: ignore[arg-type]


# --- readable exact forms ------------------------------------------------------------------


def test_cat_weights_read_t_over_t_plus_2() -> None:
    trace = et.load("cat").forward()
    form = softmax_form([trace.value("exp_scores", 0, 0)[1]])
    assert form is not None and form.base == sympy.sqrt(2) / 2
    t = sympy.exp(form.base)
    assert form.entries[0] == (T / (T + 2), 1 / (T + 2), 1 / (T + 2))
    for entry, weight in zip(form.entries[0], trace.value("weights", 0, 0)[1], strict=True):
        assert sympy.simplify(entry.subs(T, t) - weight) == 0  # exactly the trace's value


def test_softmax_form_whole_matrix_uses_one_t() -> None:
    exps = et.load("cat").forward().value("exp_scores", 0, 0)
    form = softmax_form(exps)
    assert form is not None and form.base == sympy.sqrt(2) / 2
    assert form.entries[0] == (T**4 / (T**4 + T**2 + 1), T**2 / (T**4 + T**2 + 1),
                               1 / (T**4 + T**2 + 1))


@pytest.mark.parametrize("row", [
    [sympy.exp(sympy.sqrt(2)), sympy.exp(sympy.sqrt(3)), sympy.Integer(1)],  # incommensurable
    [sympy.Rational(1, 2), sympy.Integer(1)],                               # not exponentials
    [sympy.exp(30), sympy.E, sympy.Integer(1)],                              # t^30: not readable
])
def test_softmax_form_declines(row: list[sympy.Expr]) -> None:
    assert softmax_form([row]) is None


def test_softmax_form_masked_entries_stay_zero() -> None:
    e = sympy.E
    form = softmax_form([[e, sympy.Integer(0), sympy.Integer(0)], [e**2, e, sympy.Integer(1)]])
    assert form is not None and form.base == 1
    assert form.entries[0] == (1, 0, 0)
    assert form.entries[1][0] == T**2 / (T**2 + T + 1)


def test_printer_divides_by_square_roots_and_folds_exponents() -> None:
    r2 = sympy.sqrt(2)
    assert tex(3 * r2 / 2) == r"\frac{3}{\sqrt{2}}"
    assert tex(sympy.exp(3 * r2 / 2)) == r"e^{3/\sqrt{2}}"
    assert tex(r2 / 3) == r"\frac{\sqrt{2}}{3}"  # 3 is not the radicand: left alone
    assert tex(-r2 / 4) == r"- \frac{1}{2 \sqrt{2}}"


def test_size_counts_symbols() -> None:
    assert size(sympy.Integer(7)) == 1
    assert size(sympy.exp(3 * sympy.sqrt(2) / 2)) == 6
    assert size(sympy.Add(*[sympy.exp(sympy.sqrt(p)) for p in range(2, 40)]), cap=61) == 61


def test_width_estimate_orders_sensibly() -> None:
    assert width("1") < width("12") < width(r"\frac{123}{4} + 5")
    assert width(r"\frac{1}{2}", "display") > width(r"\frac{1}{2}", "text")


def test_inline_forms_for_tables() -> None:
    assert inline(sympy.Rational(29, 50)) == "29/50"
    assert inline(T**2 / (T**2 + 2)) == "t^{2}/(t^{2} + 2)"
    assert inline(sympy.exp(sympy.sqrt(2)) / 3) is None or "frac" not in str(
        inline(sympy.exp(sympy.sqrt(2)) / 3))


def test_long_closed_forms_are_omitted_with_their_size() -> None:
    trace = et.load("cat").forward()

    class Plain:
        def token(self, index: int, text: str) -> str:
            return rf"\text{{{text}}}"

        def words(self, text: str) -> str:
            return rf"\text{{{text}}}"

    blocks = build(trace, Plain(), Options(token=1, size_limit=5))
    notes = [r[1] for b in blocks if type(b).__name__ == "Para" for r in b.runs]  # type: ignore
    assert any("closed forms are omitted" in n and "6 symbols" in n for n in notes)


# --- what the documents say ------------------------------------------------------------------


def test_cat_token_mode_follows_cat() -> None:
    text = latex_of(ROOT / "worked_examples" / "cat.toml", token=1)
    assert r"q_{\text{cat}} &= \tilde{x}_{\text{cat}} \, W_Q" in text
    assert r"\frac{t}{t + 2}" in text and r"t = e^{1/\sqrt{2}} \approx 2.028" in text
    assert r"\approx \begin{bmatrix} 0.5035 & 0.2483 & 0.2483 \end{bmatrix}" in text
    assert r"x^{\mathrm{out}}_{\text{cat}} &= \begin{bmatrix} 7 & 10 & 5 & 6 \end{bmatrix}" in text
    assert text.count(r"\begin{tikzpicture}") == 1  # one heatmap: one layer, one head
    assert "At a glance" in text


def test_cat_full_mode_shows_whole_matrices() -> None:
    text = latex_of(ROOT / "worked_examples" / "cat.toml")
    assert r"Q &= \tilde{X} \, W_Q" in text
    assert r"\frac{t^{4}}{t^{4} + t^{2} + 1}" in text
    assert "At a glance" not in text


def test_claims_table_has_verdicts_and_correct_rounding() -> None:
    text = latex_of(ROOT / "worked_examples" / "cat.toml", token=1)
    assert "What the source claims" in text and r"\toprule" in text
    assert r"\textcolor{vwarn}{\textbf{drift}}" in text
    assert r"\textcolor{vwarn}{8.33}" in text and "8.34, 4.11, 4.11" in text
    assert r"$t/(t + 2)$, $1/(t + 2)$, $1/(t + 2)$" in text


def test_output_is_deterministic() -> None:
    path = ROOT / "worked_examples" / "cat.toml"
    assert latex_of(path, token=1) == latex_of(path, token=1)
    script = ("import sys, exacttransformer.cli as c; sys.exit(c.main(['latex', 'cat', '-o', "
              "'-', '--token', 'cat']))")
    outs = {subprocess.run(["python", "-c", script], capture_output=True, check=True,
                           env={**_env(), "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2")}
    assert len(outs) == 1


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_committed_cat_tex_is_current() -> None:
    walk = et.load(ROOT / "worked_examples" / "cat.toml")
    text = render_latex(walk.forward(), token=1, report=check(walk), source_name="cat.toml")
    committed = (ROOT / "worked_examples" / "cat.tex").read_text(encoding="utf-8")
    assert committed == text, ("regenerate: exacttransformer latex worked_examples/cat.toml "
                               "--token cat -o worked_examples/cat.tex --force")


def test_committed_journey_storm_tex_is_current() -> None:
    walk = et.load(ROOT / "worked_examples" / "journey_storm.toml")
    trace = walk.forward()
    text = render_latex(trace, token=trace.token_index("is"), source_name="journey_storm.toml")
    committed = (ROOT / "worked_examples" / "journey_storm.tex").read_text(encoding="utf-8")
    assert committed == text, ("regenerate: exacttransformer latex worked_examples/journey_storm"
                               ".toml --token is -o worked_examples/journey_storm.tex --force")


def test_journey_vocabulary_rows_are_tables_labelled_by_word() -> None:
    text = latex_of(ROOT / "worked_examples" / "journey_decoding.toml")
    probs = text.split(r"\subsection*{5. Probabilities of the next token")[1].split(
        r"\subsection*")[0]
    assert r"\begin{tabular}" in probs and r"\begin{bmatrix}" in probs  # operand; result table
    for word, decimal in (("coming", "0.3801"), ("banana", "0.0006476")):
        row = next(ln for ln in probs.splitlines() if ln.startswith(rf"\texttt{{{word}}} &"))
        assert row.endswith(f"${decimal}$ \\\\")
    ranked = text.split("Probabilities, largest first")[1].split(r"\subsection*")[0]
    assert r"\texttt{1.\ coming}" in ranked and r"\texttt{7.\ banana}" in ranked
    bpe = latex_of(ROOT / "worked_examples" / "journey_bpe.toml")
    assert r"\texttt{n\ g}" in bpe  # BPE counts under their pairs
    chain = bpe.split(r"\mathrm{pieces}_{0} &=")[1].split(r"\end{align*}")[0]
    assert chain.count(r"&\to") == 6  # learning: one merge per line


def test_wide_rows_are_elided_and_the_limit_is_settable() -> None:
    toml = _wide_toml(14)
    walk = et.loads(toml, "wide.toml")
    default = render_latex(walk.forward())
    wide = render_latex(walk.forward(), max_cols=14)
    assert r"\cdots" in default and r"\setcounter{MaxMatrixCols}{12}" in default
    assert r"\setcounter{MaxMatrixCols}{16}" in wide
    row = re.search(r"X &= (.*)", wide)
    assert row is not None and r"\cdots" not in row.group(1)


def _wide_toml(d: int) -> str:
    row = ", ".join(str(j % 3) for j in range(d))
    eye = "[" + ", ".join("[" + ", ".join("1" if i == j else "0" for j in range(d)) + "]"
                          for i in range(d)) + "]"
    return (f'title = "wide"\n[input]\ntokens = ["a", "b"]\nX = [[{row}], [{row}]]\n'
            f"[weights]\nW_Q = {eye}\nW_K = {eye}\nW_V = {eye}\nW_O = {eye}\n"
            f"W1 = {eye}\nW2 = {eye}\n")


# --- escaping ---------------------------------------------------------------------------------

_ALLOWED_COMMANDS = re.compile(
    r"\\(?:ttfamily|char\d+|allowbreak|ensuremath|[%&#]|[`'^\"~=.uvHcr]|[ij]\b|ss|ae|AE|o|O|"
    r"oe|OE|l|L|fontshape|selectfont|approx|times|cdot|to|leftarrow|leq|geq|neq|infty|surd|"
    r"sum|in|pm|div|circ|odot|mathsf|tfrac|partial|nabla|ldots|cdots|ell|lfloor|rfloor|"
    r"hookrightarrow|bullet|S|P|[a-zA-Z]+(?=\}))"
)


@given(st.text(max_size=40))
def test_escape_leaves_no_active_character(text: str) -> None:
    out = escape(text)
    # Math symbols come from a fixed table (never from the text): leave them out.
    out = re.sub(r"\\ensuremath\{(?:[^{}]|\{[^{}]*\})*\}", "", out)
    stripped = _ALLOWED_COMMANDS.sub("", out)
    assert "\\" not in stripped.replace(r"\ ", "")
    for ch in "$&#^_%~":
        # an active character may only follow a backslash (\%, \&, \#, accents \^ \~)
        assert not re.search(rf"(?<!\\){re.escape(ch)}", out), (text, out)
    depth = 0
    for ch in re.sub(r"\\[{}]", "", out):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0


@needs_tex
def test_tricky_tokens_print_literally(tmp_path: Path) -> None:
    toml = (
        'title = "Tricky $100 & 50% a_b #1 {~^} \\\\input{/etc/passwd} café ≈ 😀"\n'
        'source = "source with \\\\section{x}, -- dashes and https://example.org/a_b?c=1&d=2"\n'
        "[input]\ntokens = [" + ", ".join('"' + t.replace("\\", "\\\\") + '"' for t in TRICKY)
        + "]\nX = [" + ", ".join(f"[{i % 3}, {(i + 1) % 2}]" for i in range(len(TRICKY)))
        + "]\n[weights]\nW_Q = [[1, 0], [0, 1]]\nW_K = [[1, 0], [0, 1]]\n"
        "W_V = [[1, 0], [0, 1]]\nW_O = [[1, 0], [0, 1]]\nW1 = [[1, 0], [0, 1]]\n"
        "W2 = [[1, 0], [0, 1]]\n[[claims]]\nname = \"q\"\ntoken = \"\\\\input{/etc/passwd}\"\n"
        'value = ["1", "1"]\nnote = "a note with & and % and \\\\end{document}"\n'
    )
    walk = et.loads(toml, "tricky.toml")
    trace = walk.forward()
    assert trace.tokens == tuple(TRICKY)
    for token in (None, 5):
        text = render_latex(trace, token=token, report=check(walk), source_name="tricky.toml")
        assert r"\input{" not in text and r"\end{document}" == text.strip().splitlines()[-1]
        pdf = compile_tex(text, tmp_path, f"tricky{token}")
        shown = re.sub(r"\s+", "", pdf_text(pdf))
        for t in TRICKY:
            assert t in shown, t
        for literal in ("Tricky$100&50%a_b#1{~^}\\input{/etc/passwd}", "café",
                        "\\section{x}", "https://example.org/a_b?c=1&d=2",
                        "anotewith&and%and\\end{document}"):
            assert literal in shown, literal
        assert "root:" not in shown  # nothing was read from /etc/passwd


@needs_tex
def test_every_printable_ascii_character_compiles(tmp_path: Path) -> None:
    ascii_text = "".join(chr(c) for c in range(32, 127))
    toml = ('title = """' + ascii_text.replace("\\", "\\\\").replace('"', '\\"') + '"""\n'
            '[input]\ntokens = ["' + ascii_text.replace("\\", "\\\\").replace('"', '\\"')
            + '"]\nX = [[1, 2]]\n[weights]\nW1 = [[1, 0], [0, 1]]\nW2 = [[1], [1]]\n')
    walk = et.loads(toml, "ascii.toml")
    pdf = compile_tex(render_latex(walk.forward(), token=0), tmp_path)
    shown = pdf_text(pdf)
    assert ascii_text.replace(" ", "").replace("'", "").replace("`", "")[:30] in \
        shown.replace(" ", "").replace("'", "").replace("`", "").replace("’", "")


# --- compiling every worked example ----------------------------------------------------------


@needs_tex
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_worked_example_compiles(path: Path, tmp_path: Path) -> None:
    walk = et.load(path)
    report = check(walk) if walk.claims else None
    trace = walk.forward()
    for token in (None, 0):
        text = render_latex(trace, token=token, report=report, source_name=path.name)
        pdf = compile_tex(text, tmp_path, f"{path.stem}-{token}")
        assert ink(pdf, tmp_path) > 0.01


@needs_tex
def test_committed_cat_tex_compiles_and_page_one_is_not_blank(tmp_path: Path) -> None:
    text = (ROOT / "worked_examples" / "cat.tex").read_text(encoding="utf-8")
    pdf = compile_tex(text, tmp_path, "cat")
    assert 0.01 < ink(pdf, tmp_path) < 0.5
    shown = pdf_text(pdf)
    assert "At a glance" in shown and "drift" in shown


@needs_tex
def test_fragment_compiles_inside_a_book(tmp_path: Path) -> None:
    fragment = latex_of(ROOT / "worked_examples" / "cat.toml", token=1, fragment=True)
    assert r"\documentclass" not in fragment and r"\begin{document}" not in fragment
    (tmp_path / "cat-body.tex").write_text(fragment, encoding="utf-8")
    book = ("\\documentclass{book}\n\\usepackage{amsmath}\n\\usepackage{booktabs}\n"
            "\\usepackage{xcolor}\n\\usepackage{tikz}\n\\begin{document}\n"
            "\\chapter{Attention}\n\\input{cat-body}\n\\end{document}\n")
    compile_tex(book, tmp_path, "book")


@needs_tex
def test_wide_matrices_compile(tmp_path: Path) -> None:
    walk = et.loads(_wide_toml(14), "wide.toml")
    for cols in (10, 14):
        compile_tex(render_latex(walk.forward(), max_cols=cols), tmp_path, f"wide{cols}")


@needs_tex
@budget(4)
@given(models())
def test_random_models_compile(tmp_path_factory: pytest.TempPathFactory, model: object) -> None:
    trace = forward(*model.args)  # type: ignore[attr-defined]
    folder = tmp_path_factory.mktemp("random")
    compile_tex(render_latex(trace, token=0 if trace.tokens else None), folder)


# --- the command line ------------------------------------------------------------------------


def test_cli_writes_refuses_overwrite_and_forces(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cat.tex"
    assert main(["latex", "cat", "-o", str(out), "--token", "cat"]) == 0
    first = out.read_bytes()
    assert first.startswith(b"% Generated by exacttransformer")
    assert main(["latex", "cat", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == first
    assert main(["latex", "cat", "-o", str(out), "--token", "cat", "--force"]) == 0
    assert out.read_bytes() == first  # byte-identical for the same input


def test_cli_bad_token_and_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.tex"
    assert main(["latex", "cat", "-o", str(out), "--token", "dog"]) == 2
    assert "dog" in capsys.readouterr().err and not out.exists()
    assert main(["latex", "cat", "-o", str(out), "--max-cols", "2"]) == 2
    assert main(["latex", "cat", "-o", str(out), "--pdf", "--fragment"]) == 2
    assert not out.exists()


def test_cli_pdf_without_pdflatex(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "pdflatex"
                        else real(name, *a, **k))
    out = tmp_path / "cat.tex"
    assert main(["latex", "cat", "-o", str(out), "--pdf"]) == 2
    err = capsys.readouterr().err
    assert "pdflatex" in err and "not installed" in err and "Traceback" not in err
    assert not out.exists()


@needs_tex
def test_cli_pdf(tmp_path: Path) -> None:
    out = tmp_path / "cat.tex"
    assert main(["latex", "cat", "-o", str(out), "--pdf", "--token", "cat"]) == 0
    assert (tmp_path / "cat.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.pdf", "cat.tex"]  # no aux files
