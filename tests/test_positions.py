"""Embeddings and positions: ``embed``, ``pos`` (sinusoidal, the guide's variant, learned) and
RoPE (``rope_angle``, ``q_pre``/``k_pre``, ``q``/``k``).

Exact values are compared with ``==``.  Trigonometric identities (a rotation keeps the
length; a RoPE score depends only on the distance) are proven exactly in one of two ways,
both without tolerances: ``sympy.trigsimp`` down to a known closed form, or — where sympy's
simplifier gives up — by writing ``sin θ``, ``cos θ`` as polynomial variables ``S``, ``C``
and reducing modulo ``S² + C² − 1`` (:func:`vanishes_on_the_circle`).  Floats appear only
against PyTorch and a float formula, with the bound stated at :data:`REL`.
"""

from __future__ import annotations

import math

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st
from strategies import rationals
from sympy import Integer as I
from sympy import Rational as R

from exacttransformer.errors import InputError
from exacttransformer.exact.backends import EXACT
from exacttransformer.exact.linalg import Matrix
from exacttransformer.exact.printing import sign, to_float
from exacttransformer.graph.config import ModelConfig
from exacttransformer.graph.forward import forward
from exacttransformer.graph.model import Inputs
from exacttransformer.graph.params import Params
from exacttransformer.io.files import loads
from exacttransformer.steps.positions import embed, learned, rope, rope_angles, sinusoidal

sin, cos = sympy.sin, sympy.cos

REL = 1e-12
"""Float bound ``|exact − float| <= REL · max(1, |exact|)``: each value here is one sin/cos
of an angle computed with two or three float64 operations, or a two-term sum of such
products, so the float error is a few units of 2^-53 ≈ 1.1e-16; 1e-12 leaves a margin of
10^3 while a wrong angle or pairing moves values by far more."""


def close(exact: object, approx: float) -> bool:
    value = to_float(exact)  # type: ignore[arg-type]
    return abs(value - approx) <= REL * max(1.0, abs(value))


def vanishes_on_the_circle(expr: sympy.Expr) -> bool:
    """``expr`` is 0 for every angle: each ``sin a``/``cos a`` becomes ``S_a``/``C_a`` and the
    polynomial is reduced modulo ``S_a² + C_a² − 1`` (exact Gröbner-basis division)."""
    expr = sympy.expand(sympy.expand_trig(expr))
    args = sorted({f.args[0] for f in expr.atoms(sympy.sin, sympy.cos)}, key=sympy.default_sort_key)
    subs, gens, ideal = {}, [], []
    for n, a in enumerate(args):
        s, c = sympy.symbols(f"S{n} C{n}")
        subs[sin(a)], subs[cos(a)] = s, c
        gens += [s, c]
        ideal.append(s**2 + c**2 - 1)
    poly = sympy.expand(expr.xreplace(subs))
    if not gens:
        return bool(poly == 0)
    return bool(sympy.reduced(poly, ideal, *gens)[1] == 0)


# --- embeddings --------------------------------------------------------------------------------

E = ((I(1), I(0), R(1, 2)), (I(0), I(2), I(-1)), (R(3, 4), I(1), I(1)))


def test_embed_takes_the_rows_of_E() -> None:
    assert embed(((I(2),), (I(0),), (I(2),)), E) == (E[2], E[0], E[2])


def test_ids_and_embed_in_the_trace() -> None:
    cfg = ModelConfig()
    trace = forward(cfg, Params(E=E), Inputs(tokens=("c", "a"), vocab=("a", "b", "c")))
    assert trace.value("ids", None, None) == ((2,), (0,))
    assert trace.value("embed", None, None) == (E[2], E[0])
    assert trace.value("x") == (E[2], E[0])


# --- sinusoidal ----------------------------------------------------------------------------------


def test_position_zero_is_exactly_0_and_1() -> None:
    table = sinusoidal(EXACT, 1, 6, I(10000))
    assert table == ((0, 1, 0, 1, 0, 1),)
    assert all(isinstance(v, sympy.Integer) for v in table[0])


def test_sinusoidal_stays_symbolic() -> None:
    table = sinusoidal(EXACT, 3, 4, I(10000))
    # the pair (2, 3) has frequency 1/10000^(2/4) = 1/100
    assert table[1] == (sin(1), cos(1), sin(R(1, 100)), cos(R(1, 100)))
    assert table[2] == (sin(2), cos(2), sin(R(1, 50)), cos(R(1, 50)))


def test_odd_width_and_irrational_frequencies_stay_exact() -> None:
    # d = 3: column 2 uses 10000^(2/3), which is irrational, and stays so.
    table = sinusoidal(EXACT, 2, 3, I(10000))
    assert table[1] == (sin(1), cos(1), sin(1 / I(10000) ** R(2, 3)))
    assert table[1][2] == sin(I(10000) ** R(-2, 3))


def test_the_guides_variant_uses_j_over_d_on_odd_columns() -> None:
    # docs/nodes.md, d = 4, base 100, position 1:
    #   standard [sin 1, cos 1, sin 1/10, cos 1/10]
    #   guide    [sin 1, cos 100^(-1/4), sin 1/10, cos 100^(-3/4)]
    standard = sinusoidal(EXACT, 2, 4, I(100))
    guide = sinusoidal(EXACT, 2, 4, I(100), guide=True)
    assert standard[1] == (sin(1), cos(1), sin(R(1, 10)), cos(R(1, 10)))
    assert guide[1] == (sin(1), cos(I(100) ** R(-1, 4)), sin(R(1, 10)), cos(I(100) ** R(-3, 4)))
    assert guide[0] == standard[0] == (0, 1, 0, 1)


@given(st.integers(1, 4), st.integers(1, 8), st.sampled_from([I(10), I(100), I(10000)]))
def test_the_guides_variant_differs_exactly_on_the_odd_columns(n: int, d: int,
                                                               base: sympy.Integer) -> None:
    standard = sinusoidal(EXACT, n, d, base)
    guide = sinusoidal(EXACT, n, d, base, guide=True)
    for p in range(n):
        for j in range(d):
            if j % 2 == 0 or p == 0:
                assert guide[p][j] == standard[p][j]
            else:
                # cos(p/base^(j/d)) vs cos(p/base^((j-1)/d)): different numbers, proven
                assert sign(guide[p][j] - standard[p][j]) != 0
                assert guide[p][j] == cos(p / base ** R(j, d))


@given(st.integers(1, 5), st.integers(1, 8), st.sampled_from([I(10), I(100), I(10000)]),
       st.booleans())
def test_sinusoidal_matches_the_float_formula(n: int, d: int, base: sympy.Integer,
                                              guide: bool) -> None:
    table = sinusoidal(EXACT, n, d, base, guide=guide)
    b = float(base)
    for p in range(n):
        for j in range(d):
            expo = j / d if guide else 2 * (j // 2) / d
            angle = p / b**expo
            want = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert close(table[p][j], want)


def test_sinusoidal_table_from_a_file() -> None:
    text = ('[model]\npositional = "sinusoidal"\npositional_base = "100"\nd_model = 4\n'
            '[input]\ntokens = ["The", "storm"]\n')
    trace = loads(text, "pos.toml").forward()
    assert trace.value("pos", None, None) == ((0, 1, 0, 1),
                                              (sin(1), cos(1), sin(R(1, 10)), cos(R(1, 10))))


def test_sinusoidal_positions_are_added_to_the_embeddings() -> None:
    cfg = ModelConfig(positional="sinusoidal", positional_base=I(100))
    trace = forward(cfg, Params(E=E), Inputs(tokens=("b", "b"), vocab=("a", "b", "c")))
    # d = 3, base 100: column 2 turns by p / 100^(2/3)
    assert trace.value("x") == ((0, 3, -1), (sin(1), 2 + cos(1), sin(I(100) ** R(-2, 3)) - 1))


# --- learned -------------------------------------------------------------------------------------

P = ((I(0), I(0), I(0)), (R(1, 2), I(0), I(-1)), (I(1), I(1), I(1)))


def test_learned_positions_are_the_first_rows_of_P() -> None:
    assert learned(2, P) == P[:2]


def test_learned_positions_need_a_row_for_every_position() -> None:
    with pytest.raises(InputError) as info:
        learned(4, P)
    assert info.value.key == "weights.P" and "only 3" in str(info.value)


def test_learned_positions_in_the_trace() -> None:
    cfg = ModelConfig(positional="learned")
    trace = forward(cfg, Params(E=E, P=P), Inputs(tokens=("a", "c"), vocab=("a", "b", "c")))
    assert trace.value("pos", None, None) == P[:2]
    assert trace.value("x") == ((1, 0, R(1, 2)), (R(5, 4), 1, 0))


# --- RoPE ---------------------------------------------------------------------------------------


def test_rope_angles_by_hand() -> None:
    # d_head 4, base 10000: pair 0 turns by p, pair 1 by p / 10000^(2/4) = p/100.
    assert rope_angles(EXACT, 3, 4, I(10000)) == ((0, 0), (1, R(1, 100)), (2, R(1, 50)))
    assert rope_angles(EXACT, 2, 4, I(10000), offset=5) == ((5, R(1, 20)), (6, R(3, 50)))
    assert rope_angles(EXACT, 2, 6, I(8)) == ((0, 0, 0), (1, R(1, 2), R(1, 4)))


def test_rope_rotates_each_pair_exactly() -> None:
    x = ((I(1), I(2), I(3), I(4)),) * 2
    out = rope(EXACT, x, rope_angles(EXACT, 2, 4, I(10000)))
    assert out[0] == x[0]  # position 0 is not turned
    a, b = R(1, 100), 1
    assert out[1] == (cos(b) - 2 * sin(b), sin(b) + 2 * cos(b),
                      3 * cos(a) - 4 * sin(a), 3 * sin(a) + 4 * cos(a))


def test_a_quarter_turn_is_exact() -> None:
    # angle pi/2 turns (a, b) into (-b, a)
    out = rope(EXACT, ((I(3), R(1, 2)),), ((sympy.pi / 2,),))
    assert out == ((R(-1, 2), I(3)),)


def test_rope_keeps_the_length_exactly() -> None:
    x = ((I(1), I(2), R(-1, 2), I(3)),) * 3
    out = rope(EXACT, x, rope_angles(EXACT, 3, 4, I(100)))
    for row in out:
        assert sympy.trigsimp(sympy.expand(sum(v**2 for v in row))) == R(57, 4)


def test_the_inverse_rotation_undoes_the_rotation() -> None:
    x = ((I(2), I(-1)), (R(1, 3), I(5)))
    angles = rope_angles(EXACT, 2, 2, I(10000))
    back = rope(EXACT, rope(EXACT, x, angles), angles, inverse=True)
    assert tuple(tuple(sympy.trigsimp(sympy.expand(v)) for v in row) for row in back) == x


two_pairs = st.tuples(*[rationals(3)] * 4)


@given(two_pairs, st.integers(0, 6), st.sampled_from([I(100), I(10000), I(7)]))
def test_rotation_preserves_the_norm(v: tuple, p: int, base: sympy.Integer) -> None:
    angles = rope_angles(EXACT, p + 1, 4, base)[p:]
    out = rope(EXACT, (v,), angles)[0]
    assert vanishes_on_the_circle(sum(a**2 for a in out) - sum(a**2 for a in v))


@given(two_pairs, two_pairs, st.integers(0, 4), st.integers(0, 4), st.integers(1, 3))
def test_the_rope_score_depends_only_on_the_distance(q: tuple, k: tuple, p: int, r: int,
                                                     shift: int) -> None:
    # Symbolic frequencies t0, t1: q at position p and k at r score exactly as q at p + s
    # and k at r + s, for every frequency, and equal the closed form
    # Σ_i (q_2i k_2i + q_2i+1 k_2i+1) cos((p − r) t_i) + (q_2i k_2i+1 − q_2i+1 k_2i) sin((p − r) t_i).
    t = sympy.symbols("t0 t1", real=True)

    def score(a: int, b: int) -> sympy.Expr:
        qa = rope(EXACT, (q,), ((a * t[0], a * t[1]),))[0]
        kb = rope(EXACT, (k,), ((b * t[0], b * t[1]),))[0]
        return sum((x * y for x, y in zip(qa, kb, strict=True)), I(0))

    closed = sum(((q[2 * i] * k[2 * i] + q[2 * i + 1] * k[2 * i + 1]) * cos((p - r) * t[i])
                  + (q[2 * i] * k[2 * i + 1] - q[2 * i + 1] * k[2 * i]) * sin((p - r) * t[i])
                  for i in range(2)), I(0))
    assert vanishes_on_the_circle(score(p, r) - score(p + shift, r + shift))
    assert vanishes_on_the_circle(score(p, r) - closed)


@given(st.integers(1, 4), st.sampled_from([2, 4, 6]), st.sampled_from([I(100), I(10000)]),
       st.data())
def test_rope_matches_the_float_formula(n: int, d: int, base: sympy.Integer,
                                        data: st.DataObject) -> None:
    x = tuple(data.draw(st.tuples(*[rationals(3)] * d)) for _ in range(n))
    out = rope(EXACT, x, rope_angles(EXACT, n, d, base))
    for p in range(n):
        for i in range(d // 2):
            theta = p / float(base) ** (2 * i / d)
            a, b = to_float(x[p][2 * i]), to_float(x[p][2 * i + 1])
            assert close(out[p][2 * i], a * math.cos(theta) - b * math.sin(theta))
            assert close(out[p][2 * i + 1], a * math.sin(theta) + b * math.cos(theta))


ROPE = """
[model]
positional = "rope"
scale = "none"

[input]
vocab  = ["The", "storm"]
tokens = ["The", "storm", "The", "storm"]
E = [[1, 0, 1, 0], [0, 1, 0, 1]]

[weights]
W_Q = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
W_K = [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
W_V = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
"""


def test_rope_steps_in_the_trace() -> None:
    trace = loads(ROPE, "rope.toml").forward()
    names = trace.names()
    for name in ("rope_angle", "q_pre", "q", "k_pre", "k"):
        assert name in names
    assert names.index("q_pre") < names.index("q") and names.index("k_pre") < names.index("k")
    assert trace.value("rope_angle", None, None) == (
        (0, 0), (1, R(1, 100)), (2, R(1, 50)), (3, R(3, 100)))
    q_pre, q = trace.value("q_pre", 0, 0), trace.value("q", 0, 0)
    k_pre, k = trace.value("k_pre", 0, 0), trace.value("k", 0, 0)
    assert q_pre[1] == (0, 1, 0, 1) and k_pre[1] == (1, 0, 1, 0)
    assert q[1] == (-sin(1), cos(1), -sin(R(1, 100)), cos(R(1, 100)))
    assert k == rope(EXACT, k_pre, trace.value("rope_angle", None, None))
    assert trace.get("q", 0, 0).formula == "rotate each pair of q_pre by rope_angle"


def test_rope_scores_repeat_with_the_distance() -> None:
    # "The storm" at positions 0-1 and again at 2-3: the same distance, the same score.
    s = loads(ROPE, "rope.toml").forward().value("scores", 0, 0)
    assert s[0][1] == cos(1) + cos(R(1, 100))
    assert s[2][3] != s[0][1]  # written differently ...
    assert sympy.trigsimp(s[2][3]) == s[0][1]  # ... but the same number
    # "storm" reading the "The" one place back, at positions 1 and 3
    assert sympy.trigsimp(s[3][2]) == sympy.trigsimp(s[1][0]) == cos(1) + cos(R(1, 100))
    # without the rotation both "The"s would score alike; with it, distance 1 and 3 differ
    assert sign(s[0][3] - s[0][1]) != 0


def test_rope_needs_an_even_head_width() -> None:
    text = ROPE.replace("W_Q = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]",
                        "W_Q = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]")
    text = text.replace("W_K = [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]",
                        "W_K = [[0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]]")
    with pytest.raises(InputError) as info:
        loads(text, "odd.toml")
    assert info.value.key == "model.positional" and "odd" in str(info.value)


# --- PyTorch cross-checks (skipped without torch) --------------------------------------------


def test_rope_against_torch_by_formula() -> None:
    torch = pytest.importorskip("torch")
    n, d, base = 5, 6, 10000
    x: Matrix = tuple(tuple(R((3 * p + 5 * j) % 7 - 3, 1 + j % 3) for j in range(d))
                      for p in range(n))
    exact = rope(EXACT, x, rope_angles(EXACT, n, d, I(base)))
    xt = torch.tensor([[to_float(v) for v in row] for row in x], dtype=torch.float64)
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    inv_freq = 1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    theta = pos * inv_freq  # (n, d/2)
    even, odd = xt[:, 0::2], xt[:, 1::2]
    rotated = torch.empty_like(xt)
    rotated[:, 0::2] = even * torch.cos(theta) - odd * torch.sin(theta)
    rotated[:, 1::2] = even * torch.sin(theta) + odd * torch.cos(theta)
    for p in range(n):
        for j in range(d):
            assert close(exact[p][j], float(rotated[p, j]))


def test_embedding_lookup_against_torch_nn_embedding() -> None:
    torch = pytest.importorskip("torch")
    ids = ((I(2),), (I(0),), (I(1),), (I(2),))
    exact = embed(ids, E)
    layer = torch.nn.Embedding(3, 3, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[to_float(v) for v in row] for row in E],
                                        dtype=torch.float64))
    rows = layer(torch.tensor([2, 0, 1, 2])).tolist()
    # a lookup copies rows: the correctly rounded exact values, bit for bit
    assert rows == [[to_float(v) for v in row] for row in exact]


def test_the_trace_embeddings_against_torch_nn_embedding() -> None:
    torch = pytest.importorskip("torch")
    trace = loads(ROPE, "rope.toml").forward()
    ids = [int(r[0]) for r in trace.value("ids", None, None)]
    table = [[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]]
    layer = torch.nn.Embedding.from_pretrained(torch.tensor(table, dtype=torch.float64))
    assert layer(torch.tensor(ids)).tolist() == [
        [to_float(v) for v in row] for row in trace.value("embed", None, None)]


def test_rope_with_more_keys_than_queries_rotates_key_j_by_position_j() -> None:
    """Cross-attention under RoPE: ``x_kv`` (3 rows) is longer than the 2 query tokens, so
    the angle table needs a row for every key position (it was cut at the tokens)."""
    walk = loads("""
[model]
positional = "rope"
[input]
tokens = ["a", "b"]
X = [[1, 0], [0, 1]]
x_kv = [[1, 2], [-1, 1], [2, 0]]
[weights]
W_Q = [[1, 0], [0, 1]]
W_K = [[1, 1], [0, 1]]
W_V = [[1, 0], [0, 1]]
""", "rope_kv.toml")
    trace = walk.forward(backend=EXACT)
    k_pre, k = trace.value("k_pre", 0, 0), trace.value("k", 0, 0)
    angles = rope_angles(EXACT, 3, 2, I(10000))
    assert len(k) == 3
    assert k == rope(EXACT, k_pre, angles)
    assert k[2] != k_pre[2]  # position 2 is turned by 2 radians
