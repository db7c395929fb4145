"""Exact numbers in, proven decimals out: the public names of the number layer.

A facade: the whitelisted parser lives in :mod:`exacttransformer.exact.parse`, certified
printing, signs and zero tests in :mod:`exacttransformer.exact.printing`.  Code inside the
package imports those modules; this one keeps ``exacttransformer.numbers.to_sig`` working.

>>> from exacttransformer.numbers import parse_number, to_fixed, to_sig
>>> x = parse_number("exp(3*sqrt(2)/2)")
>>> x, to_sig(x, 3), to_fixed(parse_number("1/2"), 2)
(exp(3*sqrt(2)/2), '8.34', '0.50')
"""

from __future__ import annotations

from .exact.parse import parse_number, parse_value
from .exact.printing import (
    Number,
    compare,
    format_exact,
    is_zero,
    node_count,
    sign,
    to_fixed,
    to_float,
    to_sig,
)

__all__ = [
    "Number",
    "compare",
    "format_exact",
    "is_zero",
    "node_count",
    "parse_number",
    "parse_value",
    "sign",
    "to_fixed",
    "to_float",
    "to_sig",
]
