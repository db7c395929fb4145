"""Quantities that published walkthroughs print between the SPEC §3 nodes (issue 16).

Each part builds a small file, checks the exact value of the new node with ``==``, and checks
the verdicts a source's printed numbers get, including the replay through the new node.
"""

from __future__ import annotations

import json

import sympy

import exacttransformer as et
from exacttransformer.check import check

CAT = """
[input]
tokens = ["The", "cat", "slept"]
X = [[1, 0, 1, 0], [0, 1, 1, 0], [0, 1, 0, 1]]
[weights]
W_Q = [[1, 0], [0, 1], [1, 0], [0, 1]]
W_K = [[1, 1], [0, 1], [1, 0], [0, 1]]
W_V = [[1, 0], [1, 0], [0, 1], [0, 1]]
W_O = [[1, 0, 1, 0], [0, 1, 0, 1]]
W1  = [[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 1, 0]]
W2  = [[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]]
"""


def claim(name: str, value: str | list[str], token: str | int | None = None) -> str:
    v = json.dumps(value)
    where = f"token = {json.dumps(token)}\n" if token is not None else ""
    return f'[[claims]]\nname = "{name}"\n{where}value = {v}\n'


def verdicts(text: str) -> list[str]:
    return [c.verdict for c in check(et.loads(text, "t.toml")).claims]


# --- 3. the reciprocal scale 1/sqrt(d_k) is the node `scale` ------------------------------------

def test_the_reciprocal_scale_is_its_own_printed_number() -> None:
    trace = et.loads(CAT, "t.toml").forward()
    assert trace.value("scale", 0) == ((sympy.sqrt(2) / 2,),)
    text = CAT + claim("sqrt_dk", "1.414") + claim("scale", "0.707")
    assert verdicts(text) == ["rounded", "rounded"]


def test_scores_multiplied_by_a_printed_reciprocal_drift_from_it() -> None:
    # 3 · 0.71 = 2.13, where 3/sqrt(2) = 2.1213…: the source multiplied by its own 0.71.
    text = CAT + claim("scale", "0.71") + claim("scaled_scores", ["2.13", "1.42", "1.42"], "cat")
    report = check(et.loads(text, "t.toml"))
    assert [c.verdict for c in report.claims] == ["rounded", "drift"]
    assert report.claims[1].rests_on_names == ("scale",)
    # The same numbers with no printed scale to rest on are wrong.
    assert verdicts(CAT + claim("scaled_scores", ["2.13", "1.42", "1.42"], "cat")) == ["wrong"]


# --- 5. the update itself: delta.<param> = −learning_rate · grad.<param> ------------------------

HEAD = """
[model]
learning_rate = "1/2"
[input]
final = [[1, 2]]
target = 0
[weights]
W_U = [[1, 0], [0, 1]]
"""


def test_delta_is_minus_the_learning_rate_times_the_gradient() -> None:
    text = HEAD + claim("delta.W_U", ["0", "0"], 0)
    trace = et.loads(text, "t.toml").forward()
    grad = trace.value("grad.W_U", None, None)
    delta = trace.value("delta.W_U", None, None)
    new = trace.value("new.W_U", None, None)
    half = sympy.Rational(1, 2)
    assert delta == tuple(tuple(-half * g for g in row) for row in grad)
    assert all(sympy.simplify(n - (w + d)) == 0 for rn, rw, rd in
               zip(new, ((1, 0), (0, 1)), delta, strict=True)
               for n, w, d in zip(rn, rw, rd, strict=True))
    # Without a claim on it there is no delta node, and new.W_U is W_U − lr · grad as before.
    plain = et.loads(HEAD, "t.toml").forward()
    assert plain.find("delta.W_U", None, None) is None
    assert plain.find("new.W_U", None, None).formula == "W_U − learning_rate · grad.W_U"


def test_a_printed_update_is_carried_into_the_new_weight() -> None:
    # grad.W_U[0] = [-0.731…, 0.731…]; printed -0.7 and 0.7, so delta = 0.35 (exact 0.3655…)
    # and the new weight 1.35: both drift from the source's own rounded gradient.
    text = (HEAD + claim("grad.W_U", ["-0.7", "0.7"], 0) + claim("delta.W_U", ["0.35", "-0.35"], 0)
            + claim("new.W_U", ["1.35", "-0.35"], 0))
    report = check(et.loads(text, "t.toml"))
    assert [c.verdict for c in report.claims] == ["rounded", "drift", "drift"]
    assert report.claims[2].rests_on_names == ("delta.W_U",)


def test_an_update_of_an_unknown_weight_is_refused_with_the_valid_names() -> None:
    import pytest

    from exacttransformer.errors import InputError

    with pytest.raises(InputError) as info:
        et.loads(HEAD + claim("delta.W_X", "0"), "t.toml")
    assert "claims[0].name" in str(info.value) and "W_U" in str(info.value)
