"""Number backends: the one seam through which step code does arithmetic.

Layer: scalar kernels.  A step function never touches sympy or ``math`` directly; it
calls the backend it was given.  :data:`EXACT` keeps rationals rational and ``sqrt`` /
``exp`` / ``erf`` symbolic (sympy); :data:`FLOAT` does the same steps in float64 and
exists so that the seam is exercised and later backends (interval, python-flint) slot in
beside it.  The independent float *reference* (:mod:`exacttransformer.graph.reference`) is
separate code and does not use this module.
"""

from __future__ import annotations

from .base import Backend
from .exact import EXACT, ExactBackend
from .floats import FLOAT, FloatBackend
from .structured import STRUCTURED, StructuredBackend

__all__ = ["Backend", "EXACT", "ExactBackend", "FLOAT", "FloatBackend", "STRUCTURED", "StructuredBackend"]
