"""Quantities that published walkthroughs print between the SPEC §3 nodes (issue 16).

Each part builds a small file, checks the exact value of the new node with ``==``, and checks
the verdicts a source's printed numbers get, including the replay through the new node.
"""

from __future__ import annotations

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


def claim(name: str, value: str | list[str], token: str | None = None) -> str:
    v = f'"{value}"' if isinstance(value, str) else "[" + ", ".join(f'"{x}"' for x in value) + "]"
    where = f'token = "{token}"\n' if token is not None else ""
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
