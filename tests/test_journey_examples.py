"""Seed 004's itinerary (its items 1-17), step by step, in the journey worked examples.

Each test loads a worked example with the public API, checks that the nodes standing for an
item of the itinerary are in the trace with exact (sympy) values, and re-derives some of those
values here from the file's own numbers (read with :mod:`tomllib`, not the library's loader):
a matrix product with sympy, a softmax row summing to exactly 1, an argmax, a BPE trainer of
a dozen lines.  Orderings between exact numbers (which word is most probable) are decided by
evaluating the exact difference to 60 significant digits and asking for a margin of 10^-30,
far above that evaluation's error: no float tolerance on an exact value.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sympy

import exacttransformer as et
from exacttransformer.graph.trace import Trace

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "worked_examples"
JOURNEYS = sorted(EXAMPLES.glob("journey_*.toml"))
STORM = EXAMPLES / "journey_storm.toml"

# Seed 004's "travel itinerary" (section 17), item by item, and the nodes that show it in
# journey_storm.toml (the mapping is the comment block at the top of that file).  Items 10
# and 12 are "residual + norm": the storm model has no norm (its exact forms would grow past
# printing), so the norms are shown in journey_training_step.toml (NORM_ITEMS).
ITINERARY: dict[int, tuple[str, tuple[str, ...]]] = {
    1: ("Tokenization: text -> token IDs", ("ids",)),
    2: ("Embedding lookup: token ID -> vector via matrix E", ("embed",)),
    3: ("Positional encoding: inject order information", ("pos", "x")),
    4: ("Layer loop begins", ("x",)),
    5: ("Compute Q/K/V: multiply by W_Q/W_K/W_V", ("q", "k", "v")),
    6: ("Similarity scores: dot(q_current, k_past)", ("scores", "scaled_scores")),
    7: ("Softmax: scores -> attention probabilities", ("exp_scores", "exp_sum", "weights")),
    8: ("Weighted sum: values blended by those probabilities", ("z",)),
    9: ("Combine heads: concatenate + projection W_O", ("concat", "attn_out")),
    10: ("Residual + norm", ("resid_mid",)),
    11: ("MLP transform via W1/W2", ("ffn_pre", "ffn_act", "ffn_out")),
    12: ("Residual + norm again", ("resid_post", "out")),
    13: ("Repeat steps 5-12 across many layers", ("q", "weights", "z", "out")),
    14: ("Final projection: hidden state -> logits via W_U", ("final", "logits")),
    15: ("Softmax: logits -> probability distribution over vocabulary",
         ("scaled_logits", "exp_logits", "exp_logits_sum", "probs")),
    16: ("Decoding: choose next token by argmax or sampling",
         ("greedy", "top_k_probs", "top_p_sorted", "top_p_cumsum", "top_p_probs", "sample_cdf",
          "sample")),
    17: ("Append token, and the process repeats", ("gen.1", "gen.2")),
}
PER_LAYER = {"x", "q", "k", "v", "scores", "scaled_scores", "exp_scores", "exp_sum", "weights",
             "z", "concat", "attn_out", "resid_mid", "ffn_pre", "ffn_act", "ffn_out",
             "resid_post", "out"}
PER_HEAD = {"q", "k", "v", "scores", "scaled_scores", "exp_scores", "exp_sum", "weights", "z"}
NORM_ITEMS = {10: ("ln1_mean", "ln1_var", "ln1"), 12: ("ln2_mean", "ln2_var", "ln2")}


# --- helpers: the file's numbers, exact checks -----------------------------------------------


def raw(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


def number(x: object) -> sympy.Expr:
    """A file's integer or plain fraction/decimal string ("1/2", "0.42") as a sympy Rational."""
    return sympy.Rational(str(x))


def matrix(rows: Sequence[Sequence[object]]) -> sympy.Matrix:
    return sympy.Matrix([[number(x) for x in r] for r in rows])


def as_matrix(value: Sequence[Sequence[Any]]) -> sympy.Matrix:
    return sympy.Matrix([list(r) for r in value])


def exactly_equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """The same number: the difference, over a common denominator, expands to exactly 0."""
    if a == b or sympy.expand(a - b) == 0:
        return True
    return sympy.expand(sympy.fraction(sympy.together(a - b))[0]) == 0


def equal_matrices(a: sympy.Matrix, b: sympy.Matrix) -> bool:
    return a.shape == b.shape and all(exactly_equal(x, y) for x, y in zip(a, b, strict=True))


def sums_to_one(row: Sequence[sympy.Expr]) -> bool:
    """Over a common denominator, the numerator equals the denominator."""
    num, den = sympy.fraction(sympy.together(sympy.Add(*row)))
    return sympy.expand(num - den) == 0


MARGIN = sympy.Rational(1, 10**30)


def sign(x: sympy.Expr) -> int:
    """The sign of an exact number, decided with a wide margin (see the module docstring)."""
    if x == 0:
        return 0
    value = sympy.N(x, 60)
    assert abs(value) > MARGIN, f"too close to 0 to decide with this margin: {x}"
    return 1 if value > 0 else -1


def greater(a: sympy.Expr, b: sympy.Expr) -> bool:
    return sign(a - b) > 0


def all_exact(value: Sequence[Sequence[Any]]) -> bool:
    return all(isinstance(x, sympy.Basic) for row in value for x in row)


@pytest.fixture(scope="module")
def storm() -> Trace:
    return et.load(STORM).forward()


# --- the itinerary, item by item ----------------------------------------------------------------


@pytest.mark.parametrize("item", sorted(ITINERARY), ids=[f"item{i}" for i in sorted(ITINERARY)])
def test_itinerary_item_is_in_the_storm_journey_exactly(storm: Trace, item: int) -> None:
    _, names = ITINERARY[item]
    layers = [1] if item == 13 else [0, 1] if item == 4 else [0]
    for name in names:
        for layer in layers if name in PER_LAYER else [None]:
            heads = [0, 1] if name in PER_HEAD else [None]
            for head in heads:
                step = storm.find(name, layer, head)
                assert step is not None and (step.layer, step.head) == (layer, head), \
                    (item, name, layer, head)
                assert step.value and all_exact(step.value), (item, name)


def documented_items() -> dict[int, str]:
    """The mapping written in journey_storm.toml's opening comment: item number -> its text."""
    lines = STORM.read_text(encoding="utf-8").splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("# The 17 steps"))
    block = []
    for ln in lines[start + 1:]:
        if ln.strip() == "#" or not ln.startswith("#"):
            break
        block.append(ln[1:])
    parts = re.split(r"(?:^|\s)(\d{1,2}) (?=[A-Za-z/+ -]+:)", " ".join(block))
    return {int(n): text.strip() for n, text in zip(parts[1::2], parts[2::2], strict=True)}


def test_the_storm_file_documents_all_seventeen_items() -> None:
    items = documented_items()
    assert sorted(items) == list(range(1, 18))
    for item, (_, names) in ITINERARY.items():
        shown = "layer 1" if item in (4, 13) else names[0]
        assert shown in items[item], (item, items[item])


def test_norms_of_items_10_and_12_are_in_the_training_journey() -> None:
    trace = et.load(EXAMPLES / "journey_training_step.toml").forward()
    for item, names in NORM_ITEMS.items():
        for name in names:
            step = trace.find(name, 0, None)
            assert step is not None and all_exact(step.value), (item, name)
    for name in ("lnf_mean", "lnf_var", "lnf", "loss", "grad.logits", "grad.E", "new.E"):
        step = trace.find(name, None, None)
        assert step is not None and all_exact(step.value), name
    # a layer norm's output has mean exactly 0 in every row (gamma 1, beta 0 by default)
    for row in trace.value("ln1", 0, None):
        assert exactly_equal(sympy.Add(*row), sympy.Integer(0))
    # grad.logits = probs - onehot(target) on the last row: the very same closed form off the
    # target (these forms have thousands of symbols, too many to simplify in a test), and a
    # number strictly between -1 and 0 at the target, decided with the margin of ``sign``
    data = raw(EXAMPLES / "journey_training_step.toml")
    target = data["input"]["vocab"].index(data["input"]["target"])
    probs = trace.value("probs", None, None)[-1]
    grad = trace.value("grad.logits", None, None)[-1]
    for j, (p, g) in enumerate(zip(probs, grad, strict=True)):
        if j != target:
            assert g == p
    assert sign(grad[target]) < 0 < sign(grad[target] + 1)  # p - 1 lies in (-1, 0)
    assert all(g == 0 for g in trace.value("grad.logits", None, None)[0])  # not the last row


# --- exact facts of the storm journey, derived here ------------------------------------------


def test_tokens_embeddings_positions(storm: Trace) -> None:
    data = raw(STORM)
    vocab, tokens = data["input"]["vocab"], data["input"]["tokens"]
    ids = [vocab.index(t) for t in tokens]
    assert storm.value("ids", None, None) == tuple((i,) for i in ids)
    E, P = matrix(data["input"]["E"]), matrix(data["weights"]["P"])
    embed = sympy.Matrix([list(E.row(i)) for i in ids])
    assert as_matrix(storm.value("embed", None, None)) == embed
    assert as_matrix(storm.value("pos", None, None)) == P[:len(tokens), :]
    assert as_matrix(storm.value("x", 0, None)) == embed + P[:len(tokens), :]


def test_attention_of_both_layers(storm: Trace) -> None:
    data = raw(STORM)
    d_head = 2
    for layer, weights in enumerate(data["layers"]):
        x = as_matrix(storm.value("attn_in", layer, None))
        zs = []
        for head in range(2):
            cols = slice(head * d_head, (head + 1) * d_head)
            q = x * matrix(weights["W_Q"])[:, cols]
            k = x * matrix(weights["W_K"])[:, cols]
            v = x * matrix(weights["W_V"])[:, cols]
            assert equal_matrices(as_matrix(storm.value("q", layer, head)), q)
            assert equal_matrices(as_matrix(storm.value("k", layer, head)), k)
            assert equal_matrices(as_matrix(storm.value("v", layer, head)), v)
            assert equal_matrices(as_matrix(storm.value("scores", layer, head)), q * k.T)
            scaled = as_matrix(storm.value("scaled_scores", layer, head))
            assert equal_matrices(scaled, q * k.T / sympy.sqrt(d_head))
            weights_ = storm.value("weights", layer, head)
            for i, row in enumerate(weights_):
                assert all(w == 0 for w in row[i + 1:])  # the causal mask: exactly 0
                assert sums_to_one(row[:i + 1])
                expected = [sympy.exp(s) / sympy.Add(*(sympy.exp(t) for t in scaled.row(i)[:i + 1]))
                            for s in scaled.row(i)[:i + 1]]
                assert all(exactly_equal(w, e) for w, e in zip(row, expected, strict=False))
            z = as_matrix(weights_) * v
            assert equal_matrices(as_matrix(storm.value("z", layer, head)), z)
            zs.append(z)
        concat = zs[0].row_join(zs[1])
        assert equal_matrices(as_matrix(storm.value("concat", layer, None)), concat)
        attn_out = concat * matrix(weights["W_O"])
        assert equal_matrices(as_matrix(storm.value("attn_out", layer, None)), attn_out)
        assert equal_matrices(as_matrix(storm.value("resid_mid", layer, None)), x + attn_out)
    # layer 0's queries are 0, so each token averages the tokens so far: 1; 1/2, 1/2; 1/3 ×3
    assert storm.value("weights", 0, 0)[2] == (sympy.Rational(1, 3),) * 3


def test_feed_forward_residual_and_the_layer_loop(storm: Trace) -> None:
    data = raw(STORM)
    for layer, weights in enumerate(data["layers"]):
        mid = as_matrix(storm.value("resid_mid", layer, None))
        pre = mid * matrix(weights["W1"])
        assert equal_matrices(as_matrix(storm.value("ffn_pre", layer, None)), pre)
        act = pre.applyfunc(lambda h: h if sign(h) > 0 else sympy.Integer(0))  # ReLU
        assert equal_matrices(as_matrix(storm.value("ffn_act", layer, None)), act)
        out = mid + act * matrix(weights["W2"])
        assert equal_matrices(as_matrix(storm.value("resid_post", layer, None)), out)
        assert equal_matrices(as_matrix(storm.value("out", layer, None)), out)  # no norm
    assert storm.value("x", 1, None) == storm.value("out", 0, None)  # item 13: the loop
    assert storm.value("final", None, None) == storm.value("out", 1, None)


def test_logits_softmax_and_decoding(storm: Trace) -> None:
    data = raw(STORM)
    vocab = data["input"]["vocab"]
    final = as_matrix(storm.value("final", None, None))
    assert equal_matrices(as_matrix(storm.value("logits", None, None)),
                          final * matrix(data["weights"]["W_U"]))
    probs = storm.value("probs", None, None)
    logits = storm.value("logits", None, None)
    for row, lrow in zip(probs, logits, strict=True):
        assert sums_to_one(row)
        total = sympy.Add(*(sympy.exp(x) for x in lrow))
        assert all(exactly_equal(p, sympy.exp(x) / total) for p, x in zip(row, lrow, strict=True))
    last = probs[-1]
    best = max(range(len(vocab)), key=lambda j: sympy.N(last[j], 60))
    assert all(greater(last[best], last[j]) for j in range(len(vocab)) if j != best)
    assert storm.value("greedy", None, None) == ((best,),)
    assert vocab[best] == "coming"

    ranked = sorted(range(len(vocab)), key=lambda j: -sympy.N(last[j], 60))
    k = data["decoding"]["top_k"]
    assert greater(last[ranked[k - 1]], last[ranked[k]])  # no tie at the boundary here
    kept = set(ranked[:k])
    top_k = storm.value("top_k_probs", None, None)[0]
    assert {j for j, p in enumerate(top_k) if p != 0} == kept and sums_to_one(top_k)

    p = number(data["decoding"]["top_p"])
    running = [sympy.Add(*(last[j] for j in ranked[:n + 1])) for n in range(len(vocab))]
    size = next(n + 1 for n, s in enumerate(running) if sign(s - p) >= 0)
    assert all(sign(s - p) < 0 for s in running[:size - 1])
    top_p = storm.value("top_p_probs", None, None)[0]
    assert {j for j, q in enumerate(top_p) if q != 0} == set(ranked[:size]) and sums_to_one(top_p)
    sorted_ = storm.value("top_p_sorted", None, None)[0]
    assert all(exactly_equal(s, last[j]) for s, j in zip(sorted_, ranked, strict=True))

    both = storm.value("filtered_probs", None, None)[0]
    assert {j for j, q in enumerate(both) if q != 0} == kept & set(ranked[:size])
    cdf = storm.value("sample_cdf", None, None)[0]
    assert all(exactly_equal(c, sympy.Add(*both[:j + 1])) for j, c in enumerate(cdf))
    u = number(data["decoding"]["u"][0])
    drawn = next(j for j, c in enumerate(cdf) if sign(c - u) > 0)
    assert storm.value("sample", None, None) == ((drawn,),)


def test_append_the_token_and_run_again(storm: Trace) -> None:
    """Item 17: gen.2 is the next-word distribution after appending gen.1's token; computed
    here by running the model again, from scratch, on the longer prompt."""
    data = raw(STORM)
    vocab = data["input"]["vocab"]
    gen1 = storm.value("gen.1", None, None)[0]
    assert all(exactly_equal(a, b) for a, b in zip(gen1, storm.value("probs", None, None)[-1],
                                                   strict=True))
    chosen = storm.value("sample", None, None)[0][0]  # pass 1 samples with u[0]
    assert f"appends {chosen} ({vocab[chosen]!r})" in storm.get("gen.1", None, None).formula
    text = STORM.read_text(encoding="utf-8")
    longer = text.replace('tokens = ["The", "storm", "is"]',
                          f'tokens = ["The", "storm", "is", "{vocab[chosen]}"]')
    longer = longer.split("[decoding]")[0]
    assert longer != text
    again = et.loads(longer, "longer.toml").forward().value("probs", None, None)[-1]
    gen2 = storm.value("gen.2", None, None)[0]
    assert all(exactly_equal(a, b) for a, b in zip(gen2, again, strict=True))
    assert sums_to_one(gen2)


# --- the other journeys -----------------------------------------------------------------------


def bpe_train(corpus: str, merges: int) -> tuple[list[list[int]], list[tuple[str, str]]]:
    """Counts per round (pairs in first-seen order) and the merged pairs: the most frequent
    pair wins, a tie goes to the pair seen first, words never merge across spaces."""
    words = [list(w) for w in corpus.split()]
    counts, merged = [], []
    for _ in range(merges):
        seen: dict[tuple[str, str], int] = {}
        for w in words:
            for pair in zip(w, w[1:], strict=False):
                seen[pair] = seen.get(pair, 0) + 1
        counts.append(list(seen.values()))
        best = max(seen, key=lambda pair: seen[pair])  # max keeps the first of equals
        merged.append(best)
        words = [merge(w, best) for w in words]
    return counts, merged


def merge(word: list[str], pair: tuple[str, str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def test_bpe_walk_reaches_learn_ing() -> None:
    path = EXAMPLES / "journey_bpe.toml"
    data = raw(path)["input"]
    trace = et.load(path).forward()
    counts, merged = bpe_train(data["corpus"], data["merges"])
    for r, expected in enumerate(counts, start=1):
        assert [int(c) for c in trace.value(f"bpe.merge.{r}", None, None)[0]] == expected
    assert merged[:2] == [("n", "g"), ("i", "ng")]  # the guide's order: "ng", then "ing"
    pieces = []
    for w, word in enumerate(data["text"].split()):
        encoded = list(word)
        for pair in merged:
            encoded = merge(encoded, pair)
        ids = trace.value(f"bpe.word.{w}", None, None)[0]
        assert tuple(trace.vocab[int(i)] for i in ids) == tuple(encoded)
        pieces.append(encoded)
    assert pieces[0] == ["learn", "ing"]
    assert trace.tokens == tuple(p for word in pieces for p in word)


def test_position_tables() -> None:
    d, base = 4, 10000
    standard = et.load(EXAMPLES / "journey_positions_sinusoidal.toml").forward()
    guide = et.load(EXAMPLES / "journey_positions_guide.toml").forward()
    for p in range(4):
        for j in range(d):
            fn = sympy.sin if j % 2 == 0 else sympy.cos
            pair = sympy.Integer(p) / sympy.Integer(base) ** sympy.Rational(j - j % 2, d)
            own = sympy.Integer(p) / sympy.Integer(base) ** sympy.Rational(j, d)
            assert exactly_equal(standard.value("pos", None, None)[p][j], fn(pair))
            assert exactly_equal(guide.value("pos", None, None)[p][j], fn(own))
    assert standard.value("pos", None, None)[0] == (0, 1, 0, 1)


def test_rope_scores_depend_on_distance_only() -> None:
    trace = et.load(EXAMPLES / "journey_positions_rope.toml").forward()
    scores = trace.value("scores", 0, 0)
    expected = sympy.cos(1) + sympy.cos(sympy.Rational(1, 100))
    for a, b in ((0, 1), (2, 3)):
        assert sympy.simplify(sympy.expand_trig(scores[a][b] - expected)) == 0


def test_decoding_comparison_reports_the_tie() -> None:
    path = EXAMPLES / "journey_decoding.toml"
    data = raw(path)
    trace = et.load(path).forward()
    vocab = data["input"]["vocab"]
    logits = [number(x) for x in data["input"]["logits"][0]]
    T = number(data["model"]["temperature"])
    total = sympy.Add(*(sympy.exp(x / T) for x in logits))
    probs = trace.value("probs", None, None)[0]
    assert all(exactly_equal(p, sympy.exp(x / T) / total) for p, x in zip(probs, logits,
                                                                          strict=True))
    assert probs[vocab.index("over")] == probs[vocab.index("here")]  # the exact tie
    assert trace.value("greedy", None, None) == ((logits.index(max(logits)),),)
    top_k = trace.value("top_k_probs", None, None)[0]
    assert {vocab[j] for j, p in enumerate(top_k) if p != 0} == {"coming", "over"}
    assert "tie at the boundary" in trace.get("top_k_probs", None, None).formula


def test_geometry_king_minus_man_plus_woman() -> None:
    path = EXAMPLES / "journey_geometry.toml"
    data = raw(path)["input"]
    trace = et.load(path).forward()
    E = matrix(data["E"])
    vocab = data["vocab"]
    king, man, woman = (E.row(vocab.index(w)) for w in data["analogy"])
    analogy = king - man + woman
    assert as_matrix(trace.value("analogy", None, None)) == analogy

    def cos(a: sympy.Matrix, b: sympy.Matrix) -> sympy.Expr:
        return a.dot(b) / (sympy.sqrt(a.dot(a)) * sympy.sqrt(b.dot(b)))

    cosines = [cos(analogy, E.row(j)) for j in range(len(vocab))]
    assert all(exactly_equal(a, b) for a, b in zip(trace.value("analogy_cosine", None, None)[0],
                                                   cosines, strict=True))
    allowed = [j for j in range(len(vocab)) if vocab[j] not in data["analogy"]]
    best = max(allowed, key=lambda j: sympy.N(cosines[j], 60))
    assert all(greater(cosines[best], cosines[j]) for j in allowed if j != best)
    assert trace.value("analogy_nearest", None, None) == ((best,),) and vocab[best] == "queen"
    assert trace.value("cosine", None, None)[0][2] == 7 * sympy.sqrt(65) / 65  # king, man


# --- the command line -----------------------------------------------------------------------


@pytest.mark.parametrize("path", JOURNEYS, ids=[p.stem for p in JOURNEYS])
def test_walkthrough_prints_every_node(path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "exacttransformer", "walkthrough", str(path)],
                         capture_output=True, text=True, check=False, timeout=1800)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    names = et.load(path).forward().names()
    assert names
    for name in names:
        assert f". {name}" in run.stdout, name  # each step's heading: "12. name[...]"
