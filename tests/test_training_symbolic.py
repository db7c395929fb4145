"""A gradient checked against sympy's own derivative of the exact loss (a case small enough
for ``sympy.diff`` and ``simplify``): the unembedding of a given final state."""

from __future__ import annotations

import sympy

import exacttransformer as et

TOML = """
[model]
temperature = "1/2"

[input]
vocab = ["a", "b", "c"]
target = "c"
final = [[1, 2], [0, 1]]

[weights]
W_U = [[1, 0, 2], [0, 1, 1]]
"""


def test_grad_W_U_is_sympys_derivative_of_the_loss() -> None:
    walk = et.loads(TOML, "head.toml")
    trace = walk.forward()
    grad = trace.value("grad.W_U", None, None)
    final = ((1, 2), (0, 1))
    base = [[sympy.Integer(x) for x in row] for row in ((1, 0, 2), (0, 1, 1))]
    t = sympy.Rational(1, 2)
    for i in range(2):
        for j in range(3):
            w = sympy.Symbol("w")
            W = [row[:] for row in base]
            W[i][j] = w
            logits = [sum(final[-1][k] * W[k][c] for k in range(2)) / t for c in range(3)]
            loss = -sympy.log(sympy.exp(logits[2]) / sum(sympy.exp(x) for x in logits))
            derivative = sympy.diff(loss, w).subs(w, base[i][j])
            assert sympy.simplify(derivative - grad[i][j]) == 0, (i, j)
