"""Walkthrough files (SPEC §2): TOML in, a validated :class:`Walkthrough` out.

Layer: the edge.  Everything a user typed is checked here, once, with messages that name
the file, the key and the problem; numbers go through the whitelisted parser of
:mod:`exacttransformer.numbers` and nothing else.  TOML floats are kept as the text they
were written as (``0.50`` stays two decimals), via ``tomllib``'s ``parse_float`` hook.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import sympy

from ..errors import ExactTransformerError, InputError, LimitError, suggest
from ..exact.backends.base import Backend
from ..exact.linalg import Matrix, shape, transpose
from ..exact.parse import parse_value
from ..exact.printing import sign
from ..graph import asked as AS
from ..graph import binary as B
from ..graph import variants as V
from ..graph.config import CHOICES, ModelConfig
from ..graph.forward import forward
from ..graph.graph import Guard, Patch
from ..graph.model import Inputs
from ..graph.params import (
    LAYER_MATRICES,
    LAYER_VECTORS,
    MODEL_MATRICES,
    MODEL_VECTORS,
    LayerParams,
    Params,
    check_shapes,
)
from ..graph.trace import Key, Trace
from ..steps.decoding import DecodingConfig
from ..steps.tokens import Tokenization

MAX_FILE_BYTES = 2_000_000
MAX_DIM = 256
MAX_ENTRIES = 65_536
MAX_LAYERS = 32
MAX_HEADS = 64
MAX_CLAIMS = 5_000

NODE_NAMES = (
    "ids", "embed", "pos", "x", "x_kv", "x_k", "x_v", "attn_in",
    "ln1_mean", "ln1_var", "ln1", "ln2_mean", "ln2_var", "ln2",
    "q", "k", "v", "scores", "sqrt_dk", "scale", "scaled_scores", "shifted_scores",
    "exp_scores", "exp_sum", "weights", "z", "concat", "attn_out", "resid_mid",
    "ffn_in", "ffn_pre", "ffn_act", "ffn_out", "resid_post", "out",
    "lnf_mean", "lnf_var", "lnf", "final", "logits", "scaled_logits", "shifted_logits",
    "exp_logits", "exp_logits_sum", "probs", "loss",
    # the journey (docs/nodes.md): RoPE, decoding, embedding geometry
    "q_pre", "k_pre", "rope_angle", "greedy", "top_k_probs", "top_p_sorted", "top_p_cumsum",
    "top_p_probs", "filtered_probs", "sample_cdf", "sample", "cosine", "analogy",
    "analogy_cosine", "analogy_nearest",
    "score_sum", "logit_sum", "sigmoid", "bce",  # softmax = "sum", head = "sigmoid"
)
"""Node names of SPEC §3 and docs/nodes.md (``grad.*``, ``new.*``, ``bpe.*``, ``gen.*`` and
``beam.*`` are accepted by prefix)."""

NAME_PREFIXES = ("grad.", "new.", "bpe.", "gen.", "beam.")

HEAD_NODES = frozenset(
    ("q", "k", "v", "scores", "scaled_scores", "shifted_scores", "exp_scores", "exp_sum",
     "weights", "z", "q_pre", "k_pre", "score_sum")
)
MODEL_NODES = frozenset(("ids", "embed", "pos", "x_kv", "x_k", "x_v", "lnf_mean", "lnf_var", "lnf", "final",
                         "logits", "scaled_logits", "shifted_logits", "exp_logits",
                         "exp_logits_sum", "probs", "loss", "rope_angle", "logit_sum",
                         "sigmoid", "bce"))
TOP_KEYS = ("title", "source", "model", "input", "weights", "layers", "claims", "decoding")
INPUT_KEYS = ("tokens", "X", "vocab", "E", "target", "kv_tokens", "unk",
              "text", "corpus", "merges", "analogy", "labels")
CLAIM_KEYS = ("name", "node", "token", "key", "layer", "head", "value", "note")


class _FloatText(str):
    """A TOML float, kept as the text it was written as."""


@dataclass(frozen=True)
class Claim:
    """One ``[[claims]]`` entry: what the source printed for a node (or part of one)."""

    number: int
    name: str
    value: Any
    token: str | int | None = None
    layer: int = 0
    head: int = 0
    note: str = ""
    key: str | int | None = None
    """For ``contrib``: the key token whose block of the query's row is claimed."""

    def where(self) -> str:
        return f"claims[{self.number}]"


@dataclass(frozen=True)
class Walkthrough:
    """A loaded file: settings, weights, inputs and claims, all validated."""

    path: str
    config: ModelConfig
    params: Params
    inputs: Inputs
    claims: tuple[Claim, ...] = ()
    title: str = ""
    source: str = ""
    target: str | int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def forward(self, backend: Backend | None = None, patch: Patch | None = None,
                engine: str | None = None) -> Trace:
        """The trace of this walkthrough (file errors already ruled out).

        Without a backend, the engine is chosen as :func:`exacttransformer.graph.engine.run` says.
        """
        from ..graph.engine import run

        def attempt(be: Backend, guard: Guard | None) -> Trace:
            return forward(self.config, self.params, self.inputs, be, patch,
                           title=self.title, source=self.source, guard=guard)

        try:
            if backend is not None:
                return attempt(backend, None)
            return run(attempt, self.config, self.params, self.inputs, engine)
        except InputError as exc:
            if exc.file is None:  # a step refused the file's input: name the file too
                raise InputError(_bare(exc), file=self.path, key=exc.key) from None
            raise
        except ExactTransformerError as exc:
            raise type(exc)(f"{self.path}: {exc}") from None


def builtin_path(name: str) -> Path | None:
    """The packaged copy of a built-in walkthrough (``cat``), if ``name`` is one."""
    if "/" in name or os.sep in name or name.endswith(".toml"):
        return None
    ref = resources.files("exacttransformer").joinpath("data", f"{name}.toml")
    return Path(str(ref)) if ref.is_file() else None


def resolve(name: str) -> Path:
    """A file path, or the built-in walkthrough of that name."""
    path = Path(name)
    if path.exists():
        return path
    builtin = builtin_path(name)
    return builtin if builtin is not None else path


def load(name: str | os.PathLike[str]) -> Walkthrough:
    """Read and validate a walkthrough file (or ``"cat"``, the built-in one)."""
    path = resolve(os.fspath(name))
    shown = os.fspath(name)
    if path.is_dir():
        raise InputError("is a directory, not a walkthrough file", file=shown)
    if not path.exists():
        raise InputError("no such file", file=shown)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise LimitError(f"the file is {size} bytes; the limit is {MAX_FILE_BYTES}")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", file=shown) from None
    except LimitError as exc:
        raise InputError(str(exc), file=shown) from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", file=shown) from None
    return loads(text, shown)


def loads(text: str, name: str = "<string>") -> Walkthrough:
    """Validate walkthrough TOML text; ``name`` is used in messages."""
    try:
        data = tomllib.loads(text, parse_float=_FloatText)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"TOML syntax error: {exc}", file=name) from None
    try:
        return _Loader(name).walkthrough(data)
    except InputError as exc:
        if exc.file is None:
            raise InputError(_bare(exc), file=name, key=exc.key) from None
        raise
    except ExactTransformerError as exc:
        raise InputError(str(exc), file=name) from None


def _bare(exc: InputError) -> str:
    text = str(exc)
    prefix = f"{exc.key}: " if exc.key else ""
    return text[len(prefix):] if prefix and text.startswith(prefix) else text


class _Loader:
    """One file's validation; every error carries the file name and key."""

    def __init__(self, name: str):
        self.name = name
        self.softmax = "plain-or-stable"

    def error(self, key: str, message: str) -> InputError:
        return InputError(message, file=self.name, key=key)

    # -- scalars and matrices ---------------------------------------------------------
    def number(self, key: str, value: Any) -> sympy.Expr:
        try:
            return parse_value(value)
        except ExactTransformerError as exc:
            raise self.error(key, str(exc)) from None

    def vector(self, key: str, value: Any) -> tuple[sympy.Expr, ...]:
        if not isinstance(value, list) or not value:
            raise self.error(key, "expected a non-empty flat list of numbers")
        if any(isinstance(v, list) for v in value):
            raise self.error(key, "expected a flat list of numbers (a bias is added to every row)")
        if len(value) > MAX_DIM:
            raise self.error(key, f"{len(value)} entries; the limit is {MAX_DIM}")
        return tuple(self.number(f"{key}[{i}]", v) for i, v in enumerate(value))

    def matrix(self, key: str, value: Any) -> Matrix:
        if not isinstance(value, list) or not value or not all(isinstance(r, list) for r in value):
            raise self.error(key, "expected a matrix: a non-empty list of rows, e.g. [[1, 0], [0, 1]]")
        widths = {len(r) for r in value}
        if len(widths) != 1 or 0 in widths:
            lengths = ", ".join(str(len(r)) for r in value)
            raise self.error(key, f"rows must all have the same non-zero length (got {lengths})")
        rows, cols = len(value), widths.pop()
        if rows > MAX_DIM or cols > MAX_DIM or rows * cols > MAX_ENTRIES:
            raise self.error(key, f"{rows}×{cols} is larger than the limit "
                                  f"({MAX_DIM} per side, {MAX_ENTRIES} entries)")
        return tuple(
            tuple(self.number(f"{key}[{i}][{j}]", v) for j, v in enumerate(r))
            for i, r in enumerate(value)
        )

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table [{key}]")
        return value

    # -- sections ---------------------------------------------------------------------
    def walkthrough(self, data: dict[str, Any]) -> Walkthrough:
        for key in data:
            if key not in TOP_KEYS:
                raise self.error(key, f"unknown top-level key; {suggest(key, TOP_KEYS)}")
        title = self.text(data, "title")
        source = self.text(data, "source")
        config = self.config(self.table(data, "model"))
        self.softmax = ("softmax = \"sum\"" if config.softmax == "sum" else
                        "head = \"sigmoid\"" if config.head == "sigmoid" else "plain-or-stable")
        column = config.vectors == "column"
        inp = self.table(data, "input")
        weights = self.table(data, "weights")
        params = self.params(weights, data.get("layers"), column, inp)
        tokenization = self.bpe(inp)
        if tokenization is not None:
            inp = {**inp, "tokens": list(tokenization.tokens)}
            if "vocab" not in inp and params.E is None:
                inp["vocab"] = list(tokenization.vocab)
        inputs, target = self.inputs(inp, config, params)
        self.check_fit(config, params, inputs)
        inputs = self.journey(inputs, inp, data.get("decoding"), config, params, tokenization)
        claims = self.claims(data.get("claims", []), config, params, inputs)
        wanted = AS.asked_names(c.name for c in claims)
        if wanted:
            inputs = replace(inputs, asked=wanted)
        return Walkthrough(path=self.name, config=config, params=params, inputs=inputs,
                           claims=claims, title=title, source=source, target=target)

    def text(self, data: dict[str, Any], key: str) -> str:
        value = data.get(key, "")
        if not isinstance(value, str):
            raise self.error(key, "expected a string")
        return value

    def config(self, model: dict[str, Any]) -> ModelConfig:
        names = [f.name for f in fields(ModelConfig)]
        kwargs: dict[str, Any] = {}
        for key, value in model.items():
            where = f"model.{key}"
            if key not in names:
                raise self.error(where, f"unknown setting; {suggest(key, names)}")
            if key in CHOICES:
                if not isinstance(value, str):
                    raise self.error(where, f"expected a string; {suggest(str(value), CHOICES[key])}"
                                            + ("; did you mean 'heads'?" if key == "head" else ""))
                if value not in CHOICES[key]:
                    raise self.error(where, f"unknown value {value!r}; {suggest(value, CHOICES[key])}")
                kwargs[key] = value
            elif key in ("heads", "d_model"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise self.error(where, f"expected a positive integer, got {value!r}")
                limit = MAX_HEADS if key == "heads" else MAX_DIM
                if value > limit:
                    raise self.error(where, f"{value} is above the limit of {limit}")
                kwargs[key] = value
            elif key in ("tie_embeddings", "final_norm"):
                if not isinstance(value, bool):
                    raise self.error(where, "expected true or false")
                kwargs[key] = value
            elif key == "scale" and value in ("sqrt_dk", "none"):
                kwargs[key] = value
            else:
                kwargs[key] = self.number(where, value)
        try:
            return ModelConfig(**kwargs)
        except InputError as exc:
            raise self.error(exc.key or "model", _bare(exc)) from None

    def layer(self, table: dict[str, Any], prefix: str, column: bool) -> LayerParams:
        kwargs: dict[str, Any] = {}
        for key, value in table.items():
            if key in LAYER_MATRICES:
                m = self.matrix(f"{prefix}.{key}", value)
                kwargs[key] = transpose(m) if column else m
            elif key in LAYER_VECTORS:
                kwargs[key] = self.vector(f"{prefix}.{key}", value)
        return LayerParams(**kwargs)

    def params(self, weights: dict[str, Any], layers: Any, column: bool,
               inp: dict[str, Any]) -> Params:
        allowed = LAYER_MATRICES + LAYER_VECTORS + MODEL_MATRICES + MODEL_VECTORS
        for key in weights:
            if key not in allowed:
                raise self.error(f"weights.{key}", f"unknown weight; {suggest(key, allowed)}")
        model_kw: dict[str, Any] = {}
        for key in MODEL_MATRICES:
            src = weights if key in weights else inp if key in ("E",) and key in inp else None
            if src is not None:
                where = f"{'weights' if src is weights else 'input'}.{key}"
                m = self.matrix(where, src[key])
                model_kw[key] = transpose(m) if column and key == "W_U" else m
        for key in MODEL_VECTORS:
            if key in weights:
                model_kw[key] = self.vector(f"weights.{key}", weights[key])
        if layers is not None:
            if not isinstance(layers, list) or not all(isinstance(t, dict) for t in layers):
                raise self.error("layers", "expected [[layers]] tables")
            if len(layers) > MAX_LAYERS:
                raise self.error("layers", f"{len(layers)} layers; the limit is {MAX_LAYERS}")
            stray = [k for k in weights if k in LAYER_MATRICES + LAYER_VECTORS]
            if stray:
                raise self.error(f"weights.{stray[0]}",
                                 "with [[layers]], each layer's weights go in its own table")
            parsed = []
            for n, t in enumerate(layers):
                for key in t:
                    if key not in LAYER_MATRICES + LAYER_VECTORS:
                        raise self.error(f"layers[{n}].{key}",
                                         f"unknown weight; {suggest(key, LAYER_MATRICES + LAYER_VECTORS)}")
                parsed.append(self.layer(t, f"layers[{n}]", column))
            model_kw["layers"] = tuple(parsed)
        else:
            one = self.layer(weights, "weights", column)
            model_kw["layers"] = (one,) if one.present() else ()
        return Params(**model_kw)

    def inputs(self, inp: dict[str, Any], config: ModelConfig,
               params: Params) -> tuple[Inputs, str | int | None]:
        given: dict[Key, Matrix] = {}
        for key, value in inp.items():
            if key in INPUT_KEYS and key != "X":
                continue
            name = "x" if key == "X" else key
            if name not in NODE_NAMES:
                raise self.error(f"input.{key}",
                                 f"unknown input; {suggest(key, INPUT_KEYS + NODE_NAMES)}")
            m = self.matrix(f"input.{key}", value)
            if name in HEAD_NODES:
                for h, part in enumerate(self.split_heads(f"input.{key}", m, config.heads)):
                    given[(name, 0, h)] = part
            elif name in MODEL_NODES:
                given[(name, None, None)] = m
            else:
                given[(name, 0, None)] = m
        if ("x", 0, None) in given and ("X" in inp and "x" in inp):
            raise self.error("input.x", "give X or x, not both")
        tokens = self.token_list(inp, "tokens")
        kv_tokens = self.token_list(inp, "kv_tokens")
        vocab = self.token_list(inp, "vocab")
        table = config.positional in ("sinusoidal", "sinusoidal_guide") and config.d_model
        if (not given and not (vocab and params.E is not None and tokens)
                and not (table and tokens) and not inp.get("text")):
            raise self.error("input", "nothing to compute: give X (the hidden states), "
                                      "vocab and E with tokens, or a node such as q, k, v, "
                                      "scores or logits, or a positional table "
                                      "(positional, d_model and tokens)")
        rows = {shape(m)[0] for k, m in given.items() if k[0] not in V.OTHER_ROWS}
        n = len(tokens)
        if tokens and rows and rows != {n}:
            raise self.error("input.tokens", f"{n} tokens but the given matrices have "
                                             f"{', '.join(map(str, sorted(rows)))} rows")
        if not tokens:
            n = max(rows) if rows else 0
            tokens = [f"#{i}" for i in range(n)]
        if vocab and params.E is not None:
            if len(vocab) != shape(params.E)[0]:
                raise self.error("input.vocab", f"{len(vocab)} words but E has "
                                                f"{shape(params.E)[0]} rows")
            unk = inp.get("unk")
            for t in tokens:
                if t not in vocab:
                    if unk is None:
                        raise self.error("input.tokens", f"token {t!r} is not in the vocabulary "
                                                         f"and no unk token is declared; "
                                                         f"{suggest(t, vocab)}")
            if unk is not None:
                if unk not in vocab:
                    raise self.error("input.unk", f"{unk!r} is not in the vocabulary")
                tokens = [t if t in vocab else unk for t in tokens]
        target = inp.get("target")
        if target is not None and not isinstance(target, str | int):
            raise self.error("input.target", "expected a token text or a vocabulary index")
        return (Inputs(tokens=tuple(tokens), given=given, vocab=tuple(vocab),
                       kv_tokens=tuple(kv_tokens)), target)

    def split_heads(self, key: str, m: Matrix, heads: int) -> list[Matrix]:
        if heads == 1:
            return [m]
        cols = shape(m)[1]
        if key.endswith(("scores", "weights", "exp_sum")) or cols % heads:
            raise self.error(key, f"with {heads} heads, give this node in [[layers]]-free files "
                                  f"only as heads side by side ({cols} columns do not split)")
        w = cols // heads
        return [tuple(r[h * w:(h + 1) * w] for r in m) for h in range(heads)]

    def token_list(self, inp: dict[str, Any], key: str) -> list[str]:
        value = inp.get(key, [])
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise self.error(f"input.{key}", "expected a list of strings")
        if len(value) > MAX_DIM:
            raise self.error(f"input.{key}", f"{len(value)} entries; the limit is {MAX_DIM}")
        return value

    def check_fit(self, config: ModelConfig, params: Params, inputs: Inputs) -> None:
        d: int | None = None
        for key in (("x", 0, None), ("attn_in", 0, None)):
            if key in inputs.given:
                d = shape(inputs.given[key])[1]
                break
        if d is None and params.E is not None:
            d = shape(params.E)[1]
        if d is None:
            d = config.d_model
        d_kv = V.kv_width(inputs.given)
        check_shapes(params, config, d, d_kv, multi=len(params.layers) > 1 or False)
        if config.positional == "learned" and params.P is None and params.E is not None:
            raise self.error("weights.P", "positional = \"learned\" needs the table P")
        if params.P is not None and params.E is not None and shape(params.P)[1] != shape(params.E)[1]:
            raise self.error("weights.P", f"P is {shape(params.P)[0]}×{shape(params.P)[1]} but E is "
                                          f"{shape(params.E)[0]}×{shape(params.E)[1]}: widths differ")
        if params.P is not None and len(inputs.tokens) > shape(params.P)[0]:
            raise self.error("weights.P", f"{len(inputs.tokens)} tokens but P has only "
                                          f"{shape(params.P)[0]} rows")

    def claims(self, raw: Any, config: ModelConfig, params: Params,
               inputs: Inputs) -> tuple[Claim, ...]:
        if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
            raise self.error("claims", "expected [[claims]] tables")
        if len(raw) > MAX_CLAIMS:
            raise self.error("claims", f"{len(raw)} claims; the limit is {MAX_CLAIMS}")
        layers = max(1, len(params.layers))
        out = []
        for n, c in enumerate(raw):
            where = f"claims[{n}]"
            for key in c:
                if key not in CLAIM_KEYS:
                    raise self.error(f"{where}.{key}", f"unknown key; {suggest(key, CLAIM_KEYS)}")
            if "name" in c and "node" in c:
                raise self.error(f"{where}.node", "give the claimed node once: 'name' or 'node'")
            field_ = "node" if "node" in c else "name"  # node = "rowsum(weights)" reads well
            name = c.get(field_)
            if not isinstance(name, str):
                raise self.error(f"{where}.{field_}",
                                 "missing or not a string: which node is claimed")
            problem = AS.claim_name_problem(name, NODE_NAMES, NAME_PREFIXES)
            if problem is not None:
                raise self.error(f"{where}.{field_}", problem)
            token = c.get("token")
            if isinstance(token, bool) or (token is not None and not isinstance(token, str | int)):
                raise self.error(f"{where}.token", "expected a token text or a 0-based index")
            if isinstance(token, str) and token not in inputs.tokens and token not in inputs.kv_tokens:
                raise self.error(f"{where}.token", f"{token!r} is not among the tokens; "
                                                   f"{suggest(token, inputs.tokens)}")
            if isinstance(token, int) and not 0 <= token < len(inputs.tokens):
                raise self.error(f"{where}.token", f"index {token} is out of range "
                                                   f"(0…{len(inputs.tokens) - 1})")
            layer = self.index(c, "layer", where, layers, "layers")
            head = self.index(c, "head", where, config.heads, "heads")
            if "value" not in c:
                raise self.error(f"{where}.value", "missing: what the source printed")
            note = c.get("note", "")
            if not isinstance(note, str):
                raise self.error(f"{where}.note", "expected a string")
            out.append(Claim(number=n, name=name, value=_plain(c["value"]), token=token,
                             layer=layer, head=head, note=note,
                             key=AS.claim_key(c, name, where, inputs.kv_tokens or inputs.tokens)))
        return tuple(out)

    def index(self, c: dict[str, Any], key: str, where: str, count: int, what: str) -> int:
        value = c.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{where}.{key}", "expected a 0-based integer")
        if not 0 <= value < count:
            raise self.error(f"{where}.{key}", f"{value} is out of range: the model has {count} {what}")
        return value


    # -- the journey (docs/nodes.md): BPE text, target, [decoding], analogy ------------------
    # Kept apart from the block's keys above: ``[input] text``, ``corpus``, ``merges``,
    # ``target``, ``analogy`` and the ``[decoding]`` table, read after the block's inputs.

    MAX_MERGES = 200
    MAX_STEPS = 16

    def bpe(self, inp: dict[str, Any]) -> Tokenization | None:
        from ..steps.tokens import explicit_merges, tokenize, train_bpe, words_of

        text = inp.get("text")
        if text is None:
            for key in ("corpus", "merges"):
                if key in inp:
                    raise self.error(f"input.{key}", "BPE settings need [input] text to encode")
            return None
        if not isinstance(text, str) or not text.split():
            raise self.error("input.text", "expected a non-empty string of words")
        if "tokens" in inp:
            raise self.error("input.tokens", "give tokens or text (to be BPE-encoded), not both")
        corpus = inp.get("corpus", text)
        if not (isinstance(corpus, str) or (isinstance(corpus, list)
                                            and all(isinstance(w, str) for w in corpus))):
            raise self.error("input.corpus", "expected a string or a list of strings")
        if len(words_of(corpus)) > 10_000:
            raise self.error("input.corpus", "more than 10000 words; the limit keeps BPE quick")
        merges = inp.get("merges", 0)
        if isinstance(merges, bool) or not isinstance(merges, int | list):
            raise self.error("input.merges", "expected a number of merges to learn, or a list "
                                             "of pairs such as [[\"n\", \"g\"], [\"i\", \"ng\"]]")
        if isinstance(merges, int):
            if not 0 <= merges <= self.MAX_MERGES:
                raise self.error("input.merges", f"expected 0 to {self.MAX_MERGES} merges, "
                                                 f"got {merges}")
            learned = train_bpe(corpus, merges)
        else:
            if not all(isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) and x
                                                                   for x in m) for m in merges):
                raise self.error("input.merges", "each merge is a pair of strings, e.g. "
                                                 "[\"n\", \"g\"]")
            learned = explicit_merges([(a, b) for a, b in merges])
        tok = tokenize(text, corpus, learned)
        alphabet = set(tok.vocab)
        unk = inp.get("unk")
        for w in tok.words:
            for piece in w.pieces:
                if piece not in alphabet and unk is None:
                    raise self.error("input.text", f"{w.word!r} has the piece {piece!r}, which "
                                                   "is not in the BPE vocabulary (its characters "
                                                   "come from the corpus) and no unk is declared")
        return tok

    def vocab_size(self, inputs: Inputs, params: Params, config: ModelConfig) -> int | None:
        given = inputs.given.get(("logits", None, None))
        if given is not None:
            return shape(given)[1]
        if params.W_U is not None:
            return shape(params.W_U)[1]
        if config.tie_embeddings and params.E is not None:
            return shape(params.E)[0]
        return len(inputs.vocab) or None

    def resolve_target(self, raw: Any, vocab: tuple[str, ...], size: int | None) -> int | None:
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise self.error("input.target", "expected a token text or a vocabulary index")
        if isinstance(raw, str):
            if raw not in vocab:
                raise self.error("input.target", f"{raw!r} is outside the vocabulary; "
                                                 f"{suggest(raw, vocab)}")
            return vocab.index(raw)
        if size is None or not 0 <= raw < size:
            limit = "there is no vocabulary" if size is None else f"0…{size - 1}"
            raise self.error("input.target", f"index {raw} is outside the vocabulary ({limit})")
        return raw

    def decoding(self, table: Any, size: int | None) -> DecodingConfig | None:
        if table is None:
            return None
        if not isinstance(table, dict):
            raise self.error("decoding", "expected a table [decoding]")
        if self.softmax != "plain-or-stable":
            raise self.error("decoding", f"decoding is not available with {self.softmax} "
                                         "(the generation loop uses the exponential softmax)")
        allowed = ("top_k", "top_p", "u", "beam_width", "steps", "kv_cache")
        kw: dict[str, Any] = {}
        for key, value in table.items():
            where = f"decoding.{key}"
            if key not in allowed:
                raise self.error(where, f"unknown setting; {suggest(key, allowed)}")
            if key in ("top_k", "beam_width", "steps"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise self.error(where, f"expected a whole number of at least 1, got {value!r}")
                if key == "steps" and value > self.MAX_STEPS:
                    raise self.error(where, f"{value} steps; the limit is {self.MAX_STEPS}")
                if key == "beam_width" and size is not None and value > size:
                    raise self.error(where, f"a beam width of {value} is larger than the "
                                            f"vocabulary ({size} words)")
                kw[key] = value
            elif key == "kv_cache":
                if not isinstance(value, bool):
                    raise self.error(where, "expected true or false")
                kw[key] = value
            elif key == "top_p":
                p = self.number(where, value)
                if not (sign(p) > 0 and sign(1 - p) >= 0):
                    raise self.error(where, f"top_p must be in (0, 1], got {value}")
                kw[key] = p
            else:
                values = value if isinstance(value, list) else [value]
                if not values:
                    raise self.error(where, "expected a uniform number in [0, 1), or a list "
                                            "of them (one per generated token)")
                us = []
                for i, v in enumerate(values):
                    at = f"{where}[{i}]" if isinstance(value, list) else where
                    u = self.number(at, v)
                    if sign(u) < 0 or sign(1 - u) <= 0:
                        raise self.error(at, f"u must be in [0, 1), got {v}")
                    us.append(u)
                kw["u"] = tuple(us)
        return DecodingConfig(**kw)

    def journey(self, inputs: Inputs, inp: dict[str, Any], table: Any, config: ModelConfig,
                params: Params, tokenization: Tokenization | None) -> Inputs:
        vocab = inputs.vocab or (tokenization.vocab if tokenization else ())
        size = self.vocab_size(inputs, params, config)
        target = self.resolve_target(inp.get("target"), vocab, size)
        decoding = self.decoding(table, size)
        analogy = inp.get("analogy")
        if analogy is not None:
            if not (isinstance(analogy, list) and len(analogy) == 3
                    and all(isinstance(w, str) for w in analogy)):
                raise self.error("input.analogy", "expected three words, e.g. "
                                                  "[\"king\", \"man\", \"woman\"]")
            if params.E is None or not inputs.vocab:
                raise self.error("input.analogy", "needs a vocabulary and its embeddings E")
            for w in analogy:
                if w not in inputs.vocab:
                    raise self.error("input.analogy", f"{w!r} is not in the vocabulary; "
                                                      f"{suggest(w, inputs.vocab)}")
        if config.positional == "rope":
            for n, lp in enumerate(params.layers):
                if lp.W_Q is not None and (shape(lp.W_Q)[1] // config.heads) % 2:
                    raise self.error("model.positional", f"rope rotates pairs of dimensions, but "
                                                         f"layer {n}'s heads are "
                                                         f"{shape(lp.W_Q)[1] // config.heads} wide "
                                                         "(an odd number)")
        unk = inp.get("unk")
        if unk is not None:
            if not isinstance(unk, str):
                raise self.error("input.unk", "expected the text of the unknown-token entry, "
                                              "e.g. \"<unk>\"")
            if vocab and unk not in vocab:
                which = "vocabulary" if inputs.vocab else "BPE vocabulary"
                raise self.error("input.unk", f"{unk!r} is not in the {which}; "
                                              f"{suggest(unk, vocab)}")
        self.check_generation_positions(inputs, decoding, config, params)
        labels = B.parse_labels(inp.get("labels"), config.head, target,
                                *B.logits_shape(inputs.given, params.W_U, len(inputs.tokens)))
        return replace(inputs, tokenization=tokenization, target=target, decoding=decoding,
                       analogy=tuple(analogy) if analogy else None, unk=unk, labels=labels)

    def check_generation_positions(self, inputs: Inputs, decoding: DecodingConfig | None,
                                   config: ModelConfig, params: Params) -> None:
        """Generation and beam search read ``steps - 1`` positions past the prompt: a learned
        table ``P`` must have a row for each."""
        if (decoding is None or not (decoding.steps or decoding.beam_width)
                or config.positional != "learned" or params.P is None or params.E is None):
            return
        depth = decoding.steps or 1
        need = len(inputs.tokens) + depth - 1
        rows = shape(params.P)[0]
        if need > rows:
            raise self.error("decoding.steps", f"{len(inputs.tokens)} prompt tokens and "
                                               f"{depth} steps read {need} positions, but P has "
                                               f"only {rows} rows (add rows to P or take fewer "
                                               "steps)")


def _plain(value: Any) -> Any:
    """Claimed values with TOML floats as their written text."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, _FloatText):
        return str(value)
    return value
