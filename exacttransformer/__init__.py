"""exacttransformer: transformer arithmetic done exactly.

Give it a toy model (a few tokens, small integer or rational weights) and it computes
every step of the forward pass with exact rationals and symbolic ``sqrt``/``exp`` (sympy),
and prints decimals that are correct in every digit.

>>> import exacttransformer as et
>>> trace = et.load("cat").forward()
>>> trace.value("out", 0)[1]
(7, 10, 5, 6)
"""

from __future__ import annotations

from .config import ModelConfig
from .errors import ComputationError, ExactTransformerError, InputError, LimitError, NumberError
from .files import Claim, Walkthrough, load, loads
from .model import Inputs, build_graph, forward
from .params import LayerParams, Params
from .trace import Step, Trace

__all__ = [
    "Claim", "ComputationError", "ExactTransformerError", "Inputs", "InputError", "LayerParams",
    "LimitError", "ModelConfig", "NumberError", "Params", "Step", "Trace", "Walkthrough",
    "build_graph", "forward", "load", "loads",
]
__version__ = "0.1.0"
