"""``exacttransformer audit FILE|cat``: how many digits each float format gets right.

Every node of the forward pass is computed again in float64, float32, bfloat16 and float16
(:mod:`exacttransformer.floatpass`) and measured against its exact value
(:mod:`exacttransformer.audit`): a text table, JSON, a LaTeX document with a pgfplots figure,
or a PNG of the figure when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import add_engine


def _dtypes(text: str) -> list[str]:
    from ..exact.floatformats import FORMATS

    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        if name not in FORMATS:
            raise argparse.ArgumentTypeError(
                f"unknown dtype {name!r}; expected {', '.join(FORMATS)}")
    return names


def add_parser(sub: Any) -> None:
    p = sub.add_parser("audit", help="correct digits of each node in float64/32, bfloat16, float16")
    p.add_argument("file", help="a walkthrough TOML file, or 'cat' for the built-in example")
    p.add_argument("--dtype", type=_dtypes, action="append",
                   help="formats to measure, e.g. float16 or float32,float16 (repeatable; "
                        "default: float64, float32, bfloat16, float16)")
    p.add_argument("--node", action="append", default=[],
                   help="report only this node name (repeatable; default: every node)")
    p.add_argument("--format", choices=("text", "json", "latex", "png"), default="text",
                   help="png needs matplotlib and -o")
    p.add_argument("--floats", choices=("auto", "torch", "python"), default="auto",
                   help="float arithmetic: torch's kernels, or Python floats rounded to the "
                        "format after every operation (default: torch when installed)")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    add_engine(p)


def run(args: argparse.Namespace) -> int:
    from ..audit import audit, render_json, render_latex, render_png, render_text
    from ..errors import InputError
    from ..exact.floatformats import FORMATS
    from ..graph.floatpass import have_torch
    from ..io.files import load
    from ..io.output import write_bytes, write_text

    if args.floats == "torch" and not have_torch():
        raise InputError("torch is not installed; use --floats python", key="--floats")
    if args.format == "png":
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise InputError("needs matplotlib, which is not installed; --format latex draws "
                             "the same figure with pgfplots", key="--format png") from None
        if not args.output:
            raise InputError("needs -o FILE.png", key="--format png")
    formats = tuple(dict.fromkeys(d for group in (args.dtype or [list(FORMATS)]) for d in group))
    walk = load(args.file)
    report = audit(walk.forward(), formats, args.node, args.floats)
    if args.format == "png":
        write_bytes(args.output, render_png(report), force=args.force)
        return 0
    render = {"json": render_json, "latex": render_latex}.get(args.format, render_text)
    text = render(report, args.file)
    if args.output:
        write_text(args.output, text, force=args.force)
    else:
        sys.stdout.write(text)
    return 0
