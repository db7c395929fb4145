"""Embedding geometry: exact cosine similarity and the analogy king − man + woman.

Cosines keep their square roots (``7*sqrt(65)/65``, not 0.868…) and are compared with ``==``;
the nearest word is found by proven comparisons, so a difference far below float64's
resolution still decides it, and an exact tie goes to the lower id and is reported.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy

from exacttransformer.cli import main
from exacttransformer.errors import ComputationError
from exacttransformer.exact.backends import EXACT
from exacttransformer.exact.printing import to_float
from exacttransformer.io.files import load, loads
from exacttransformer.steps.geometry import analogy, cosine, cosine_matrix, nearest

R, sqrt = sympy.Rational, sympy.sqrt
ROOT = Path(__file__).parent.parent
GEOMETRY = ROOT / "worked_examples" / "journey_geometry.toml"


def vec(*xs: object) -> tuple[sympy.Expr, ...]:
    return tuple(sympy.Integer(x) if isinstance(x, int) else x for x in xs)  # type: ignore[misc]


# --- cosine --------------------------------------------------------------------------------------


@pytest.mark.parametrize("v", [vec(1, 2), vec(3, 0, 4), vec(sqrt(2), 1), vec(R(1, 3), -5, 7)])
def test_a_vector_with_itself_has_cosine_exactly_1(v: tuple[sympy.Expr, ...]) -> None:
    assert cosine(EXACT, v, v) == 1


def test_cosines_by_hand() -> None:
    assert cosine(EXACT, vec(1, 0), vec(1, 1)) == sqrt(2) / 2  # 45 degrees
    assert cosine(EXACT, vec(1, 0), vec(0, 5)) == 0  # orthogonal
    assert cosine(EXACT, vec(1, 2), vec(-2, -4)) == -1  # opposite
    assert cosine(EXACT, vec(1, 0), vec(1, sqrt(3))) == R(1, 2)  # 60 degrees
    assert cosine(EXACT, vec(3, 1), vec(1, 1)) == 2 * sqrt(5) / 5  # 4 / (sqrt(10) sqrt(2))


def test_cosine_ignores_length() -> None:
    a, b = vec(1, 2, 2), vec(2, -1, 3)
    assert cosine(EXACT, a, b) == cosine(EXACT, a, tuple(7 * x for x in b))
    assert cosine(EXACT, a, b) == cosine(EXACT, b, a)


def test_a_zero_vector_has_no_direction() -> None:
    with pytest.raises(ComputationError, match="zero vector"):
        cosine(EXACT, vec(0, 0), vec(1, 1))


# --- the worked example ------------------------------------------------------------------------


def test_worked_example_cosines_are_exact() -> None:
    t = load(GEOMETRY).forward()
    c = t.value("cosine", None, None)  # king, queen, man, woman
    assert [c[i][i] for i in range(4)] == [1, 1, 1, 1]
    assert c[0][1] == R(9, 13)  # king·queen = 9, |king| = |queen| = sqrt(13)
    assert c[0][2] == 7 * sqrt(65) / 65  # king·man = 7 / (sqrt(13) sqrt(5))
    assert c[2][3] == R(1, 5)
    assert all(c[i][j] == c[j][i] for i in range(4) for j in range(4))


def test_king_minus_man_plus_woman_is_queen() -> None:
    w = load(GEOMETRY)
    t = w.forward()
    E = w.params.E
    assert E is not None
    assert t.value("analogy", None, None) == (vec(3, 0, 2),) == (E[1],)  # queen's own row
    sims = t.value("analogy_cosine", None, None)[0]
    assert sims[1] == 1
    assert sims[5] == 5 * sqrt(26) / 26  # princess: the runner-up, 0.98
    assert t.value("analogy_nearest", None, None) == ((1,),)
    assert "'queen'" in t.get("analogy_nearest", None, None).formula
    assert "tied" not in t.get("analogy_nearest", None, None).formula


def test_the_question_words_are_left_out() -> None:
    # woman − man + man = woman: without the exclusion the answer would be a question word
    E = (vec(1, 0), vec(0, 1), vec(1, 1), vec(2, 1))
    v = analogy(EXACT, E, 0, 1, 1)
    assert v == vec(1, 0)
    assert nearest(EXACT, v, E) == (0, (0,))
    assert nearest(EXACT, v, E, exclude=(0, 1)) == (3, (3,))  # (2, 1) beats (1, 1)


# --- proven comparisons, ties ------------------------------------------------------------------


def test_a_difference_below_float64_resolution_is_still_decided() -> None:
    # cos((N, 1), (1, 0)) = N / sqrt(N² + 1): for N = 10⁹ and 10⁹ + 1 both round to 1.0 in
    # float64, but the second is larger (by about 10⁻²⁷), and the proof finds it.
    n = 10**9
    E = (vec(n, 1), vec(n + 1, 1))
    sims = cosine_matrix(EXACT, (vec(1, 0),), E)[0]
    assert to_float(sims[0]) == to_float(sims[1]) == 1.0
    assert nearest(EXACT, vec(1, 0), E) == (1, (1,))


def test_an_exact_tie_goes_to_the_lower_id_and_is_reported() -> None:
    E = (vec(0, 5), vec(1, 2), vec(2, 1))  # (1, 2) and (2, 1) are equally close to (1, 1)
    assert nearest(EXACT, vec(1, 1), E) == (1, (1, 2))
    text = """
[input]
vocab = ["king", "man", "woman", "north", "east", "south"]
tokens = ["king"]
E = [[2, 2], [1, 0], [0, 1], [1, 2], [2, 1], [0, -3]]
analogy = ["king", "man", "woman"]
"""
    t = loads(text).forward()
    assert t.value("analogy", None, None) == (vec(1, 3),)
    # cos with north (1, 2) and east (2, 1): 7/sqrt(50) and 5/sqrt(50): north, no tie
    assert t.value("analogy_nearest", None, None) == ((3,),)
    again = loads(text.replace('"woman"]', '"king"]')).forward()
    # king − man + king = (3, 4): north (1, 2) gives 11/(5 sqrt 5), east (2, 1) 10/(5 sqrt 5)
    assert again.value("analogy_nearest", None, None) == ((3,),)
    square = loads(text.replace("[2, 2], [1, 0], [0, 1]", "[1, 1], [1, 0], [1, 0]")).forward()
    # king − man + woman = (1, 1): north and east tie exactly; the lower id wins, named
    assert square.value("analogy_nearest", None, None) == ((3,),)
    formula = square.get("analogy_nearest", None, None).formula
    assert "'north'" in formula and "tied: 'north', 'east' (the lowest id wins)" in formula


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("analogy", "words"), [
    ('["king", "man", "womann"]', "'womann' is not in the vocabulary"),
    ('["king", "man"]', "expected three words"),
    ('"king - man + woman"', "expected three words"),
])
def test_bad_analogy_exits_2_naming_file_and_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], analogy: str, words: str) -> None:
    path = tmp_path / "geometry.toml"
    path.write_text(GEOMETRY.read_text().replace('analogy = ["king", "man", "woman"]',
                                                 f"analogy = {analogy}"))
    assert main(["walkthrough", str(path)]) == 2
    err = capsys.readouterr().err
    assert "geometry.toml" in err and "input.analogy" in err and words in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_analogy_needs_embeddings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "no_e.toml"
    path.write_text('[input]\nX = [[1, 0]]\nanalogy = ["king", "man", "woman"]\n')
    assert main(["walkthrough", str(path)]) == 2
    err = capsys.readouterr().err
    assert "no_e.toml" in err and "input.analogy" in err
