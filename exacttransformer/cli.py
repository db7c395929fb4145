"""The command line: ``exacttransformer walkthrough FILE|cat``.

Thin by design (like CPython's ``json.tool``): parse arguments, call the library, print.
``main(argv)`` returns the exit status so tests can call it; user errors print one line
naming the file and key and return 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import ExactTransformerError, InputError

MAX_DIGITS = 1000


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _digits(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of digits, got {text!r}") from None
    if not 1 <= n <= MAX_DIGITS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_DIGITS}, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="exacttransformer",
                     description="Transformer arithmetic done exactly, every digit proven.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    walk = sub.add_parser("walkthrough", help="every step of the forward pass, exact and rounded")
    walk.add_argument("file", help="a walkthrough TOML file, or 'cat' for the built-in example")
    walk.add_argument("--token", help="follow one token (its text, or a 0-based index)")
    walk.add_argument("--digits", type=_digits, default=6,
                      help="significant digits of the decimals (default 6)")
    walk.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    walk.add_argument("-o", "--output", help="write to this file instead of standard output")
    walk.add_argument("--force", action="store_true", help="overwrite an existing output file")
    return parser


def _token(trace_tokens: Sequence[str], text: str | None) -> int | None:
    if text is None:
        return None
    if text in trace_tokens:
        return list(trace_tokens).index(text)
    if text.isdigit() and int(text) < len(trace_tokens):
        return int(text)
    from .config import suggest

    raise InputError(f"{text!r} is not among the tokens; {suggest(text, list(trace_tokens))}",
                     key="--token")


def _walkthrough(args: argparse.Namespace) -> int:
    from .files import load
    from .output import write_text
    from .render.jsonout import render_json
    from .render.markdown import render_markdown
    from .render.text import render_text

    walk = load(args.file)
    trace = walk.forward()
    token = _token(trace.tokens, args.token)
    if args.format == "json":
        text = render_json(trace, digits=args.digits, token=token)
    elif args.format == "markdown":
        text = render_markdown(trace, token=token, digits=args.digits)
    else:
        text = render_text(trace, token=token, digits=args.digits)
    if args.output:
        write_text(args.output, text, force=args.force)
    else:
        sys.stdout.write(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return _walkthrough(args)
    except ExactTransformerError as exc:
        print(f"exacttransformer: error: {exc}", file=sys.stderr)
        return 2
    except RecursionError:
        print("exacttransformer: error: the input is nested too deeply to process", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
