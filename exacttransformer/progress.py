"""What long work is doing, shown to the person waiting, and a clean stop when they ask.

Layer: front-end support.  The evaluator and the renderers say where they are with
:func:`at` (a few attribute writes, so it costs nothing when nobody watches).  The command
line wraps a command in :func:`watch`, which

- on a terminal, after about a second, keeps one line on stderr up to date: which node of
  how many, its layer and head, and the engine (nothing when stderr is not a terminal, or
  with ``--quiet``);
- with a time limit, stops the work with :class:`TimedOut`, whose message names the node
  being computed and what to try instead.

>>> at("computing", 3, 40, ("weights", 1, 0), engine="exact")
>>> describe()
'computing weights[layer 1, head 0] (node 4 of 40, sympy engine)'
>>> reset()
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from .errors import InputError

Where = tuple[str, int | None, int | None] | str
"""A node's key ``(name, layer, head)``, or a free label (a claim, a variant)."""

ENGINE_NAMES = {"exact": "sympy", "structured": "structured"}

PHASE_NOUNS = {"computing": "node", "printing": "step", "checking": "claim",
               "replaying": "node", "generating": "variant"}


@dataclass
class _Status:
    phase: str = ""
    index: int = 0
    total: int = 0
    where: Where = ""
    engine: str = ""


_STATUS = _Status()


def at(phase: str, index: int, total: int, where: Where, *, engine: str | None = None) -> None:
    """Record the current activity: ``index`` (0-based) of ``total`` in ``phase``."""
    s = _STATUS
    s.phase, s.index, s.total, s.where = phase, index, total, where
    if engine is not None:
        s.engine = engine


def reset() -> None:
    """Forget the current activity (a command has ended)."""
    at("", 0, 0, "", engine="")


def label(where: Where) -> str:
    """``weights[layer 1, head 0]`` for a key; a free label as it is."""
    if isinstance(where, str):
        return where
    name, layer, head = where
    parts = [f"{what} {n}" for what, n in (("layer", layer), ("head", head)) if n is not None]
    return f"{name}[{', '.join(parts)}]" if parts else name


def describe() -> str:
    """One phrase for the current activity, or ``""`` when nothing is recorded."""
    s = _STATUS
    if not s.phase:
        return ""
    text = f"{s.phase} {label(s.where)}".rstrip()
    counted = f"{PHASE_NOUNS.get(s.phase, 'item')} {s.index + 1} of {s.total}" if s.total else ""
    engine = f"{ENGINE_NAMES.get(s.engine, s.engine)} engine" if s.engine else ""
    extra = ", ".join(p for p in (counted, engine) if p)
    return f"{text} ({extra})" if extra else text


def advice() -> str:
    """What to try when the current activity takes too long."""
    s = _STATUS
    if s.phase in ("computing", "replaying") and s.engine == "exact":
        return ("try --engine structured (the same digits, proven), or a longer --timeout")
    if s.phase == "printing":
        return "try fewer --digits, --token to print one token's rows, or a longer --timeout"
    return ("try a smaller model, pip install 'exacttransformer[fast]' (python-flint), "
            "or a longer --timeout")


class TimedOut(BaseException):
    """The time limit of :func:`watch` ran out.  A ``BaseException``: sympy catches
    ``Exception`` in places, and a limit it swallowed would not stop anything."""


@contextmanager
def watch(*, stream: TextIO | None = None, quiet: bool = False, timeout: float | None = None,
          delay: float = 1.0, interval: float = 0.2) -> Iterator[None]:
    """Show progress on ``stream`` (stderr) when it is a terminal, after ``delay`` seconds,
    and raise :class:`TimedOut` after ``timeout`` seconds (main thread only; again every half
    second until the block ends, in case the first was swallowed)."""
    if timeout is not None and threading.current_thread() is not threading.main_thread():
        raise InputError("works only in the main thread (it uses SIGALRM)", key="--timeout")
    out = sys.stderr if stream is None else stream
    shown = not quiet and _is_terminal(out)
    started = time.monotonic()
    stop = threading.Event()
    painter = None
    if shown:
        painter = threading.Thread(target=_paint, args=(out, started, delay, interval, stop),
                                   name="exacttransformer-progress", daemon=True)
        painter.start()
    previous = None
    if timeout is not None:
        limit = timeout

        def expire(signum: int, frame: object) -> None:
            doing = describe() or "starting"
            raise TimedOut(f"stopped after the --timeout of {limit:g} s while {doing}; "
                           f"{advice()}")

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, timeout, 0.5)
    try:
        yield
    finally:
        if timeout is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        stop.set()
        if painter is not None:
            painter.join()
        reset()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _paint(out: TextIO, started: float, delay: float, interval: float,
           stop: threading.Event) -> None:
    """The progress line: rewritten in place while the work runs, cleared at its end."""
    if stop.wait(delay):
        return
    painted = False
    while True:
        text = describe()
        if text:
            elapsed = time.monotonic() - started
            line = f"exacttransformer [{elapsed:.0f} s]: {text}"
            _write(out, "\r\x1b[K" + line[:_width(out)])
            painted = True
        if stop.wait(interval):
            break
    if painted:
        _write(out, "\r\x1b[K")


def _width(out: TextIO) -> int:
    try:
        columns = os.get_terminal_size(out.fileno()).columns
    except (AttributeError, OSError, ValueError):
        columns = 0
    return max(20, columns - 1) if columns > 0 else 79


def _write(out: TextIO, text: str) -> None:
    try:
        out.write(text)
        out.flush()
    except (OSError, ValueError):
        pass
