"""exacttransformer: transformer arithmetic done exactly.

Give it a toy model (a few tokens, small integer or rational weights) and it computes
every step of the forward pass with exact rationals and symbolic ``sqrt``/``exp`` (sympy),
and prints decimals that are correct in every digit.

>>> import exacttransformer as et
>>> trace = et.load("cat").forward()
>>> trace.value("out", 0)[1]
(7, 10, 5, 6)

The names below are imported when first used, so that ``import exacttransformer.cli`` does
not load sympy: the command line imports it where a Ctrl-C is a clean exit.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__ as __version__

if TYPE_CHECKING:
    from .errors import ComputationError, ExactTransformerError, InputError, LimitError, NumberError
    from .graph.config import ModelConfig
    from .graph.forward import build_graph, forward
    from .graph.model import Inputs
    from .graph.params import LayerParams, Params
    from .graph.trace import Step, Trace
    from .io.files import Claim, Walkthrough, load, loads

_HOME = {
    "ModelConfig": "graph.config",
    "ComputationError": "errors", "ExactTransformerError": "errors", "InputError": "errors",
    "LimitError": "errors", "NumberError": "errors",
    "Claim": "io.files", "Walkthrough": "io.files", "load": "io.files", "loads": "io.files",
    "Inputs": "graph.model", "build_graph": "graph.forward", "forward": "graph.forward",
    "LayerParams": "graph.params", "Params": "graph.params",
    "Step": "graph.trace", "Trace": "graph.trace",
}
"""Each public name and the module it lives in."""

__all__ = [
    "Claim", "ComputationError", "ExactTransformerError", "Inputs", "InputError", "LayerParams",
    "LimitError", "ModelConfig", "NumberError", "Params", "Step", "Trace", "Walkthrough",
    "build_graph", "forward", "load", "loads",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'exacttransformer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    _show_traces()
    return value


def _markdown(trace: Trace) -> str:
    from .render.markdown import render_markdown

    return render_markdown(trace, digits=4)


def _latex(trace: Trace) -> str:
    from .render.markdown import render_notebook_latex

    return render_notebook_latex(trace, digits=4)


def _show_traces() -> None:
    """A trace shows itself in a notebook (Jupyter's ``_repr_markdown_``, ``_repr_latex_``)
    through the renderers, which sit layers above :mod:`exacttransformer.graph.trace`: the
    facade hands them down when a public name is first used."""
    from .graph.trace import DISPLAY

    DISPLAY.setdefault("markdown", _markdown)
    DISPLAY.setdefault("latex", _latex)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
