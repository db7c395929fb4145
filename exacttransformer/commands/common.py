"""Argument helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..errors import InputError, suggest

MAX_DIGITS = 1000


def digits(text: str) -> int:
    """``--digits``: a whole number from 1 to :data:`MAX_DIGITS`."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of digits, got {text!r}") from None
    if not 1 <= n <= MAX_DIGITS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_DIGITS}, got {n}")
    return n


def token_index(tokens: Sequence[str], text: str | None) -> int | None:
    """``--token``: a token's text (first match) or its 0-based index."""
    if text is None:
        return None
    if text in tokens:
        return list(tokens).index(text)
    if text.isdigit() and int(text) < len(tokens):
        return int(text)
    raise InputError(f"{text!r} is not among the tokens; {suggest(text, list(tokens))}",
                     key="--token")


def add_engine(p: argparse.ArgumentParser) -> None:
    """``--engine``: which exact engine computes the trace (see exacttransformer.graph.engine)."""
    p.add_argument("--engine", choices=("auto", "sympy", "structured"), default=None,
                   help="exact engine: sympy trees, structured numbers for large models, or "
                        "auto by size (default; also EXACTTRANSFORMER_ENGINE)")


def seconds(text: str) -> float:
    """``--timeout``: a positive number of seconds.

    >>> seconds("2.5")
    2.5
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < 1e9:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def add_watch(p: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--timeout``, which every command takes (see exacttransformer.progress)."""
    p.add_argument("--quiet", action="store_true",
                   help="no progress line on stderr (it is shown only on a terminal, for work "
                        "that takes over a second)")
    p.add_argument("--timeout", type=seconds, metavar="SECONDS",
                   help="stop with status 2 after this many seconds, naming the step being "
                        "computed")
