"""The command line: ``exacttransformer COMMAND …`` (SPEC §5).

Thin by design (like CPython's ``json.tool``): parse arguments, call the library, print.
``main(argv)`` returns the exit status so tests can call it; user errors print one line
naming the file and key and return 2, never a traceback.  Each command lives in its own
module under :mod:`exacttransformer.commands`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from . import progress
from .errors import ComputationError, ExactTransformerError

COMMANDS = ("walkthrough", "check", "latex", "problems", "audit")
"""Sub-command modules in ``exacttransformer.commands``, in the order ``--help`` lists them."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from .commands.common import add_watch

    parser = _Parser(prog="exacttransformer",
                     description="Transformer arithmetic done exactly, every digit proven.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"exacttransformer.commands.{name}").add_parser(sub)
    for command in sub.choices.values():
        add_watch(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        # sympy is imported here (by the command modules), not when this module is: a Ctrl-C
        # during the imports is then a clean exit too.
        parser = build_parser()
        args = parser.parse_args(argv)
        from .graph.engine import ENV as ENGINE_ENV
    except SystemExit as exc:
        return int(exc.code or 0)
    except KeyboardInterrupt:
        print("exacttransformer: interrupted", file=sys.stderr)
        return 130
    engine = getattr(args, "engine", None)
    doing = ""  # what was being done, read before watch() ends and forgets it
    saved = os.environ.get(ENGINE_ENV)
    try:
        if engine is not None:  # --engine: for this run only (see exacttransformer.graph.engine)
            os.environ[ENGINE_ENV] = engine
        module = importlib.import_module(f"exacttransformer.commands.{args.command}")
        try:
            with progress.watch(quiet=args.quiet, timeout=args.timeout):
                try:
                    status: int = module.run(args)
                except BaseException:
                    doing = progress.describe()
                    raise
        except KeyboardInterrupt:
            # Ctrl-C: output files are written whole or not at all, so nothing is left behind.
            print(f"exacttransformer: interrupted{' while ' + doing if doing else ''}",
                  file=sys.stderr)
            return 130
        return status
    except progress.TimedOut as exc:
        print(f"exacttransformer: error: {exc}", file=sys.stderr)
        return 2
    except ComputationError as exc:  # a step that cannot be carried out: say which
        print(f"exacttransformer: error: {exc}{' (while ' + doing + ')' if doing else ''}",
              file=sys.stderr)
        return 2
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
    finally:
        if engine is not None:
            if saved is None:
                os.environ.pop(ENGINE_ENV, None)
            else:
                os.environ[ENGINE_ENV] = saved


if __name__ == "__main__":
    raise SystemExit(main())
