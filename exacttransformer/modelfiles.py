"""Hypothesis strategies for small random models, written as walkthrough files.

Layer: reader/test support (needs hypothesis, the ``[test]`` extra; reached through
:mod:`exacttransformer.testing`).  :func:`model_files` draws the TOML text of a model, so every
test also exercises the file format: each ``[model]`` option the forward pass reads (heads,
mask, scale, softmax, activation, norm and its eps, positions and their base, row or column
vectors, temperature, tied embeddings, a final norm), hidden states given as ``X`` or as
tokens looked up in a vocabulary with ``E``, cross-attention (``x_kv``), several layers in
``[[layers]]`` tables, every optional bias and gamma/beta, and numbers written as TOML
integers, TOML floats, decimal strings and fraction strings.  :func:`models` loads them.

Shapes and values are arguments: ``tokens``, ``d_model``, ``heads``, ``d_head``, ``d_ff``,
``layers`` and ``vocab`` are ``(least, most)`` ranges, ``values`` the range of the numbers
(``-values … values``), ``denominators`` the denominators they may have.  ``options`` narrows
the choices, e.g. ``options={"norm": ["post"], "mask": ["causal"]}`` (keys of :data:`OPTIONS`).
A layer norm's eps is never 0 by default (a constant row would have no layer norm): pass
``options={"norm_eps": ["0", "1e-5"]}`` to include it.  Decoding, training targets and claims
are not drawn.  Run random models with ``walk.forward(engine="structured")``: sympy's trees (the
``auto`` choice for small models) take minutes on a rare one, the structured engine does not.

>>> from hypothesis import given, settings
>>> @settings(max_examples=5, derandomize=True)
... @given(models(tokens=(1, 2), d_model=(1, 2)))
... def run(walk):
...     assert walk.forward(engine="structured").find("x", 0, None) is not None
>>> run()
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from hypothesis import strategies as st

from .io.files import Walkthrough, loads

OPTIONS: dict[str, tuple[Any, ...]] = {
    "mask": ("none", "causal"),
    "scale": ("sqrt_dk", "none", "1/2"),
    "softmax": ("plain", "stable"),
    "activation": ("relu", "gelu", "gelu_tanh", "silu", "none"),
    "norm": ("none", "pre", "post"),
    "norm_eps": ("1e-5", "1/10"),
    "positional": ("none", "sinusoidal", "sinusoidal_guide", "learned", "rope"),
    "positional_base": ("10000", "100"),
    "vectors": ("row", "column"),
    "temperature": ("1", "1/2", "2"),
    "input": ("X", "tokens"),
    "vocab_head": ("none", "W_U", "tied"),
    "final_norm": (False, True),
    "cross": (False, True),
    "biases": (False, True),
}
"""Every choice :func:`model_files` draws from, by name; ``options`` may narrow each."""

Range = tuple[int, int]


def _primes(n: int) -> list[int]:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


def _decimal(x: Fraction) -> str:
    digits = 0
    while (x * 10 ** digits).denominator != 1:
        digits += 1
    return f"{float(x):.{digits}f}"


def _forms(values: int, denominators: Sequence[int]) -> list[str]:
    """Every number ``k/q`` with ``|k/q| <= values``, in each way a file may write it, simplest
    first (so that hypothesis shrinks towards 0, 1, -1, ...)."""
    seen = sorted({Fraction(k, q) for q in denominators for k in range(-values * q, values * q + 1)},
                  key=lambda x: (x.denominator, abs(x), x < 0))
    out: list[str] = []
    for x in seen:
        if x.denominator == 1:
            out.append(str(x.numerator))
            continue
        out.append(f'"{x.numerator}/{x.denominator}"')
        if all(p in (2, 5) for p in _primes(x.denominator)):
            text = _decimal(x)
            out += [f'"{text}"', text]  # a decimal string, a TOML float
    return out


_FORMS = functools.lru_cache(maxsize=64)(_forms)


def _number(draw: st.DrawFn, values: int, denominators: Sequence[int]) -> str:
    return draw(st.sampled_from(_FORMS(values, tuple(denominators))))


def _matrix(draw: st.DrawFn, rows: int, cols: int, values: int, denominators: Sequence[int]) -> str:
    return "[" + ", ".join("[" + ", ".join(_number(draw, values, denominators) for _ in range(cols))
                           + "]" for _ in range(rows)) + "]"


def _vector(draw: st.DrawFn, n: int, values: int, denominators: Sequence[int]) -> str:
    return "[" + ", ".join(_number(draw, values, denominators) for _ in range(n)) + "]"


@st.composite
def model_files(draw: st.DrawFn, tokens: Range = (1, 3), d_model: Range = (1, 4),
                heads: Range = (1, 2), d_head: Range = (1, 2), d_ff: Range = (1, 3),
                layers: Range = (1, 2), vocab: Range = (1, 4), values: int = 2,
                denominators: Sequence[int] = (1, 2, 4),
                options: Mapping[str, Sequence[Any]] | None = None) -> str:
    """The TOML text of a small random model (see the module docstring)."""
    choices = dict(OPTIONS)
    for key, allowed in (options or {}).items():
        if key not in OPTIONS:
            raise ValueError(f"unknown option {key!r}; expected one of {', '.join(OPTIONS)}")
        choices[key] = tuple(allowed)

    def pick(key: str) -> Any:
        return draw(st.sampled_from(choices[key]))

    n = draw(st.integers(*tokens))
    d = draw(st.integers(*d_model))
    h = draw(st.integers(*heads))
    dk = draw(st.integers(*d_head))
    ff = draw(st.integers(*d_ff))
    n_layers = draw(st.integers(*layers))
    model = {k: pick(k) for k in ("mask", "scale", "softmax", "activation", "norm", "norm_eps",
                                  "vectors", "temperature")}
    source = pick("input")
    positional = pick("positional") if source == "tokens" else "none"
    if positional == "rope" and dk % 2:
        dk += 1  # RoPE turns pairs of dimensions
    cross = pick("cross") and positional != "rope"
    head_kind = pick("vocab_head")
    if head_kind == "tied" and source != "tokens":
        head_kind = "W_U"
    final_norm = head_kind != "none" and pick("final_norm")
    column = model["vectors"] == "column"

    lines = ["title = \"a random model\"", "", "[model]", f"heads = {h}"]
    lines += [f'{k} = "{v}"' for k, v in model.items()]
    if positional != "none":
        lines += [f'positional = "{positional}"', f'positional_base = "{pick("positional_base")}"']
    if head_kind == "tied":
        lines.append("tie_embeddings = true")
    if final_norm:
        lines.append("final_norm = true")
    lines += ["", "[input]"]
    words = [f"w{i}" for i in range(draw(st.integers(*vocab)))]
    if source == "tokens":
        chosen = [draw(st.sampled_from(words)) for _ in range(n)]
        lines += ["tokens = [" + ", ".join(f'"{t}"' for t in chosen) + "]",
                  "vocab = [" + ", ".join(f'"{w}"' for w in words) + "]"]
    else:
        lines += ["tokens = [" + ", ".join(f'"t{i}"' for i in range(n)) + "]",
                  "X = " + _matrix(draw, n, d, values, denominators)]
    d_kv = d
    if cross:
        m = draw(st.integers(n if model["mask"] == "causal" else 1, n + 1))
        d_kv = draw(st.integers(*d_model))
        lines.append("x_kv = " + _matrix(draw, m, d_kv, values, denominators))

    def weight(name: str, rows: int, cols: int, transposable: bool = True) -> str:
        if column and transposable:
            rows, cols = cols, rows
        return f"{name} = " + _matrix(draw, rows, cols, values, denominators)

    def layer_lines() -> list[str]:
        out = [weight("W_Q", d, h * dk), weight("W_K", d_kv, h * dk), weight("W_V", d_kv, h * dk),
               weight("W_O", h * dk, d), weight("W1", d, ff), weight("W2", ff, d)]
        widths = {"b_Q": h * dk, "b_K": h * dk, "b_V": h * dk, "b_O": d, "b1": ff, "b2": d}
        if model["norm"] != "none":
            widths.update(gamma1=d, beta1=d, gamma2=d, beta2=d)
        for name, width in widths.items():
            if pick("biases"):
                out.append(f"{name} = " + _vector(draw, width, values, denominators))
        return out

    lines += ["", "[weights]"]
    if source == "tokens":
        lines.append(weight("E", len(words), d, transposable=False))
        if positional == "learned":
            lines.append(weight("P", n + draw(st.integers(0, 1)), d, transposable=False))
    if head_kind == "W_U":
        lines.append(weight("W_U", d, len(words)))
        if pick("biases"):
            lines.append("b_U = " + _vector(draw, len(words), values, denominators))
    if final_norm:
        for name in ("gamma_f", "beta_f"):
            if pick("biases"):
                lines.append(f"{name} = " + _vector(draw, d, values, denominators))
    if n_layers == 1:
        lines += layer_lines()
    else:
        for _ in range(n_layers):
            lines += ["", "[[layers]]"] + layer_lines()
    return "\n".join(lines) + "\n"


def models(*args: Any, **kwargs: Any) -> st.SearchStrategy[Walkthrough]:
    """:func:`model_files`, loaded: a :class:`~exacttransformer.files.Walkthrough`."""
    return model_files(*args, **kwargs).map(lambda text: loads(text, "<random model>"))
