"""Markdown walkthroughs (KaTeX/MathJax math) and the notebook display of a trace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import exacttransformer as et
from exacttransformer.check import check
from exacttransformer.cli import main
from exacttransformer.render.markdown import MarkdownTarget, md_code, md_escape, md_prose, render_markdown

ROOT = Path(__file__).parent.parent
TRICKY = ["$100", "50%", "a_b", "#1", "&", r"\input{/etc/passwd}", "{", "~", "^", "a`b"]


def math_blocks(text: str) -> list[str]:
    """Display and inline math, code spans aside (CommonMark: code wins over ``$``)."""
    display = re.findall(r"\$\$(.*?)\$\$", text, re.S)
    rest = re.sub(r"\$\$.*?\$\$", "", text, flags=re.S)
    rest = re.sub(r"(`+) .*? \1|(`+)[^`]*?\2", "", rest)
    inline = re.findall(r"(?<![$\\])\$([^$\n]+?)\$", rest)
    return display + inline


def test_cat_markdown_shares_the_latex_layout() -> None:
    text = render_markdown(et.load("cat").forward(), token=1, digits=4)
    assert text.startswith("# Following \"cat\" through one transformer block\n")
    assert "$$\n\\begin{aligned}\n" in text
    assert r"\frac{t}{t + 2}" in text and r"t = e^{1/\sqrt{2}} \approx 2.028" in text
    assert r"q_{\text{cat}} &= \tilde{x}_{\text{cat}} \, W_Q" in text
    assert "| `cat` | **0.50** | **0.25** | **0.25** |" in text  # the heatmap as a table
    assert text.count("$$") % 2 == 0
    assert r"\rule" not in text  # LaTeX-only struts stay out of KaTeX


def test_claims_table_in_markdown() -> None:
    walk = et.load(ROOT / "worked_examples" / "cat.toml")
    text = render_markdown(walk.forward(), report=check(walk))
    assert "## What the source claims" in text
    assert "| `exp_scores` of `cat` — section 5: e^2.12 ≈ 8.33, e^1.41 ≈ 4.10 | `8.33`" in text
    assert "**drift**" in text


def test_walkthrough_markdown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["walkthrough", "cat", "--format", "markdown", "--token", "cat"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Following") and "0.503490" in out  # walkthrough's 6 digits


def test_user_text_never_enters_math() -> None:
    toml = ('title = "t"\n[input]\ntokens = ['
            + ", ".join('"' + t.replace("\\", "\\\\") + '"' for t in TRICKY)
            + "]\nX = [" + ", ".join("[1, 0]" if i % 2 else "[0, 1]" for i in range(len(TRICKY)))
            + "]\n[weights]\nW_Q = [[1, 0], [0, 1]]\nW_K = [[1, 0], [0, 1]]\n"
            "W_V = [[1, 0], [0, 1]]\nW_O = [[1, 0], [0, 1]]\nW1 = [[1, 0], [0, 1]]\n"
            "W2 = [[1, 0], [0, 1]]\n")
    trace = et.loads(toml, "t.toml").forward()
    for token in (None, 5):
        text = render_markdown(trace, token=token)
        for block in math_blocks(text):
            for words in re.findall(r"\\text\{([^{}]*)\}", block):
                assert re.fullmatch(r"[A-Za-z0-9 .,:;=+*/()\[\]?-]*|[A-Za-z0-9 ]*\\_[a-z_\\]*",
                                    words), words
            for t in ("$100", "50%", r"\input", "a`b", "a_b"):
                assert t not in block, (t, block[:80])
        assert r"\#5" in text  # the token \input{...} is named by its row in formulas
        assert md_code(r"\input{/etc/passwd}") in text  # and shown literally as code


def test_markdown_target() -> None:
    target = MarkdownTarget()
    assert target.token(1, "cat") == r"\text{cat}"
    assert target.token(3, "$100") == r"\#3"
    assert target.words("q kᵀ") == r"\text{q kT}"
    assert target.words("a_b {x}") == r"\text{a\_b ?x?}"


def test_escaping_helpers() -> None:
    assert md_code("a`b") == "`` a`b ``"
    assert md_code("|") == "`\u2223`"  # a pipe would end a table cell
    assert md_prose("- item", line_start=True) == r"\- item"
    assert md_prose("a - b") == "a - b"
    assert md_escape("a|b") == r"a\|b"


@given(st.text(max_size=30))
def test_md_code_round_trips_text(text: str) -> None:
    code = md_code(text)
    if not text:
        assert code == "*(empty)*"
        return
    fence = re.match(r"`+", code)
    assert fence is not None
    inner = code[len(fence.group()):-len(fence.group())]
    if inner.startswith(" ") and inner.endswith(" ") and inner.strip():
        inner = inner[1:-1]
    assert "`" * len(fence.group()) not in inner


def test_jupyter_display() -> None:
    trace = et.load("cat").forward()
    md = trace._repr_markdown_()
    latex = trace._repr_latex_()
    assert md.startswith("# Following")
    assert latex.startswith("$$\\begin{aligned}") and latex.endswith("\\end{aligned}$$")
    assert r"\textbf{12. Attention weights}" in latex
    assert r"\frac{t^{4}}{t^{4} + t^{2} + 1}" in latex
    assert "$" not in latex[2:-2]


def test_float_traces_show_correctly_rounded_floats() -> None:
    from exacttransformer.exact.backends import FLOAT

    trace = et.load("cat").forward(FLOAT)
    md = trace._repr_markdown_()
    assert "Computed in float64 arithmetic" in md
    assert r"0.5035 & 0.2483 & 0.2483 \\" in md
    assert "0.50349" + "0" * 5 not in md  # never a float's repr
