"""Text to token ids: a vocabulary lookup and a toy byte-pair encoder, every merge recorded.

Layer: steps (no arithmetic: tokens are text and integers).  The guide's BPE walk
("l e a r n i n g" → … → "learn ing") is reproduced by :func:`train_bpe` (learn merges
from a small corpus) and :func:`encode_word` (apply them to one word), which return
records that the graph turns into trace steps (``bpe.merge.<r>``, ``bpe.word.<w>``).

Rules, all deterministic:

- The corpus and the text are split into words at whitespace; a merge never crosses a
  word boundary and there is no end-of-word marker.  A word that occurs ``f`` times
  counts ``f`` times.
- A word starts as its characters.  Each training round counts every adjacent pair of
  symbols and merges the most frequent pair.  **Ties go to the pair seen first** when the
  corpus is read word by word, left to right (words in order of first appearance).
  Training stops early when no word has two symbols left.
- Encoding applies the learned merges in the order they were learned, each one left to
  right over the word, never overlapping (``a a a`` with ``a + a`` gives ``aa a``).
- The BPE vocabulary is the corpus's characters in code-point order, then each merged
  symbol in the order it was learned.

>>> merges = train_bpe(["low", "low", "lower", "newest", "widest"], 2)
>>> [(m.left, m.right, m.count) for m in merges]
[('l', 'o', 3), ('lo', 'w', 3)]
>>> encode_word("lowest", merges).pieces
('low', 'e', 's', 't')
>>> lookup(["low", "e"], bpe_vocabulary(["low", "newest"], merges))
(8, 0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError, suggest

Pair = tuple[str, str]


@dataclass(frozen=True)
class Merge:
    """One learned merge: ``left + right → left+right`` in round ``rank`` (1-based).

    ``pairs`` holds every adjacent pair and its count in that round, in the order the pairs
    were first seen (the tie-break order); ``tied`` names the other pairs with the same,
    highest count, which lost the tie-break.
    """

    rank: int
    left: str
    right: str
    count: int
    pairs: tuple[tuple[Pair, int], ...] = ()
    tied: tuple[Pair, ...] = ()

    @property
    def symbol(self) -> str:
        return self.left + self.right


@dataclass(frozen=True)
class WordEncoding:
    """How one word was split: its stages from characters to the final pieces.

    ``stages[0]`` is the word as characters; each later stage is ``(pieces, rank)``, the
    pieces after applying merge ``rank``.
    """

    word: str
    stages: tuple[tuple[tuple[str, ...], int | None], ...]

    @property
    def pieces(self) -> tuple[str, ...]:
        return self.stages[-1][0]

    def chain(self) -> str:
        """``l e a r n i n g → l e a r n i ng → … → learn ing``."""
        return " → ".join(" ".join(p) for p, _ in self.stages)


@dataclass(frozen=True)
class Tokenization:
    """A text turned into tokens by BPE: the merges learned and each word's stages."""

    text: str
    merges: tuple[Merge, ...]
    words: tuple[WordEncoding, ...]
    vocab: tuple[str, ...]

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(p for w in self.words for p in w.pieces)


def words_of(corpus: str | Sequence[str]) -> list[str]:
    """The corpus's words, split at whitespace, in order (repeats kept)."""
    texts = [corpus] if isinstance(corpus, str) else list(corpus)
    return [w for t in texts for w in t.split()]


def _counts(words: list[tuple[str, ...]], freq: list[int]) -> dict[Pair, int]:
    counts: dict[Pair, int] = {}
    for symbols, f in zip(words, freq, strict=True):
        for pair in zip(symbols, symbols[1:], strict=False):
            counts[pair] = counts.get(pair, 0) + f
    return counts


def _apply(symbols: tuple[str, ...], left: str, right: str) -> tuple[str, ...]:
    out: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == left and symbols[i + 1] == right:
            out.append(left + right)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def train_bpe(corpus: str | Sequence[str], merges: int) -> tuple[Merge, ...]:
    """Learn up to ``merges`` merges from ``corpus`` (see the module's rules).

    >>> [m.symbol for m in train_bpe("sing singing ring", 3)]
    ['in', 'ing', 'sing']
    """
    order: dict[str, int] = {}
    for w in words_of(corpus):
        order[w] = order.get(w, 0) + 1
    words = [tuple(w) for w in order]
    freq = list(order.values())
    learned: list[Merge] = []
    for rank in range(1, merges + 1):
        counts = _counts(words, freq)
        if not counts:
            break
        best = max(counts.values())
        winners = [p for p, c in counts.items() if c == best]
        left, right = winners[0]
        learned.append(Merge(rank, left, right, best, tuple(counts.items()), tuple(winners[1:])))
        words = [_apply(w, left, right) for w in words]
    return tuple(learned)


def encode_word(word: str, merges: Sequence[Merge]) -> WordEncoding:
    """Split ``word`` into characters and apply ``merges`` in order, recording each change.

    >>> m = train_bpe("learn learning learned sing singing ring", 7)
    >>> encode_word("learning", m).chain()
    'l e a r n i n g → l e a r n in g → l e a r n ing → le a r n ing → lea r n ing → lear n ing → learn ing'
    """
    symbols = tuple(word)
    stages: list[tuple[tuple[str, ...], int | None]] = [(symbols, None)]
    for m in merges:
        after = _apply(symbols, m.left, m.right)
        if after != symbols:
            stages.append((after, m.rank))
            symbols = after
    return WordEncoding(word, tuple(stages))


def bpe_vocabulary(corpus: str | Sequence[str], merges: Sequence[Merge]) -> tuple[str, ...]:
    """The corpus's characters in code-point order, then the merged symbols in order."""
    chars = sorted({c for w in words_of(corpus) for c in w})
    out = list(chars)
    for m in merges:
        if m.symbol not in out:
            out.append(m.symbol)
    return tuple(out)


def tokenize(text: str, corpus: str | Sequence[str], merges: Sequence[Merge]) -> Tokenization:
    """Encode every word of ``text`` with ``merges``; the vocabulary comes from ``corpus``."""
    words = tuple(encode_word(w, merges) for w in words_of(text))
    return Tokenization(text, tuple(merges), words, bpe_vocabulary(corpus, merges))


def explicit_merges(pairs: Sequence[Pair]) -> tuple[Merge, ...]:
    """Merges given by hand, in order (no counts: they were not learned here)."""
    return tuple(Merge(r, a, b, 0) for r, (a, b) in enumerate(pairs, start=1))


def lookup(tokens: Sequence[str], vocab: Sequence[str], unk: str | None = None) -> tuple[int, ...]:
    """Each token's row in the vocabulary (the first match); ``unk``'s row for unknown ones.

    >>> lookup(["The", "storm"], ["<unk>", "The", "is"], unk="<unk>")
    (1, 0)
    >>> lookup(["storm"], ["The", "is"])
    Traceback (most recent call last):
    ...
    exacttransformer.errors.InputError: input.tokens: token 'storm' is not in the vocabulary \
and no unk token is declared; (allowed: The, is)
    """
    index: dict[str, int] = {}
    for i, t in enumerate(vocab):
        index.setdefault(t, i)
    out = []
    for t in tokens:
        if t in index:
            out.append(index[t])
        elif unk is not None and unk in index:
            out.append(index[unk])
        elif unk is not None:
            raise InputError(f"token {t!r} is not in the vocabulary, and neither is the unk "
                             f"token {unk!r}; {suggest(unk, list(vocab))}", key="input.unk")
        else:
            raise InputError(f"token {t!r} is not in the vocabulary and no unk token is "
                             f"declared; {suggest(t, list(vocab))}", key="input.tokens")
    return tuple(out)
