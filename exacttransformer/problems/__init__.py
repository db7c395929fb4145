"""Problem sets for teaching assistants: per-student variants with nice numbers and keys.

Layer: a reader of traces, like the renderers and the checker.  The pieces:

- :mod:`.topics` — what each topic asks and how its models are drawn;
- :mod:`.constraints` — what "nice numbers" means per topic, checked on the exact trace;
- :mod:`.generator` — the deterministic search from (seed, student id, topic);
- :mod:`.answers` — the key and ``answers.json``;
- :mod:`.sheets` — ``problems.tex`` and ``solutions.tex``;
- :mod:`.moodle` — ``quiz.xml``;
- :mod:`.pipeline` — variants made and rendered independently (in parallel) and joined;
- :mod:`.roster`, :mod:`.writer` — the roster CSV and the all-or-nothing output folder.

:func:`make_files` turns a :class:`~.generator.Request` into the files of the output
folder: ``problems.tex``, ``solutions.tex``, ``answers.json``, optionally ``quiz.xml``,
and ``variants/<student>-<topic>.toml`` — each variant's model as a walkthrough file whose
``[[claims]]`` are its key, so ``exacttransformer check`` re-judges the key and
``exacttransformer latex`` typesets the whole worked example.

>>> from exacttransformer.problems import Request, make_files
>>> files = make_files(Request(seed="7", topics=("ffn",), students=("ada",)))
>>> sorted(files)
['answers.json', 'problems.tex', 'solutions.tex', 'variants/ada-ffn.toml']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .specs import DIFFICULTIES, MAX_COUNT
from .topics import TOPICS

if TYPE_CHECKING:
    from .generator import ProblemSet, Request, generate
    from .pipeline import make_files

__all__ = ["DIFFICULTIES", "MAX_COUNT", "TOPICS", "ProblemSet", "Request", "generate",
           "make_files"]

_LAZY = {"ProblemSet": "generator", "Request": "generator", "generate": "generator",
         "make_files": "pipeline"}


def __getattr__(name: str) -> Any:
    """The engine-backed names load on first use, so that building the command line's
    parser (which lists the topics) does not import sympy and the renderers."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
