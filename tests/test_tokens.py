"""Tokens: the vocabulary lookup (``ids``) and the toy byte-pair encoder (``bpe.*``).

Hand-checkable cases first (each says how it was counted), then the BPE walk of the guide
through a whole walkthrough file, then hypothesis properties that recount every merge
independently with :class:`collections.Counter`.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exacttransformer.errors import InputError
from exacttransformer.io.files import loads
from exacttransformer.steps.tokens import (
    Merge,
    bpe_vocabulary,
    encode_word,
    explicit_merges,
    lookup,
    tokenize,
    train_bpe,
    words_of,
)

GUIDE_CORPUS = "learning learning learn learned sang song long young thing king ring"

# --- the vocabulary lookup -----------------------------------------------------------------


def test_lookup_gives_each_tokens_row() -> None:
    assert lookup(["storm", "The", "storm"], ["The", "storm", "is"]) == (1, 0, 1)


def test_lookup_takes_the_first_of_repeated_entries() -> None:
    assert lookup(["x"], ["y", "x", "x"]) == (1,)


def test_unknown_token_without_unk_is_a_clear_error() -> None:
    with pytest.raises(InputError) as info:
        lookup(["The", "rain"], ["The", "storm"])
    assert info.value.key == "input.tokens"
    assert "'rain'" in str(info.value) and "no unk token is declared" in str(info.value)


def test_unknown_token_with_unk_gets_the_unk_row() -> None:
    assert lookup(["The", "rain", "storm"], ["<unk>", "The", "storm"], unk="<unk>") == (1, 0, 2)


def test_a_known_token_never_becomes_unk() -> None:
    assert lookup(["<unk>", "a"], ["a", "<unk>"], unk="<unk>") == (1, 0)


def test_an_unk_outside_the_vocabulary_is_named_as_the_problem() -> None:
    with pytest.raises(InputError) as info:
        lookup(["rain"], ["The", "storm"], unk="<unk>")
    assert info.value.key == "input.unk"
    assert "'<unk>'" in str(info.value)


# --- BPE training: counted by hand -----------------------------------------------------------


def test_words_are_split_at_whitespace_and_repeats_kept() -> None:
    assert words_of("ab  ab\tabc\n") == ["ab", "ab", "abc"]
    assert words_of(["ab ab", "abc"]) == ["ab", "ab", "abc"]


def test_merges_learned_from_a_small_corpus() -> None:
    # "ab ab abc": a b occurs 3 times (twice in "ab", once in "abc"), b c once -> ab;
    # then only "ab c" has two symbols: ab c once -> abc; then no pair is left.
    merges = train_bpe("ab ab abc", 5)
    assert [(m.rank, m.left, m.right, m.count) for m in merges] == [
        (1, "a", "b", 3), (2, "ab", "c", 1)]
    assert merges[0].pairs == ((("a", "b"), 3), (("b", "c"), 1))
    assert merges[0].tied == ()
    assert merges[1].pairs == ((("ab", "c"), 1),)


def test_a_word_that_occurs_twice_counts_twice() -> None:
    # "cd" twice beats "ab" once, although a b is seen first.
    merges = train_bpe("ab cd cd", 1)
    assert (merges[0].left, merges[0].right, merges[0].count) == ("c", "d", 2)
    assert merges[0].pairs == ((("a", "b"), 1), (("c", "d"), 2))


def test_ties_go_to_the_pair_seen_first_not_the_alphabetically_first() -> None:
    # x y and y x are both seen once: the one read first wins, whichever it is.
    first = train_bpe("yx xy", 1)[0]
    assert (first.left, first.right, first.tied) == ("y", "x", (("x", "y"),))
    second = train_bpe("xy yx", 1)[0]
    assert (second.left, second.right, second.tied) == ("x", "y", (("y", "x"),))


def test_training_stops_when_no_word_has_two_symbols() -> None:
    assert train_bpe("a b c", 3) == ()
    assert len(train_bpe("abc", 10)) == 2


def test_the_guides_merges_in_order() -> None:
    # n g: learning x2 (the word "learning" twice), sang, song, long, young, thing, king,
    # ring = 9; i ng: learning x2, thing, king, ring = 5; then l e, e a, a r, r n tie at 4
    # (learning x2, learn, learned) and go in the order "learning" shows them.
    merges = train_bpe(GUIDE_CORPUS, 6)
    assert [(m.symbol, m.count) for m in merges] == [
        ("ng", 9), ("ing", 5), ("le", 4), ("lea", 4), ("lear", 4), ("learn", 4)]
    assert merges[2].tied == (("e", "a"), ("a", "r"), ("r", "n"))
    assert merges[5].tied == ()


# --- BPE encoding -----------------------------------------------------------------------------


def test_encoding_applies_each_merge_left_to_right_without_overlap() -> None:
    aa = explicit_merges([("a", "a")])
    assert encode_word("aaa", aa).pieces == ("aa", "a")
    assert encode_word("aaaa", aa).pieces == ("aa", "aa")


def test_encoding_applies_the_merges_in_the_order_learned() -> None:
    # After a+a, "aaaa" is "aa aa": a later aa+a finds no "aa a" to merge, but in "aaa"
    # ("aa a") it does.
    assert encode_word("aaaa", explicit_merges([("a", "a"), ("aa", "a")])).pieces == ("aa", "aa")
    assert encode_word("aaa", explicit_merges([("a", "a"), ("aa", "a")])).pieces == ("aaa",)
    # In the other order aa+a finds nothing (there is no "aa" yet).
    assert encode_word("aaa", explicit_merges([("aa", "a"), ("a", "a")])).pieces == ("aa", "a")
    # Order decides the pieces: i+n first, then s+in; or n+g first, after which s+in
    # finds no "in".
    assert encode_word("sing", explicit_merges([("i", "n"), ("s", "in")])).pieces == ("sin", "g")
    assert encode_word("sing", explicit_merges([("n", "g"), ("s", "in")])).pieces == (
        "s", "i", "ng")


def test_the_guides_walk_learning_to_learn_ing() -> None:
    enc = encode_word("learning", train_bpe(GUIDE_CORPUS, 6))
    assert enc.pieces == ("learn", "ing")
    assert enc.chain() == ("l e a r n i n g → l e a r n i ng → l e a r n ing → le a r n ing"
                           " → lea r n ing → lear n ing → learn ing")
    assert [r for _, r in enc.stages] == [None, 1, 2, 3, 4, 5, 6]


def test_a_merge_that_does_not_apply_leaves_no_stage() -> None:
    enc = encode_word("things", train_bpe(GUIDE_CORPUS, 6))
    assert enc.chain() == "t h i n g s → t h i ng s → t h ing s"
    assert [r for _, r in enc.stages] == [None, 1, 2]


def test_bpe_vocabulary_is_characters_in_code_point_order_then_merges() -> None:
    merges = explicit_merges([("a", "b"), ("ab", "c"), ("a", "bc")])
    # "B" (66) sorts before "a" (97); "abc" made twice appears once.
    assert bpe_vocabulary("abc Bc", merges) == ("B", "a", "b", "c", "ab", "abc")


def test_tokenize_gives_the_pieces_of_every_word_in_order() -> None:
    tok = tokenize("ab abc", "ab ab abc", train_bpe("ab ab abc", 2))
    assert tok.tokens == ("ab", "abc")
    assert tok.vocab == ("a", "b", "c", "ab", "abc")
    assert lookup(tok.tokens, tok.vocab) == (3, 4)


def test_merge_record_symbol() -> None:
    assert Merge(1, "lea", "rn", 4).symbol == "learn"


# --- the trace: bpe.merge.<r>, bpe.word.<w>, ids ------------------------------------------------

GUIDE = f"""
[input]
text   = "learning things"
corpus = "{GUIDE_CORPUS}"
merges = 6
"""


def test_the_merge_steps_and_word_steps_are_in_the_trace() -> None:
    trace = loads(GUIDE, "guide.toml").forward()
    names = trace.names()
    assert names[:8] == [f"bpe.merge.{r}" for r in range(1, 7)] + ["bpe.word.0", "bpe.word.1"]
    word = trace.get("bpe.word.0", None, None)
    assert word.formula == ("l e a r n i n g → l e a r n i ng → l e a r n ing → le a r n ing"
                            " → lea r n ing → lear n ing → learn ing (merges 1, 2, 3, 4, 5, 6)")
    # characters a d e g h i k l n o r s t u y (0-14), then ng ing le lea lear learn (15-20)
    assert word.value == ((20, 16),)
    assert trace.get("bpe.word.1", None, None).value == ((12, 4, 16, 11),)
    assert trace.tokens == ("learn", "ing", "t", "h", "ing", "s")
    assert trace.value("ids", None, None) == ((20,), (16,), (12,), (4,), (16,), (11,))


def test_a_merge_step_holds_the_pair_counts_and_names_the_tie() -> None:
    trace = loads(GUIDE, "guide.toml").forward()
    first = trace.get("bpe.merge.1", None, None)
    # the pairs in first-seen order: l e, e a, a r, r n, n i, i n, n g, ...
    assert first.value[0][:7] == (4, 4, 4, 4, 2, 5, 9)
    assert "n g (9 times), becomes ng" in first.formula
    third = trace.get("bpe.merge.3", None, None)
    assert "l e (4 times), becomes le; tied with e a, a r, r n, which come later" in third.formula
    assert max(third.value[0]) == 4


def test_merges_given_by_hand_have_no_training_steps() -> None:
    text = '[input]\ntext = "sing"\nmerges = [["n", "g"], ["i", "ng"]]\n'
    trace = loads(text, "hand.toml").forward()
    assert not any(n.startswith("bpe.merge.") for n in trace.names())
    assert trace.get("bpe.word.0", None, None).formula == "s i n g → s i ng → s ing (merges 1, 2)"


def test_bpe_with_unk_maps_an_unseen_character_to_the_unk_row() -> None:
    # z, a and p are not in the corpus: each becomes <unk> (row 0).
    text = ('[input]\ntext = "hug zap"\ncorpus = "hug hugs"\nunk = "<unk>"\nmerges = 0\n'
            'vocab = ["<unk>", "g", "h", "s", "u"]\n')
    trace = loads(text, "unk.toml").forward()
    assert trace.value("ids", None, None) == ((2,), (4,), (1,), (0,), (0,), (0,))


def test_an_unk_outside_the_bpe_vocabulary_is_refused_at_load() -> None:
    text = '[input]\ntext = "hug zebra"\ncorpus = "hug hugs"\nunk = "<unk>"\nmerges = 2\n'
    with pytest.raises(InputError) as info:
        loads(text, "unk.toml")
    assert str(info.value).startswith("unk.toml: input.unk: '<unk>' is not in the")


# --- properties: every merge recounted independently -----------------------------------------

corpora = st.lists(st.text(alphabet="abc", min_size=1, max_size=6), min_size=1, max_size=6)


@given(corpora, st.integers(0, 8))
def test_each_merge_is_the_first_most_frequent_pair(words: list[str], n: int) -> None:
    merges = train_bpe(words, n)
    assert len(merges) <= n
    for r, m in enumerate(merges):
        # Recount on the corpus encoded with the merges before this one.
        counts: Counter[tuple[str, str]] = Counter()
        first_seen: list[tuple[str, str]] = []
        for w in words:
            pieces = encode_word(w, merges[:r]).pieces
            for pair in zip(pieces, pieces[1:], strict=False):
                counts[pair] += 1
                if pair not in first_seen:
                    first_seen.append(pair)
        assert m.rank == r + 1
        assert dict(m.pairs) == dict(counts)
        assert [p for p, _ in m.pairs] == first_seen
        best = max(counts.values())
        winners = [p for p in first_seen if counts[p] == best]
        assert ((m.left, m.right), m.count, m.tied) == (winners[0], best, tuple(winners[1:]))
    if len(merges) < n:  # stopped early: every word is down to one piece
        assert all(len(encode_word(w, merges).pieces) == 1 for w in words)


@given(corpora, st.integers(0, 8))
def test_merge_counts_never_increase(words: list[str], n: int) -> None:
    counts = [m.count for m in train_bpe(words, n)]
    assert counts == sorted(counts, reverse=True)


@given(corpora, st.integers(0, 8), st.text(alphabet="abc", min_size=1, max_size=8))
def test_encoding_splits_a_word_into_vocabulary_pieces(words: list[str], n: int,
                                                       word: str) -> None:
    merges = train_bpe(words, n)
    vocab = bpe_vocabulary(words, merges)
    enc = encode_word(word, merges)
    assert "".join(enc.pieces) == word
    assert enc.stages[0][0] == tuple(word)
    ranks = [r for _, r in enc.stages[1:]]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    if set(word) <= set("".join(words)):
        assert set(enc.pieces) <= set(vocab)
        assert len(lookup(enc.pieces, vocab)) == len(enc.pieces)
