"""``exacttransformer check FILE``: judge a source's printed numbers (SPEC §4).

Exit status 0 when nothing is wrong or carried, 1 otherwise (with ``--strict`` also when
anything is truncated, float or drift), 2 when the file cannot be used.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import add_engine


def add_parser(sub: Any) -> None:
    p = sub.add_parser("check", help="check a source's printed numbers against the exact values")
    p.add_argument("file", help="a walkthrough TOML file with [[claims]], or 'cat'")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.add_argument("--strict", action="store_true",
                   help="also fail (exit 1) on truncated, float and drift numbers")
    add_engine(p)


def run(args: argparse.Namespace) -> int:
    from ..check import check
    from ..render import report as render

    report = check(args.file)
    if args.format == "json":
        text = render.render_json(report)
    elif args.format == "markdown":
        text = render.render_markdown(report)
    else:
        text = render.render_text(report)
    sys.stdout.write(text)
    return report.exit_status(strict=args.strict)
