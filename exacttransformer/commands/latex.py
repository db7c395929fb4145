"""``exacttransformer latex FILE|cat -o OUT.tex``: a worked example that compiles (SPEC §5).

Every step as formula, numbers substituted, exact result and certified decimal; attention
heatmaps; and, when the file has ``[[claims]]``, an errata table with the checker's verdicts.
``--pdf`` also runs ``pdflatex`` (exit 2 with a clear message when it is not installed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

from .common import add_engine, digits, token_index

PDFLATEX_TIMEOUT = 300  # seconds


def _columns(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 3 <= n <= 64:
        raise argparse.ArgumentTypeError(f"must be between 3 and 64, got {n}")
    return n


def add_parser(sub: Any) -> None:
    p = sub.add_parser("latex", help="a LaTeX worked example that compiles with pdflatex")
    p.add_argument("file", help="a walkthrough TOML file, or 'cat' for the built-in example")
    p.add_argument("-o", "--output", required=True,
                   help="the .tex file to write ('-' for standard output)")
    p.add_argument("--pdf", action="store_true",
                   help="also run pdflatex and write the PDF next to the .tex file")
    p.add_argument("--token", help="follow one token (its text, or a 0-based index)")
    p.add_argument("--digits", type=digits, default=4,
                   help="significant digits of the decimals (default 4)")
    p.add_argument("--fragment", action="store_true",
                   help="write the body only, for \\input into a book that loads amsmath, "
                        "booktabs, xcolor and tikz")
    p.add_argument("--max-cols", type=_columns, default=10,
                   help="longest matrix row shown before eliding with \\cdots (default 10)")
    p.add_argument("--max-rows", type=_columns, default=12,
                   help="tallest matrix shown before eliding with \\vdots (default 12)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    add_engine(p)


def claim_report(walk: Any) -> Any:
    """The checker's verdicts for the claims table, or ``None`` (no claims, or claims the
    checker cannot use: then the document is written without the table, with a warning)."""
    if not walk.claims:
        return None
    from ..check import check
    from ..errors import ExactTransformerError

    try:
        return check(walk)
    except ExactTransformerError as exc:
        print(f"exacttransformer: warning: claims table omitted: {exc}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..io.files import load
    from ..io.output import write_bytes, write_text
    from ..render.latex import render_latex

    if args.pdf and args.fragment:
        raise InputError("a fragment cannot be compiled on its own; drop --fragment or --pdf",
                         key="--pdf")
    if args.pdf and args.output == "-":
        raise InputError("--pdf needs a file name for the .tex output", key="--pdf")
    pdf_path = os.path.splitext(args.output)[0] + ".pdf" if args.pdf else None
    if args.pdf:
        if shutil.which("pdflatex") is None:
            print("exacttransformer: error: --pdf needs pdflatex, which is not installed "
                  "(Debian/Ubuntu: apt-get install texlive-latex-base texlive-latex-recommended "
                  "texlive-pictures); the .tex file was not written", file=sys.stderr)
            return 2
        assert pdf_path is not None
        if os.path.exists(pdf_path) and not args.force:
            raise InputError("already exists; use --force to overwrite it", file=pdf_path)
    walk = load(args.file)
    report = claim_report(walk)
    # The checker has already run the exact forward pass: reuse its trace.
    trace = getattr(report, "trace", None) or walk.forward()
    token = token_index(trace.tokens, args.token)
    text = render_latex(
        trace, token=token, digits=args.digits, fragment=args.fragment,
        max_cols=args.max_cols, max_rows=args.max_rows, report=report,
        source_name=os.path.basename(walk.path) if walk.path else "",
    )
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    write_text(args.output, text, force=args.force)
    if pdf_path is None:
        return 0
    ok, data, log = compile_pdf(text)
    if not ok:
        print(f"exacttransformer: error: pdflatex failed on {args.output}:\n{log}",
              file=sys.stderr)
        return 1
    write_bytes(pdf_path, data, force=args.force)
    return 0


def compile_pdf(text: str) -> tuple[bool, bytes, str]:
    """Run pdflatex on a document in a scratch folder: ``(ok, pdf bytes, log excerpt)``."""
    with tempfile.TemporaryDirectory(prefix="exacttransformer-") as tmp:
        tex = os.path.join(tmp, "doc.tex")
        with open(tex, "w", encoding="utf-8") as fh:
            fh.write(text)
        cmd = ["pdflatex", "-halt-on-error", "-interaction=nonstopmode", "-no-shell-escape",
               "doc.tex"]
        try:
            subprocess.run(cmd, cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=PDFLATEX_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            return False, b"", f"timed out after {PDFLATEX_TIMEOUT} s"
        pdf = os.path.join(tmp, "doc.pdf")
        log_path = os.path.join(tmp, "doc.log")
        log = ""
        if os.path.exists(log_path):
            with open(log_path, encoding="latin-1") as fh:
                log = fh.read()
        if not os.path.exists(pdf) or "\n! " in log:
            lines = [ln for ln in log.splitlines() if ln.startswith("!")]
            return False, b"", "\n".join(lines[:5]) or "no PDF was produced"
        with open(pdf, "rb") as fh:
            return True, fh.read(), ""
