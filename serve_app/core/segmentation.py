"""Word segmentation: Unicode default word boundaries (UAX #29), plus a dictionary for Chinese.

A word is a segment between default word boundaries that holds at least one alphabetic or
numeric character (Rust's `char::is_alphanumeric`). Boundaries come from the Rust
`unicode-segmentation` crate through `unicode-segmentation-rs` (Unicode 17.0 tables in 1.0.0;
Python 3.11's `unicodedata` is 14.0). Lone surrogates are never part of a word: they separate
words.
"""

from collections.abc import Callable
from functools import cache

import regex
from unicode_segmentation_rs import split_word_bounds, unicode_words

__all__ = ["forget", "han_words", "segments", "warm_up", "whitespace_words", "words"]

_SURROGATE = regex.compile(r"[\ud800-\udfff]")
# Letters and numbers only: radicals and other Han-script symbols stay with UAX #29, so the
# dictionary never sees (and never returns) punctuation.
_HAN_RUN = regex.compile(r"([\p{Han}&&[\p{L}\p{N}]]+)", flags=regex.V1)
# The split on the script alone costs 9.4 against 13.3 ms per MB of review text (the intersection
# looks up two properties per character). It differs only where a run holds one of the script's
# few symbols (radicals U+2E80-U+2FD5, U+16FE2, U+16FF0-U+16FF1), which real text seldom holds:
# a run met for the first time is checked, and the text is split again by _HAN_RUN if one is.
_HAN_SCRIPT_RUN = regex.compile(r"(\p{Han}+)")
_HAN_SYMBOL = regex.compile(r"[\p{Han}--[\p{L}\p{N}]]", flags=regex.V1)


def _without_surrogates(text: str) -> str:
    # U+FFFD has Word_Break=Other and is not alphanumeric, exactly like a lone surrogate.
    replaced: str = _SURROGATE.sub("\ufffd", text)
    return replaced


def whitespace_words(text: str) -> list[str]:
    """`str.split()`, as the original script counted, but a lone surrogate separates words."""
    if not text.isascii():
        try:
            text.encode()  # ~1 GB/s; cheaper than a regex scan for surrogates
        except UnicodeEncodeError:
            text = _SURROGATE.sub(" ", text)
    return text.split()


def segments(text: str) -> list[str]:
    """All the pieces between default word boundaries, words or not."""
    try:
        return split_word_bounds(text)
    except UnicodeEncodeError:  # only lone surrogates make a str unencodable as UTF-8
        pieces: list[str] = []
        start = 0
        for piece in split_word_bounds(_without_surrogates(text)):
            pieces.append(text[start : start + len(piece)])  # the original, surrogates kept
            start += len(piece)
        return pieces


def words(text: str) -> list[str]:
    try:
        return unicode_words(text)
    except UnicodeEncodeError:
        return unicode_words(_without_surrogates(text))


@cache
def _jieba_cut() -> Callable[[str], list[str]]:
    # rjieba builds its dictionary when imported (~0.1 s): once per process, on first use.
    import rjieba

    cut: Callable[[str], list[str]] = rjieba.cut
    return cut


def warm_up() -> None:
    """Load the Chinese dictionary now rather than on the first request."""
    _jieba_cut()("物流很快")
    unicode_words("warm up")


def han_words(text: str) -> list[str]:
    """UAX #29 words, except that runs of Han characters are cut by the jieba dictionary."""
    if text.isascii():
        return words(text)
    parts = _HAN_SCRIPT_RUN.split(text)
    if len(parts) == 1:
        return words(text)
    found = _han_words_of(parts)
    if found is None:  # a run held a Han symbol: split by letters and numbers, as no run does
        found = _han_words_of(_HAN_RUN.split(text))
        assert found is not None  # the runs of _HAN_RUN hold no symbol
    return found


def _han_words_of(parts: list[str]) -> list[str] | None:
    try:
        return _han_words(parts)
    except UnicodeEncodeError:
        return _han_words([_without_surrogates(part) for part in parts])


# Reviews repeat their short pieces: the punctuation, numbers and emoji between Han runs, and
# clauses (好评, 物流很快). Their words are remembered per process, up to _REMEMBERED pieces per
# kind (then forgotten at once: a bounded, lock-free cache), pieces of at most _SHORT characters:
# ~15 MB at most (tracemalloc, both full of _SHORT-long pieces cut into many words).
# A hit costs a dict lookup instead of a call into Rust that builds new strings.
_REMEMBERED = 1 << 13
_SHORT = 16
_HAN_CUTS: dict[str, list[str]] = {}
_OTHER_WORDS: dict[str, list[str]] = {}


def forget() -> None:
    """Drop the remembered pieces: benchmarks start each round cold with it."""
    _HAN_CUTS.clear()
    _OTHER_WORDS.clear()


def _remember(cache: dict[str, list[str]], piece: str, words: list[str]) -> list[str]:
    if len(piece) <= _SHORT:
        if len(cache) >= _REMEMBERED:
            cache.clear()
        cache[piece] = words
    return words


def _han_words(parts: list[str]) -> list[str] | None:
    """The words of a text split by one of the Han patterns, or None if a run holds a Han symbol
    (then the text must be split by _HAN_RUN)."""
    # The cached lists are shared: they are only ever read (copied into `found`). Only runs
    # without a symbol are remembered, so a remembered run needs no check.
    cut = _jieba_cut()
    cuts, others = _HAN_CUTS, _OTHER_WORDS
    found = unicode_words(parts[0]) if parts[0] else []
    # split() with one group alternates: other, han, other, han, ..., other
    pairs = iter(parts[1:])
    for han, other in zip(pairs, pairs, strict=True):
        words = cuts.get(han)
        if words is None:
            if _HAN_SYMBOL.search(han) is not None:
                return None
            words = _remember(cuts, han, cut(han))
        found += words
        if other:
            words = others.get(other)
            found += words if words is not None else _remember(others, other, unicode_words(other))
    return found
