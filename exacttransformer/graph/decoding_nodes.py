"""The loops that run a model again and again (generation with a key/value cache, beam
search) and the graph's decoding nodes.

Layer: graph.  The rules of each choice are in :mod:`exacttransformer.steps.decoding`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ComputationError, InputError
from ..exact.backends.base import Backend, Num
from ..exact.linalg import Matrix, Vector, add, columns, hcat, shape
from ..steps import attention as A
from ..steps import feedforward as F
from ..steps import logits as LG
from ..steps import norm as N
from ..steps import positions as P
from ..steps.decoding import (
    DecodingConfig,
    Filtered,
    argmax,
    cdf,
    choose,
    compare,
    filtered,
    rank,
    sample,
    top_k,
    top_p,
)
from .config import ModelConfig
from .model import Inputs, model_nodes, run
from .params import LayerParams, Params


@dataclass
class LayerCache:
    """One layer's keys and values so far, per head (rows in position order)."""

    k: list[list[Vector]]
    v: list[list[Vector]]


@dataclass
class KVCache:
    """Every layer's keys and values, and how many positions they hold."""

    layers: list[LayerCache] = field(default_factory=list)
    length: int = 0

    def copy(self) -> KVCache:
        return KVCache([LayerCache([list(h) for h in lc.k], [list(h) for h in lc.v])
                        for lc in self.layers], self.length)


@dataclass(frozen=True)
class LanguageModel:
    """A model that reads token ids: the settings, the weights and the vocabulary."""

    config: ModelConfig
    params: Params
    vocab: tuple[str, ...]

    def full_logits(self, be: Backend, ids: Sequence[int]) -> Vector:
        """The last row of ``logits`` from a forward pass over all of ``ids``."""
        inputs = Inputs(tokens=tuple(self.vocab[i] for i in ids), vocab=self.vocab)
        trace = run(model_nodes(self.config, self.params, inputs), self.config, inputs, be)
        step = trace.find("logits", None, None)
        if step is None:
            raise ComputationError("the model does not reach the logits (W_U or tied E needed)")
        return step.value[-1]

    def temperature_row(self, be: Backend, logits: Vector) -> tuple[Vector, Vector]:
        """``(probs, scaled_logits)`` of one logits row."""
        stable = self.config.softmax == "stable"
        scaled = LG.scaled_logits(be, (tuple(logits),), be.const(self.config.temperature))[0]
        return LG.softmax_row(be, logits, be.const(self.config.temperature), stable), scaled

    def on(self, be: Backend) -> LanguageModel:
        """The same model with its weights in the backend's representation."""
        if be.name == "exact":
            return self
        return LanguageModel(self.config, _convert_params(be, self.params), self.vocab)

    # -- the KV-cache path: one new token through every layer, reusing keys and values --
    def cached_logits(self, be: Backend, cache: KVCache, token: int) -> Vector:
        """Feed one token at position ``cache.length``; extend ``cache``; its logits row.

        (For a backend other than the exact one, call it on ``model.on(backend)``.)
        """
        if self.config.mask != "causal":
            raise ComputationError("a key/value cache needs mask = \"causal\": without it, "
                                   "earlier positions change when a token is appended")
        pos = cache.length
        x = self._input_row(be, token, pos)
        layers = self.params.layers or (LayerParams(),)
        while len(cache.layers) < len(layers):
            heads = self.config.heads
            cache.layers.append(LayerCache([[] for _ in range(heads)], [[] for _ in range(heads)]))
        for lp, lc in zip(layers, cache.layers, strict=True):
            x = self._cached_layer(be, lp, lc, x, pos)
        cache.length += 1
        return self._head(be, x)[0]

    def _input_row(self, be: Backend, token: int, pos: int) -> Matrix:
        cfg, prm = self.config, self.params
        assert prm.E is not None
        row: Matrix = (prm.E[token],)
        d = shape(prm.E)[1]
        if cfg.positional in ("sinusoidal", "sinusoidal_guide"):
            table = P.sinusoidal(be, pos + 1, d, cfg.positional_base,
                                 guide=cfg.positional == "sinusoidal_guide")
            row = add(be, row, (table[pos],))
        elif cfg.positional == "learned" and prm.P is not None:
            row = add(be, row, (P.learned(pos + 1, prm.P)[pos],))
        return row

    def _norm(self, be: Backend, x: Matrix, gamma: Vector | None, beta: Vector | None) -> Matrix:
        mu = N.mean(be, x)
        var = N.variance(be, x, mu)
        return N.normalize(be, x, mu, var, be.const(self.config.norm_eps), gamma, beta)

    def _cached_layer(self, be: Backend, lp: LayerParams, lc: LayerCache, x: Matrix,
                      pos: int) -> Matrix:
        cfg = self.config
        heads = cfg.heads
        a = self._norm(be, x, lp.gamma1, lp.beta1) if cfg.norm == "pre" else x
        assert lp.W_Q is not None and lp.W_K is not None and lp.W_V is not None
        zs = []
        scale: Matrix | None = None
        for h in range(heads):
            def part(w: Matrix, b: Vector | None, h: int = h) -> Matrix:
                width = shape(w)[1] // heads
                bias = None if b is None else tuple(b[h * width:(h + 1) * width])
                return A.project(be, a, columns(w, h * width, (h + 1) * width), bias)

            q, k, v = part(lp.W_Q, lp.b_Q), part(lp.W_K, lp.b_K), part(lp.W_V, lp.b_V)
            if cfg.positional == "rope":
                angles = P.rope_angles(be, pos + 1, shape(q)[1], cfg.positional_base)[pos:]
                q, k = P.rope(be, q, angles), P.rope(be, k, angles)
            lc.k[h].append(k[0])
            lc.v[h].append(v[0])
            keys, values = tuple(lc.k[h]), tuple(lc.v[h])
            s = A.scores(be, q, keys)
            if scale is None:
                scale = _scale(be, cfg, keys)
            ss = A.scaled_scores(be, s, scale)
            mask = A.full_mask(1, len(keys))
            if cfg.softmax == "stable":
                ss = A.shifted_scores(be, ss, mask)
            e = A.exp_scores(be, ss, mask)
            w = A.weights(be, e, A.exp_sum(be, e))
            zs.append(A.mix(be, w, values))
        assert lp.W_O is not None and lp.W1 is not None and lp.W2 is not None
        attn_out = A.project(be, hcat(zs), lp.W_O, lp.b_O)
        resid_mid = add(be, x, attn_out)
        if cfg.norm == "post":
            stream = self._norm(be, resid_mid, lp.gamma1, lp.beta1)
            ffn_in = stream
        elif cfg.norm == "pre":
            stream = resid_mid
            ffn_in = self._norm(be, resid_mid, lp.gamma2, lp.beta2)
        else:
            stream = ffn_in = resid_mid
        act = F.activate(be, A.project(be, ffn_in, lp.W1, lp.b1), cfg.activation)
        resid_post = add(be, stream, A.project(be, act, lp.W2, lp.b2))
        if cfg.norm == "post":
            return self._norm(be, resid_post, lp.gamma2, lp.beta2)
        return resid_post

    def _head(self, be: Backend, x: Matrix) -> Matrix:
        prm = self.params
        if self.config.final_norm or prm.gamma_f is not None or prm.beta_f is not None:
            x = self._norm(be, x, prm.gamma_f, prm.beta_f)
        if self.config.tie_embeddings:
            assert prm.E is not None
            return LG.tied(be, x, prm.E)
        assert prm.W_U is not None
        return LG.unembed(be, x, prm.W_U, prm.b_U)


def _convert_params(be: Backend, params: Params) -> Params:
    from dataclasses import fields, replace

    def conv(v: Any) -> Any:
        if v is None:
            return None
        if v and isinstance(v[0], tuple):
            return tuple(tuple(be.const(x) for x in r) for r in v)
        return tuple(be.const(x) for x in v)

    layers = tuple(replace(lp, **{f.name: conv(getattr(lp, f.name)) for f in fields(lp)})
                   for lp in params.layers)
    return replace(params, layers=layers, **{f.name: conv(getattr(params, f.name))
                                             for f in fields(params) if f.name != "layers"})


def _scale(be: Backend, cfg: ModelConfig, keys: Matrix) -> Matrix:
    if cfg.scale == "sqrt_dk":
        return A.scale_from_sqrt_dk(be, A.sqrt_dk(be, keys))
    number: Any = 1 if cfg.scale == "none" else cfg.scale
    return ((be.integer(number) if isinstance(number, int) else be.const(number),),)


@dataclass(frozen=True)
class GenerationStep:
    """One pass of the loop: the last position's logits and probabilities, and the choice."""

    ids: tuple[int, ...]
    logits: Vector
    probs: Vector
    chosen: int


def generate(be: Backend, model: LanguageModel, prompt: Sequence[int], steps: int,
             settings: DecodingConfig = DecodingConfig(),  # noqa: B008 -- frozen
             *, cache: bool = True) -> list[GenerationStep]:
    """Append ``steps`` tokens, one pass each (greedy, or sampled with ``settings.u``).

    With ``cache`` (and a causal mask) the prompt is fed once, then one token per pass.
    """
    use_cache = cache and model.config.mask == "causal"
    model = model.on(be)
    ids = list(prompt)
    kv = KVCache()
    out: list[GenerationStep] = []
    logits: Vector = ()
    if use_cache:
        for t in ids:
            logits = model.cached_logits(be, kv, t)
    for s in range(steps):
        if not use_cache:
            logits = model.full_logits(be, ids)
        probs, scaled = model.temperature_row(be, logits)
        u = settings.u[s] if s < len(settings.u) else None
        chosen = choose(be, probs, scaled, settings, u)
        out.append(GenerationStep(tuple(ids), logits, probs, chosen))
        ids.append(chosen)
        if use_cache and s + 1 < steps:
            logits = model.cached_logits(be, kv, chosen)
    return out


@dataclass(frozen=True)
class Beam:
    """A candidate continuation and its probability (the product of its tokens')."""

    ids: tuple[int, ...]
    score: Num


def beam_search(be: Backend, model: LanguageModel, prompt: Sequence[int], width: int,
                steps: int) -> list[tuple[Beam, ...]]:
    """The surviving beams after each of ``steps`` extensions (``width`` of them at most)."""
    if width < 1 or width > len(model.vocab):
        raise InputError(f"beam_width must be between 1 and the vocabulary size "
                         f"{len(model.vocab)}, got {width}", key="decoding.beam_width")
    beams: tuple[Beam, ...] = (Beam((), be.integer(1)),)
    history: list[tuple[Beam, ...]] = []
    for _ in range(steps):
        candidates: list[Beam] = []
        for b in beams:
            probs, _ = model.temperature_row(be, model.full_logits(be, list(prompt) + list(b.ids)))
            candidates += [Beam(b.ids + (i,), be.mul(b.score, p)) for i, p in enumerate(probs)
                           if be.sign(p) > 0]

        def cmp(x: Beam, y: Beam) -> int:
            c = compare(be, y.score, x.score)
            return c if c != 0 else (x.ids > y.ids) - (x.ids < y.ids)

        beams = tuple(sorted(candidates, key=functools.cmp_to_key(cmp))[:width])
        history.append(beams)
    return history


def shown(x: Any) -> str:
    """An exact number as a reader typed it: ``0.42`` rather than ``21/50`` when it is a
    finite decimal.

    >>> from sympy import Rational
    >>> shown(Rational(21, 50)), shown(Rational(1, 3))
    ('0.42', '1/3')
    """
    from fractions import Fraction

    from ..exact.printing import format_exact

    if getattr(x, "is_Rational", False):
        f = Fraction(int(x.p), int(x.q))
        q, twos, fives = f.denominator, 0, 0
        while q % 2 == 0:
            q, twos = q // 2, twos + 1
        while q % 5 == 0:
            q, fives = q // 5, fives + 1
        if q == 1:
            places = max(twos, fives)
            text = f"{abs(f.numerator) * 10**places // f.denominator:0{places + 1}d}"
            body = text[:-places] + "." + text[-places:] if places else text
            return ("-" if f < 0 else "") + body
    return format_exact(x) if hasattr(x, "free_symbols") else str(x)


def describe_ids(ids: Sequence[int], vocab: Sequence[str]) -> str:
    """``3 ('coming')``, or the bare ids when there is no vocabulary."""
    if not vocab:
        return ", ".join(str(i) for i in ids)
    return ", ".join(f"{i} ({vocab[i]!r})" for i in ids)


Chooser = Callable[[Backend, Vector, Vector], int]


# --------------------------------------------------------------------------- graph nodes


def _key(name: str) -> tuple[str, None, None]:
    return (name, None, None)


def _vocab_of(inputs: Any) -> tuple[str, ...]:
    tok = inputs.tokenization
    return tuple(inputs.vocab or (tok.vocab if tok is not None else ()))


def _one(be: Backend, i: int) -> Matrix:
    return ((be.integer(i),),)


def _node(name: str, inputs: Sequence[Any], formula: str, fn: Any, deps: Sequence[Any],
          meaning: str, note: Any = None, params: Sequence[Any] = ()) -> Any:
    from .graph import Node
    from .model import MEANINGS

    return Node(key=_key(name), inputs=tuple(inputs), formula=formula, fn=fn,
                deps=tuple(deps), meaning=MEANINGS.get(name, meaning), note=note,
                params=tuple(params))


def _sources(inputs: Any) -> list[tuple[str, None, None]]:
    """What a decoding step reads: ``probs``, then what it ranks by.  The ranking uses
    ``scaled_logits`` (the same order, proven on smaller numbers), except when the file gives
    ``probs`` itself (a textbook's printed probabilities): then those are ranked, as given."""
    if _key("probs") in inputs.given:
        return [_key("probs")]
    return [_key("probs"), _key("scaled_logits")]


def _by(ins: Sequence[Matrix], n: int) -> Vector:
    """The ranking row: the last row of the last of the ``n`` sources."""
    return ins[n - 1][-1]


def decoding_nodes(config: ModelConfig, params: Params, inputs: Any) -> list[Any]:
    """Greedy always; top-k, top-p, sampling, generation and beam search when asked."""
    src = _sources(inputs)
    n = len(src)
    settings: DecodingConfig = inputs.decoding or DecodingConfig()
    vocab = _vocab_of(inputs)
    last = [("lastrow",)] * n

    def greedy_note(be: Backend, ins: Sequence[Matrix], value: Matrix) -> str:
        c = argmax(be, ins[0][-1], _by(ins, n))
        tie = (f"; exact tie between {describe_ids(c.ties, vocab)}: the lowest id wins"
               if len(c.ties) > 1 else "")
        return f"the next token is {describe_ids([c.index], vocab)}{tie}"

    nodes = [_node("greedy", src, "argmax of probs[last token]",
                   lambda be, i, p: _one(be, argmax(be, i[0][-1], _by(i, n)).index), last,
                   "greedy", greedy_note)]
    if settings.top_k is not None:
        k = settings.top_k

        def k_note(be: Backend, ins: Sequence[Matrix], value: Matrix) -> str:
            f = top_k(be, ins[0][-1], k, _by(ins, n))
            tie = (f"; {describe_ids(f.boundary_ties, vocab)} tie at the boundary: the lower "
                   "ids are kept" if f.boundary_ties else "")
            return f"keeps {describe_ids(f.kept, vocab)}{tie}"

        nodes.append(_node("top_k_probs", src,
                           f"probs[last] of the k = {k} most probable tokens / their sum, 0 "
                           "for the rest", lambda be, i, p: (top_k(be, i[0][-1], k, _by(i, n)).probs,),
                           last, "top-k", k_note))
    if settings.top_p is not None:
        nodes += _top_p_nodes(settings.top_p, vocab, src)
    dist = _sampling_source(settings)
    if settings.u:
        nodes += _sample_nodes(dist, settings.u[0], vocab, settings, src)
    model_ok = params.E is not None and bool(vocab) and bool(inputs.tokens)
    if settings.steps and model_ok:
        nodes += _generation_nodes(config, params, inputs, vocab, settings)
    if settings.beam_width and model_ok:
        nodes += _beam_nodes(config, params, inputs, vocab, settings)
    return nodes


def _top_p_nodes(p_value: Num, vocab: tuple[str, ...], src: list[tuple[str, None, None]]
                 ) -> list[Any]:
    n = len(src)

    def sorted_row(be: Backend, i: Sequence[Matrix], _p: Any) -> Matrix:
        order = rank(be, _by(i, n))
        return (tuple(i[0][-1][j] for j in order),)

    def sums(be: Backend, i: Sequence[Matrix], _p: Any) -> Matrix:
        row = i[0][0]
        return (tuple(be.total(list(row[:n + 1])) for n in range(len(row))),)

    def nucleus(be: Backend, i: Sequence[Matrix]) -> Filtered:
        return top_p(be, i[0][-1], be.const(p_value), _by(i, n))

    def p_note(be: Backend, ins: Sequence[Matrix], value: Matrix) -> str:
        f = nucleus(be, ins)
        n = len(f.kept)
        first = "the first token's probability" if n == 1 else f"the running sum of the first {n}"
        before = (f", that of the first {n - 1} is below it" if n > 2 else
                  ", the first alone is below it" if n == 2 else "")
        return (f"the nucleus is {describe_ids(f.kept, vocab)}: {first} reaches "
                f"p = {shown(p_value)}{before} (compared exactly)")

    def order_note(be: Backend, ins: Sequence[Matrix], value: Matrix) -> str:
        return f"order {describe_ids(rank(be, _by(ins, n)), vocab)}"

    return [
        _node("top_p_sorted", src, "probs[last], largest first (ties: lower id first)",
              sorted_row, [("lastrow",)] * n, "top-p", order_note),
        _node("top_p_cumsum", [_key("top_p_sorted")], "running sums of top_p_sorted", sums,
              [("row",)], "top-p"),
        _node("top_p_probs", [*src, _key("top_p_cumsum")],
              f"probs[last] of the shortest prefix whose sum reaches p = {shown(p_value)} / "
              "that sum, "
              "0 for the rest", lambda be, i, p: (nucleus(be, i).probs,),
              [*[("lastrow",)] * n, ("row",)], "top-p", p_note),
    ]


def _sampling_source(settings: DecodingConfig) -> tuple[str, None, None]:
    if settings.top_k is not None and settings.top_p is not None:
        return _key("filtered_probs")
    if settings.top_k is not None:
        return _key("top_k_probs")
    if settings.top_p is not None:
        return _key("top_p_probs")
    return _key("probs")


def _sample_nodes(dist: tuple[str, None, None], u: Num, vocab: tuple[str, ...],
                  settings: DecodingConfig, src: list[tuple[str, None, None]]) -> list[Any]:
    nodes = []
    n = len(src)
    if dist[0] == "filtered_probs":
        nodes.append(_node("filtered_probs", src,
                           "probs[last] of the tokens kept by both top-k and top-p / their sum",
                           lambda be, i, p: (filtered(be, i[0][-1], _by(i, n), settings),),
                           [("lastrow",)] * n, "filtered"))

    def s_note(be: Backend, ins: Sequence[Matrix], value: Matrix) -> str:
        j = int(value[0][0])
        return (f"u = {shown(u)} is below sample_cdf[{j}] and not below the sums before it: "
                f"the token is {describe_ids([j], vocab)}")

    def pick(be: Backend, i: Sequence[Matrix], _p: Any) -> Matrix:
        return _one(be, sample(be, i[1][-1], be.const(u))[0])

    nodes.append(_node("sample_cdf", [dist], f"running sums of {dist[0]}[last] in vocabulary order",
                       lambda be, i, p: (cdf(be, i[0][-1]),), [("lastrow",)], "cdf"))
    nodes.append(_node("sample", [_key("sample_cdf"), dist],
                       f"the first token whose cumulative probability exceeds u = {shown(u)}", pick,
                       [("row",), ("lastrow",)], "sample", s_note, params=[("u", ((u,),))]))
    return nodes


def _prompt(inputs: Any, vocab: tuple[str, ...]) -> tuple[int, ...]:
    from ..steps.tokens import lookup

    return lookup(inputs.tokens, vocab, inputs.unk)


def _generation_nodes(config: ModelConfig, params: Params, inputs: Any, vocab: tuple[str, ...],
                      settings: DecodingConfig) -> list[Any]:
    model = LanguageModel(config, params, vocab)
    prompt = _prompt(inputs, vocab)
    steps = settings.steps or 0
    cached = settings.kv_cache and config.mask == "causal"

    @functools.lru_cache(maxsize=2)
    def run(be: Backend) -> list[GenerationStep]:
        return generate(be, model, prompt, steps, settings, cache=cached)

    how = ("keys and values cached: only the new token is fed" if cached
           else "recomputed from scratch")
    nodes = []
    for s in range(steps):
        def note(be: Backend, ins: Sequence[Matrix], value: Matrix, s: int = s) -> str:
            st = run(be)[s]  # type: ignore[arg-type]
            text = " ".join(vocab[i] for i in st.ids)
            u = settings.u[s] if s < len(settings.u) else None
            rule = "greedy" if u is None else f"sampled with u = {shown(u)}"
            return f"reads {text!r}; {rule}: appends {describe_ids([st.chosen], vocab)}"

        nodes.append(_node(f"gen.{s + 1}", [_key("probs")],
                           f"probs[last] of pass {s + 1} of the generation loop ({how})",
                           lambda be, i, p, s=s: (run(be)[s].probs,), [("shape",)],
                           f"generation, pass {s + 1}", note))
    return nodes


def _beam_nodes(config: ModelConfig, params: Params, inputs: Any, vocab: tuple[str, ...],
                settings: DecodingConfig) -> list[Any]:
    model = LanguageModel(config, params, vocab)
    prompt = _prompt(inputs, vocab)
    width = settings.beam_width or 1
    steps = settings.steps or 1

    @functools.lru_cache(maxsize=2)
    def run(be: Backend) -> list[tuple[Beam, ...]]:
        return beam_search(be, model, prompt, width, steps)

    nodes = []
    for s in range(steps):
        def note(be: Backend, ins: Sequence[Matrix], value: Matrix, s: int = s) -> str:
            beams = run(be)[s]  # type: ignore[arg-type]
            return "best first: " + ", ".join(
                repr(" ".join(vocab[i] for i in b.ids)) for b in beams)

        nodes.append(_node(f"beam.{s + 1}", [_key("probs")],
                           f"the {width} most probable continuations of {s + 1} token"
                           f"{'s' if s else ''} (product of their probabilities)",
                           lambda be, i, p, s=s: (tuple(b.score for b in run(be)[s]),),
                           [("shape",)], f"beam search, step {s + 1}", note))
    return nodes
