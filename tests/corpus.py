"""A generated stress corpus of small whole-journey models (issue 12), as walkthrough TOML.

Every model reads tokens through a vocabulary and ``E`` and goes to the next-token
probabilities; the options below vary from model to model.  The corpus is a *covering
design*: every pair of values of two different options appears together in at least one
model (all pairs, not all combinations: the full product would be about two million
models).  It is built by a deterministic greedy algorithm and the weights come from a
fixed linear congruential sequence, so the same texts come out on every run and machine
(no ``random``, no hashing of strings).

>>> len(CORPUS) == len({m.name for m in CORPUS})
True
>>> uncovered_pairs(DESIGN)
[]
>>> CORPUS[0].name
'issue12'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import combinations

FACTORS: dict[str, tuple[str, ...]] = {
    "norm": ("none", "pre", "post"),
    "activation": ("relu", "gelu", "gelu_tanh", "silu", "none"),
    "positional": ("none", "sinusoidal", "sinusoidal_guide", "learned", "rope"),
    "d_model": ("2", "3", "4", "6", "8"),
    "decoding": ("none", "generate", "beam"),
    "layers": ("1", "2", "3"),
    "tokens": ("2", "3", "4"),
    "temperature": ("1", "1/2", "2"),
    "unembed": ("tied", "W_U"),
    "training": ("no", "yes"),
    "cross": ("no", "yes"),
    "mask": ("none", "causal"),
    "heads": ("1", "2"),
    "final_norm": ("no", "yes"),
    "softmax": ("plain", "stable"),
    "scale": ("sqrt_dk", "1/2"),
    "biases": ("no", "yes"),
    "numbers": ("integers", "fractions"),
}
"""Each option and its values.  ``decoding``: none; ``generate`` (two passes of the
generation loop with the key/value cache asked for, which is used under a causal mask
and recomputes from scratch otherwise, plus top-k, top-p and a sample); ``beam`` (beam
search of width 2, two steps).  ``training``: a ``target`` and a ``learning_rate`` (loss,
gradients, one SGD step).  ``cross``: keys and values read a given ``x_kv``."""


def allowed(row: Mapping[str, str]) -> bool:
    """Whether a (partial) choice of option values can be one model.

    Generation and beam search run the model again on longer prompts, which a given
    ``x_kv`` does not extend: cross-attention goes without decoding.
    """
    return not (row.get("cross") == "yes" and row.get("decoding", "none") != "none")


# --- the covering design -------------------------------------------------------------------

Pair = tuple[tuple[str, str], tuple[str, str]]


def _pairs(row: Mapping[str, str], order: Mapping[str, tuple[str, ...]]) -> Iterator[Pair]:
    """The pairs of values a (partial) row holds, options in the order of ``order``."""
    names = [n for n in order if n in row]
    for a, b in combinations(names, 2):
        yield (a, row[a]), (b, row[b])


def _all_pairs(factors: Mapping[str, tuple[str, ...]],
               ok: Callable[[Mapping[str, str]], bool]) -> list[Pair]:
    """Every pair of values of two options that some model may hold, in a fixed order."""
    out = []
    for a, b in combinations(list(factors), 2):
        for va in factors[a]:
            for vb in factors[b]:
                if ok({a: va, b: vb}):
                    out.append(((a, va), (b, vb)))
    return out


def covering_design(factors: Mapping[str, tuple[str, ...]] = FACTORS,
                    ok: Callable[[Mapping[str, str]], bool] = allowed) -> list[dict[str, str]]:
    """Rows (option → value) in which every allowed pair of values appears.

    Greedy and deterministic: each row starts from the first pair not yet covered; every
    other option then takes the value that covers most new pairs with the options already
    chosen, ties going to the value with most uncovered pairs overall, then to the first.

    >>> three = {"a": ("0", "1"), "b": ("0", "1"), "c": ("0", "1")}
    >>> rows = covering_design(three, lambda r: True)
    >>> len(rows), uncovered_pairs(rows, three, lambda r: True)
    (4, [])
    """
    uncovered = _all_pairs(factors, ok)
    left = set(uncovered)
    rows: list[dict[str, str]] = []
    while left:
        (a, va), (b, vb) = next(p for p in uncovered if p in left)
        row = {a: va, b: vb}
        for name in factors:
            if name in row:
                continue
            best: tuple[int, int] | None = None
            choice = None
            for value in factors[name]:
                trial = {**row, name: value}
                if not ok(trial):
                    continue
                new = sum(1 for p in _pairs(trial, factors) if p in left and (name, value) in p)
                anywhere = sum(1 for p in left if (name, value) in p)
                if best is None or (new, anywhere) > best:
                    best, choice = (new, anywhere), value
            if choice is None:  # no value fits: cannot happen with the rule in allowed()
                raise ValueError(f"no allowed value of {name} for {row}")
            row[name] = choice
        rows.append({n: row[n] for n in factors})
        left.difference_update(_pairs(row, factors))
    return rows


def uncovered_pairs(rows: list[dict[str, str]],
                    factors: Mapping[str, tuple[str, ...]] = FACTORS,
                    ok: Callable[[Mapping[str, str]], bool] = allowed) -> list[Pair]:
    """Allowed pairs that no row holds (``[]`` for a covering design)."""
    held = {p for row in rows for p in _pairs(row, factors)}
    return [p for p in _all_pairs(factors, ok) if p not in held]


DESIGN = covering_design()


# --- numbers -------------------------------------------------------------------------------

INTEGERS = ("-1", "0", "1", "2", "1", "0", "-1", "1")
FRACTIONS = ("-1", "0", "1", "2", "1/2", "-1/2", "3/2", "1/4")


class Numbers:
    """Small exact numbers as TOML text, from a fixed linear congruential sequence
    (the constants of Numerical Recipes' ``ranqd1``), so a model's weights depend on its
    seed only."""

    def __init__(self, seed: int, table: tuple[str, ...]):
        self.state = (seed * 2654435761 + 12345) % 2**32
        self.table = table

    def next(self) -> str:
        self.state = (1664525 * self.state + 1013904223) % 2**32
        return self.table[(self.state >> 16) % len(self.table)]

    def matrix(self, rows: int, cols: int) -> str:
        return "[" + ", ".join(self.vector(cols) for _ in range(rows)) + "]"

    def vector(self, n: int) -> str:
        return "[" + ", ".join(_toml(self.next()) for _ in range(n)) + "]"


def table(o: Mapping[str, str]) -> tuple[str, ...]:
    """The numbers a model's weights are drawn from (its ``numbers`` option)."""
    return INTEGERS if o["numbers"] == "integers" else FRACTIONS


def _toml(number: str) -> str:
    return number if "/" not in number else f'"{number}"'


# --- one model -----------------------------------------------------------------------------

@dataclass(frozen=True)
class CorpusModel:
    """One corpus model: a name, the option values it was built from, the TOML text."""

    name: str
    options: Mapping[str, str]
    text: str

    def summary(self) -> str:
        """The options in one line, e.g. ``pre gelu sinusoidal d4 L2 H2 n3 tied train``."""
        o = self.options
        if not o:
            return "(the model of issue 12's report)"
        parts = [o["norm"] + "-norm", o["activation"], o["positional"], "d" + o["d_model"],
                 "L" + o["layers"], "H" + o["heads"], "n" + o["tokens"], o["unembed"],
                 "T=" + o["temperature"], o["mask"], o["softmax"], o["numbers"]]
        parts += [k for k in ("training", "cross", "final_norm", "biases") if o[k] == "yes"]
        if o["decoding"] != "none":
            parts.append(o["decoding"])
        return " ".join(parts)


def model_text(index: int, o: Mapping[str, str], num: Numbers | None = None) -> str:
    """The walkthrough TOML of design row ``o``: ``index`` varies the sizes that are not
    options (d_head, d_ff, vocabulary, tokens, bases); the weights come from ``num``, by
    default the sequence seeded by ``index``."""
    if num is None:
        num = Numbers(index + 1, table(o))
    d, n, heads, layers = int(o["d_model"]), int(o["tokens"]), int(o["heads"]), int(o["layers"])
    d_head = 2 if o["positional"] == "rope" else 1 + index % 2
    d_ff = 1 + index % 4
    vocab_size = 3 + index % 4
    vocab = [f"w{i}" for i in range(vocab_size)]
    tokens = [vocab[(index + 2 * i) % vocab_size] for i in range(n)]
    biases = o["biases"] == "yes"
    lines = [f'title = "corpus model {index}"', "", "[model]",
             f"heads = {heads}", f'mask = "{o["mask"]}"', f'softmax = "{o["softmax"]}"',
             f'activation = "{o["activation"]}"', f'norm = "{o["norm"]}"',
             'norm_eps = "1/100000"', f'positional = "{o["positional"]}"',
             f'scale = "{o["scale"]}"', f'temperature = "{o["temperature"]}"']
    if o["positional"] in ("sinusoidal", "sinusoidal_guide", "rope"):
        lines.append(f'positional_base = "{100 if index % 2 else 10000}"')
    if o["unembed"] == "tied":
        lines.append("tie_embeddings = true")
    if o["final_norm"] == "yes":
        lines.append("final_norm = true")
    if o["training"] == "yes":
        lines.append('learning_rate = "1/10"')
    lines += ["", "[input]", f"vocab = {vocab}".replace("'", '"'),
              f"tokens = {tokens}".replace("'", '"'), f"E = {num.matrix(vocab_size, d)}"]
    if o["training"] == "yes":
        lines.append(f'target = "{vocab[(index + 1) % vocab_size]}"')
    d_kv = d
    if o["cross"] == "yes":
        d_kv = 2 + index % 3
        m = max(n, 3) if o["mask"] == "causal" else 2
        lines.append(f"x_kv = {num.matrix(m, d_kv)}")
    lines += ["", "[weights]"]
    if o["positional"] == "learned":
        lines.append(f"P = {num.matrix(n + 2, d)}")
    if o["unembed"] == "W_U":
        lines.append(f"W_U = {num.matrix(d, vocab_size)}")
        if biases:
            lines.append(f"b_U = {num.vector(vocab_size)}")
    if o["final_norm"] == "yes" and biases:
        lines += [f"gamma_f = {num.vector(d)}", f"beta_f = {num.vector(d)}"]
    for _ in range(layers):
        lines += ["", "[[layers]]",
                  f"W_Q = {num.matrix(d, heads * d_head)}", f"W_K = {num.matrix(d_kv, heads * d_head)}",
                  f"W_V = {num.matrix(d_kv, heads * d_head)}", f"W_O = {num.matrix(heads * d_head, d)}",
                  f"W1 = {num.matrix(d, d_ff)}", f"W2 = {num.matrix(d_ff, d)}"]
        if biases:
            lines += [f"b_Q = {num.vector(heads * d_head)}", f"b_V = {num.vector(heads * d_head)}",
                      f"b_O = {num.vector(d)}", f"b1 = {num.vector(d_ff)}", f"b2 = {num.vector(d)}"]
            if o["norm"] != "none":
                lines += [f"gamma1 = {num.vector(d)}", f"beta2 = {num.vector(d)}"]
    if o["decoding"] == "generate":
        lines += ["", "[decoding]", "steps = 2", "kv_cache = true", "top_k = 2", 'top_p = "0.6"',
                  'u = ["0.42", "0.9"]']
    elif o["decoding"] == "beam":
        lines += ["", "[decoding]", "steps = 2", "beam_width = 2"]
    return "\n".join(lines) + "\n"


ISSUE12 = """\
title = "issue 12 model"
[model]
heads = 2
norm = "pre"
norm_eps = "1/100000"
activation = "gelu"
positional = "sinusoidal"
tie_embeddings = true
mask = "causal"
learning_rate = "1/10"
[input]
vocab = ["a","b","c","d","e","f"]
tokens = ["a","c","e"]
target = "b"
E = [[1,0,-1,2],[0,1,1,-1],[2,-1,0,1],[1,1,0,0],[-1,2,1,0],[0,0,2,1]]
[[layers]]
W_Q = [[1,0,-1,2],[0,1,1,0],[2,0,1,-1],[1,1,0,0]]
W_K = [[0,1,1,0],[1,0,2,1],[-1,1,0,1],[0,2,1,0]]
W_V = [[1,1,0,-1],[0,2,1,0],[1,0,0,1],[2,-1,1,0]]
W_O = [[1,0,0,1],[0,1,-1,0],[1,1,0,0],[0,0,1,2]]
W1 = [[1,0,-1,2],[0,1,1,0],[2,0,1,-1],[1,1,0,0]]
W2 = [[0,1,1,0],[1,0,2,1],[-1,1,0,1],[0,2,1,0]]
[[layers]]
W_Q = [[0,1,1,0],[1,0,2,1],[-1,1,0,1],[0,2,1,0]]
W_K = [[1,0,-1,2],[0,1,1,0],[2,0,1,-1],[1,1,0,0]]
W_V = [[2,-1,1,0],[1,1,0,-1],[0,2,1,0],[1,0,0,1]]
W_O = [[0,0,1,2],[1,0,0,1],[0,1,-1,0],[1,1,0,0]]
W1 = [[1,1,0,-1],[0,2,1,0],[1,0,0,1],[2,-1,1,0]]
W2 = [[1,0,0,1],[0,1,-1,0],[1,1,0,0],[0,0,1,2]]
"""
"""A model with every option of issue 12's report (3 tokens, vocabulary 6, d_model 4, pre-norm
with eps 1/100000, GELU, sinusoidal positions, tied embeddings, causal mask, 2 layers, 2
heads, a training step, weights in {-1, 0, 1, 2}; the report gives no weights, these are
ours): before the size budget, auto ran such a model with sympy for hours."""

CORPUS: tuple[CorpusModel, ...] = (
    CorpusModel("issue12", {}, ISSUE12),
    *(CorpusModel(f"m{i:02d}", row, model_text(i, row)) for i, row in enumerate(DESIGN)),
)
"""The whole corpus: issue 12's model first, then one model per design row."""


def by_name(name: str) -> CorpusModel:
    """The corpus model called ``name``."""
    for m in CORPUS:
        if m.name == name:
            return m
    raise KeyError(name)


# --- running a model and comparing its digits ------------------------------------------------

DIGITS = 15
"""Significant digits of every decimal compared (``walkthrough --digits 15``)."""

FLOAT_TOLERANCE = 1e-9
"""Largest difference allowed between a certified decimal and the float64 reference,
relative to ``max(1, largest |value| of the node)`` (the bound of tests/test_properties.py,
and for the same reasons: float64 rounds each operation by at most 2^-53 and these models
are a few hundred operations deep, so an honest float result lands within ~1e-13; scaling
by the node's largest magnitude covers entries that cancel to nearly 0, whose error is
relative to the operands).  A wrong formula moves values by far more than 1e-9."""

Key = tuple[str, "int | None", "int | None"]


def walkthrough(m: CorpusModel, engine: str) -> tuple[str, dict]:
    """``walkthrough --format json --digits 15 --engine ENGINE`` of ``m``, in process, as the
    command does it: the backend that ran (``trace.backend``) and the JSON object."""
    from exacttransformer.io.files import loads
    from exacttransformer.render.jsonout import walkthrough_json

    trace = loads(m.text, f"{m.name}.toml").forward(engine=engine)
    return trace.backend, walkthrough_json(trace, digits=DIGITS)


def approx(out: dict) -> dict[tuple, list[list[str]]]:
    """Each step's certified decimals, keyed ``(name, layer, head)``."""
    return {(s["name"], s["layer"], s["head"]): s["approx"] for s in out["steps"]}


def digit_differences(a: dict, b: dict) -> list[str]:
    """Where two walkthroughs' certified decimals differ (steps missing from one included);
    ``[]`` when every digit of every node agrees."""
    da, db = approx(a), approx(b)
    problems = [f"{key} only in the first" for key in da if key not in db]
    problems += [f"{key} only in the second" for key in db if key not in da]
    for key in da:
        if key in db and da[key] != db[key]:
            problems.append(f"{key}: {da[key]} != {db[key]}")
    return problems


def reference_differences(m: CorpusModel, out: dict, tolerance: float = FLOAT_TOLERANCE
                          ) -> tuple[int, list[str]]:
    """Compare a walkthrough's decimals with the float64 reference on every node the
    reference computes: ``(elements compared, differences beyond tolerance)``.

    RoPE has no float reference (``reference.py`` refuses it): ``(0, [])``.
    """
    from exacttransformer.graph.reference import reference_forward
    from exacttransformer.io.files import loads

    w = loads(m.text, f"{m.name}.toml")
    if w.config.positional == "rope":
        return 0, []
    ref = reference_forward(w.config, w.params, w.inputs)
    steps = approx(out)
    compared, problems = 0, []
    for key, value in ref.items():
        if key not in steps:
            problems.append(f"{key}: in the float reference, not in the walkthrough")
            continue
        scale = max([1.0, *(abs(f) for row in value for f in row)])
        for i, (row_e, row_f) in enumerate(zip(steps[key], value, strict=True)):
            for j, (text, f) in enumerate(zip(row_e, row_f, strict=True)):
                compared += 1
                if abs(float(text) - f) > tolerance * scale:
                    problems.append(f"{key}[{i}][{j}]: {text} vs float {f!r}")
    return compared, problems
