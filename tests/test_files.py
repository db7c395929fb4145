"""Walkthrough files: every section of SPEC §2 loads, and bad files are refused clearly."""

from __future__ import annotations

import pytest
from sympy import Integer as I
from sympy import Rational, sqrt

import exacttransformer as et
from exacttransformer.errors import InputError

SMALL = """
[input]
tokens = ["a", "b"]
X = [[1, 0], [0, 1]]
[weights]
W_Q = [[1, 0], [0, 1]]
W_K = [[1, 0], [0, 1]]
W_V = [[1, 2], [3, 4]]
"""


def test_column_vector_files_are_transposed_on_load() -> None:
    row = et.loads(SMALL)
    col = et.loads('[model]\nvectors = "column"\n' + SMALL.replace("[[1, 2], [3, 4]]", "[[1, 3], [2, 4]]"))
    assert row.params.layers[0].W_V == col.params.layers[0].W_V == ((I(1), I(2)), (I(3), I(4)))
    assert row.forward().value("v") == col.forward().value("v")


def test_numbers_in_files_are_exact() -> None:
    text = SMALL.replace("W_V = [[1, 2], [3, 4]]", 'W_V = [["1/2", 0.25], ["3*sqrt(2)/2", 1e-5]]')
    w = et.loads(text).params.layers[0].W_V
    assert w == ((Rational(1, 2), Rational(1, 4)), (3 * sqrt(2) / 2, Rational(1, 100000)))


def test_claims_keep_the_printed_digits() -> None:
    text = SMALL + '[[claims]]\nname = "weights"\ntoken = "a"\nvalue = [0.50, "0.250"]\nnote = "n"\n'
    claim = et.loads(text).claims[0]
    assert claim.value == ["0.50", "0.250"]
    assert (claim.name, claim.token, claim.layer, claim.head, claim.note) == ("weights", "a", 0, 0, "n")


def test_layers_tables_give_a_stack() -> None:
    text = """
[input]
X = [[1, 0], [0, 1]]
[[layers]]
W_Q = [[1, 0], [0, 1]]
W_K = [[1, 0], [0, 1]]
W_V = [[1, 0], [0, 1]]
W_O = [[1, 0], [0, 1]]
W1 = [[1], [1]]
W2 = [[1, 1]]
[[layers]]
W_Q = [[0, 0], [0, 0]]
W_K = [[0, 0], [0, 0]]
W_V = [[1, 0], [0, 1]]
W_O = [[1, 0], [0, 1]]
W1 = [[1], [-1]]
W2 = [[1, 1]]
"""
    t = et.loads(text).forward()
    assert t.find("out", 1) is not None
    assert t.value("x", 1) == t.value("out", 0)
    # Zero queries: uniform attention, exactly 1/2 each.
    assert t.value("weights", 1, 0) == ((Rational(1, 2), Rational(1, 2)),) * 2


def test_a_lone_layer_norm() -> None:
    t = et.loads('[model]\nnorm = "pre"\n[input]\nx = [[1, 2, 3, 4]]\n').forward()
    assert t.value("ln1_mean", 0) == ((Rational(5, 2),),)
    assert t.value("ln1_var", 0) == ((Rational(5, 4),),)
    halves = (Rational(-3, 2), Rational(-1, 2), Rational(1, 2), Rational(3, 2))
    assert t.value("ln1", 0)[0] == tuple(c * 2 * sqrt(5) / 5 for c in halves)
    assert t.find("q", 0, 0) is None  # nothing else is computed


def test_attention_with_q_k_v_given() -> None:
    text = '[model]\nscale = "none"\n[input]\nq = [[0, 0]]\nk = [[1, 2], [3, 4]]\nv = [[2, 0], [0, 2]]\n'
    t = et.loads(text).forward()
    assert t.value("weights", 0, 0) == ((Rational(1, 2), Rational(1, 2)),)
    assert t.value("z", 0, 0) == ((I(1), I(1)),)


def test_vocab_and_embeddings() -> None:
    text = """
[model]
positional = "learned"
[input]
vocab = ["x", "y", "z"]
tokens = ["z", "x"]
E = [[1, 0], [0, 1], [1, 1]]
[weights]
P = [[0, 1], [1, 0], [2, 2]]
"""
    t = et.loads(text).forward()
    assert t.value("ids", None, None) == ((I(2),), (I(0),))
    assert t.value("x") == ((I(1), I(2)), (I(2), I(0)))


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        (SMALL.replace("W_K = [[1, 0], [0, 1]]\n", ""), "weights.W_K", "W_Q, W_K and W_V"),
        (SMALL.replace("W_K = [[1, 0], [0, 1]]", "W_K = [[1, 0, 0], [0, 1, 0]]"), "weights.W_K",
         "W_Q is 2×2 and W_K is 2×3"),
        (SMALL.replace("X = [[1, 0], [0, 1]]", "X = [[1, 0, 0], [0, 1, 0]]"), "weights.W_Q",
         "x has 3 columns"),
        (SMALL.replace("W_V = [[1, 2], [3, 4]]", "W_V = [[1, 2], [3]]"), "weights.W_V",
         "same non-zero length"),
        (SMALL + "W_1 = [[1]]\n", "weights.W_1", "did you mean 'W1'"),
        ('[model]\nactivation = "relu6"\n' + SMALL, "model.activation", "did you mean 'relu'"),
        ('[model]\nhead = 2\n' + SMALL, "model.head", "did you mean 'heads'"),
        ('[model]\nheads = 3\n' + SMALL, "weights.W_Q", "3 heads cannot split"),
        ('[model]\nnorm_eps = "-1"\n' + SMALL, "model.norm_eps", "negative"),
        ('[model]\ntemperature = 0\n' + SMALL, "model.temperature", "temperature > 0"),
        (SMALL.replace("X = [[1, 0], [0, 1]]", 'X = [[1, "0,5"], [0, 1]]'), "input.X[0][1]", "0,5"),
        (SMALL.replace("X = [[1, 0], [0, 1]]", 'X = [[1, "1..2"], [0, 1]]'), "input.X[0][1]", ""),
        (SMALL.replace("X = [[1, 0], [0, 1]]", 'X = [[1, "1e999999"], [0, 1]]'), "input.X[0][1]", ""),
        (SMALL.replace('tokens = ["a", "b"]', 'tokens = ["a"]'), "input.tokens", "1 tokens"),
        (SMALL + '[[claims]]\nname = "weigths"\nvalue = "1"\n', "claims[0].name", "did you mean 'weights'"),
        (SMALL + '[[claims]]\nname = "weights"\ntoken = "c"\nvalue = "1"\n', "claims[0].token", "'c'"),
        (SMALL + '[[claims]]\nname = "weights"\nhead = 1\nvalue = "1"\n', "claims[0].head", "1 heads"),
        ("[input]\ntokens = [\"a\"]\n", "input", "nothing to compute"),
        ("[input]\nX = [[true]]\n", "input.X[0][0]", ""),
        (f"[input]\nX = [{', '.join(['[1]'] * 300)}]\n", "input.X", "limit"),
    ],
)
def test_bad_files_name_file_key_and_problem(text: str, key: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        et.loads(text, "bad.toml")
    message = str(info.value)
    assert message.startswith(f"bad.toml: {key}: "), message
    assert words in message


def test_errors_are_value_errors() -> None:
    assert issubclass(InputError, ValueError)
