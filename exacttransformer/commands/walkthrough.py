"""``exacttransformer walkthrough FILE|cat``: every step, exact and rounded (SPEC §5)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import add_engine, digits, token_index


def add_parser(sub: Any) -> None:
    p = sub.add_parser("walkthrough", help="every step of the forward pass, exact and rounded")
    p.add_argument("file", help="a walkthrough TOML file, or 'cat' for the built-in example")
    p.add_argument("--token", help="follow one token (its text, or a 0-based index)")
    p.add_argument("--digits", type=digits, default=6,
                   help="significant digits of the decimals (default 6)")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    add_engine(p)


def run(args: argparse.Namespace) -> int:
    from ..io.files import load
    from ..io.output import write_text

    trace = load(args.file).forward()
    token = token_index(trace.tokens, args.token)
    # Only the renderer asked for is imported (the Markdown one brings the LaTeX forms).
    if args.format == "json":
        from ..render.jsonout import render_json

        text = render_json(trace, digits=args.digits, token=token)
    elif args.format == "markdown":
        from ..render.markdown import render_markdown

        text = render_markdown(trace, token=token, digits=args.digits)
    else:
        from ..render.text import render_text

        text = render_text(trace, token=token, digits=args.digits)
    if args.output:
        write_text(args.output, text, force=args.force)
    else:
        sys.stdout.write(text)
    return 0
