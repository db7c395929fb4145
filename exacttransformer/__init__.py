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

if TYPE_CHECKING:
    from .config import ModelConfig
    from .errors import ComputationError, ExactTransformerError, InputError, LimitError, NumberError
    from .files import Claim, Walkthrough, load, loads
    from .model import Inputs, build_graph, forward
    from .params import LayerParams, Params
    from .trace import Step, Trace

_HOME = {
    "ModelConfig": "config",
    "ComputationError": "errors", "ExactTransformerError": "errors", "InputError": "errors",
    "LimitError": "errors", "NumberError": "errors",
    "Claim": "files", "Walkthrough": "files", "load": "files", "loads": "files",
    "Inputs": "model", "build_graph": "model", "forward": "model",
    "LayerParams": "params", "Params": "params",
    "Step": "trace", "Trace": "trace",
}
"""Each public name and the module it lives in."""

__all__ = [
    "Claim", "ComputationError", "ExactTransformerError", "Inputs", "InputError", "LayerParams",
    "LimitError", "ModelConfig", "NumberError", "Params", "Step", "Trace", "Walkthrough",
    "build_graph", "forward", "load", "loads",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'exacttransformer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
