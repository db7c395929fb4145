"""One exception tree for everything the library refuses.

Every error a user can cause is an :class:`ExactTransformerError` (a ``ValueError``),
so the command line can print its message and exit with status 2 instead of a traceback.
"""

from __future__ import annotations


class ExactTransformerError(ValueError):
    """Base class: a message that says what was required and what was given."""


class NumberError(ExactTransformerError):
    """A number string that the whitelisted parser refuses (syntax, unknown name, too large)."""


class InputError(ExactTransformerError):
    """A walkthrough file that cannot be used: names the file, the key and the problem."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None):
        self.file = file
        self.key = key
        where = ": ".join(p for p in (file, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class ComputationError(ExactTransformerError):
    """A step that cannot be carried out exactly (a zero variance, an undecidable sign)."""


class LimitError(ExactTransformerError):
    """An input that would take unbounded time or memory, refused before work starts."""


def suggest(given: str, allowed: tuple[str, ...] | list[str]) -> str:
    """A hint naming the nearest allowed spelling, then all of them.

    >>> suggest("relu6", ("relu", "gelu", "silu"))
    "did you mean 'relu'? (allowed: relu, gelu, silu)"
    """
    import difflib

    close = difflib.get_close_matches(given, list(allowed), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}(allowed: {', '.join(allowed)})"
