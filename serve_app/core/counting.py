"""Count words: text + options -> counts. Pure: no Ray, no HTTP.

Tokenizers:
- `whitespace`: `str.split()`, the original script's words (punctuation stays attached).
- `unicode`: Unicode default word boundaries (UAX #29), segments holding a letter or number.
- `auto`: `unicode`, but runs of Han characters are cut by the jieba dictionary
  (物流很快 -> 物流, 很快).

Case folding happens before tokenizing; stop words and `min_length` are applied to the
(folded) words. `word_counts` is ordered by count descending, ties by first occurrence,
except that `whitespace` without `top_k` keeps the original script's first-occurrence order.

`user_words` are kept whole by every tokenizer (`core.userwords`); `extra_stopwords` are
dropped like the stop-word lists; `offsets` asks for `token_offsets` (real-time endpoints).
"""

import bisect
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Literal

from serve_app.core import segmentation, userwords

__all__ = [
    "STOPWORD_LANGUAGES",
    "TOKENIZERS",
    "CountOptions",
    "Tokenizer",
    "WordCounts",
    "count",
    "count_full",
    "count_with_full",
    "counts_of",
    "stopwords_for",
    "splits_on_whitespace_only",
    "token_offsets",
    "tokenize",
    "tokenize_many",
    "warm_up",
]

Tokenizer = Literal["auto", "unicode", "whitespace"]
TOKENIZERS: tuple[Tokenizer, ...] = ("auto", "unicode", "whitespace")
STOPWORD_LANGUAGES = ("en", "zh")


@dataclass(frozen=True, slots=True)
class CountOptions:
    tokenizer: Tokenizer = "auto"
    lowercase: bool = True
    stopwords: tuple[str, ...] | None = None
    min_length: int = 1
    top_k: int | None = None
    user_words: tuple[str, ...] = ()
    extra_stopwords: tuple[str, ...] = ()
    offsets: bool = False

    def __post_init__(self) -> None:
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(f"unknown tokenizer {self.tokenizer!r}; choose one of {TOKENIZERS}")
        if self.stopwords is not None:
            codes = (self.stopwords,) if isinstance(self.stopwords, str) else self.stopwords
            for code in codes:
                _check_language(code)
            # a canonical tuple, so equal choices share one cache entry (and lists are hashable)
            object.__setattr__(self, "stopwords", tuple(dict.fromkeys(codes)))
        if self.min_length < 0:
            raise ValueError(f"min_length must be >= 0, not {self.min_length}")
        if self.top_k is not None and self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 or None, not {self.top_k}")
        for name in ("user_words", "extra_stopwords"):
            words = getattr(self, name)
            if isinstance(words, str):
                raise ValueError(f"{name} must be a sequence of words, not one string")
            object.__setattr__(self, name, tuple(dict.fromkeys(w for w in words if w.strip())))


@dataclass(frozen=True, slots=True)
class WordCounts:
    word_count: int
    unique_words: int
    word_counts: dict[str, int]


_DEFAULT = CountOptions()


def _check_language(language: str) -> None:
    if language not in STOPWORD_LANGUAGES:
        raise ValueError(
            f"unknown stop-word language {language!r}; choose from {STOPWORD_LANGUAGES}"
        )


@cache
def stopwords_for(language: str) -> frozenset[str]:
    _check_language(language)
    listing = resources.files("serve_app") / "data" / f"stopwords_{language}.txt"
    words = {
        line.strip().casefold()
        for line in listing.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    # UAX #29 keeps don’t whole, with whichever apostrophe the writer typed
    words |= {word.replace("'", "\u2019") for word in words if "'" in word}
    return frozenset(words)


@dataclass(frozen=True, slots=True)
class _Plan:
    split: Callable[[str], list[str]]
    casefold: bool
    stopwords: frozenset[str]
    min_length: int
    top_k: int | None
    first_occurrence_order: bool
    filters: bool

    def unwanted(self, words: Iterable[str]) -> list[str]:
        stop, shortest = self.stopwords, self.min_length
        if self.casefold:  # the words are folded already
            return [w for w in words if len(w) < shortest or w in stop]
        return [w for w in words if len(w) < shortest or w.casefold() in stop]


_SPLITTERS: dict[str, Callable[[str], list[str]]] = {
    "whitespace": segmentation.whitespace_words,
    "unicode": segmentation.words,
    "auto": segmentation.han_words,
}


@lru_cache(maxsize=256)
def _plan(options: CountOptions) -> _Plan:
    stopwords = frozenset().union(*map(stopwords_for, options.stopwords or ()))
    if options.extra_stopwords:
        stopwords |= {w.casefold() for w in options.extra_stopwords}
    return _Plan(
        split=userwords.with_user_words(
            _SPLITTERS[options.tokenizer], userwords.folded(options.user_words, options.lowercase)
        ),
        casefold=options.lowercase,
        stopwords=stopwords,
        min_length=options.min_length,
        top_k=options.top_k,
        first_occurrence_order=options.tokenizer == "whitespace" and options.top_k is None,
        filters=bool(stopwords) or options.min_length > 1,
    )


def _words(text: str, plan: _Plan) -> list[str]:
    return plan.split(text.casefold() if plan.casefold else text)


def tokenize(text: str, options: CountOptions = _DEFAULT) -> list[str]:
    plan = _plan(options)
    words = _words(text, plan)
    if plan.filters:
        unwanted = set(plan.unwanted(set(words)))
        if unwanted:
            return [w for w in words if w not in unwanted]
    return words


def splits_on_whitespace_only(options: CountOptions) -> bool:
    """Whether `tokenize` is (case-folded) str.split() and nothing else."""
    plan = _plan(options)
    return options.tokenizer == "whitespace" and not plan.filters


def tokenize_many(texts: Iterable[str], options: CountOptions = _DEFAULT) -> list[list[str]]:
    return [tokenize(text, options) for text in texts]


def _count(text: str, plan: _Plan) -> tuple[WordCounts, Counter[str]]:
    words = _words(text, plan)
    counts = Counter(words)  # insertion order is first occurrence
    total = len(words)
    if plan.filters:
        for word in plan.unwanted(counts):
            total -= counts.pop(word)
    return _ordered(counts, total, plan), counts


def counts_of(words: list[str], options: CountOptions = _DEFAULT) -> WordCounts:
    """The counts of words `tokenize` gave with the same options."""
    return full_counts_of(words, options)[0]


def full_counts_of(
    words: list[str], options: CountOptions = _DEFAULT
) -> tuple[WordCounts, Counter[str]]:
    """`counts_of`, and all of the counts (untruncated, in first-occurrence order) for a
    Summary, as `count_full` gives them for a text."""
    counts = Counter(words)
    return _ordered(counts, len(words), _plan(options)), counts


def counts_of_tally(tally: Mapping[str, int], total: int, options: CountOptions) -> WordCounts:
    """`counts_of` from a text's words already counted (in first-occurrence order), `total`
    of them."""
    return _ordered(Counter(tally), total, _plan(options))


def _ordered(counts: Counter[str], total: int, plan: _Plan) -> WordCounts:
    if plan.first_occurrence_order:
        ordered = dict(counts)
    else:
        # most_common sorts stably, so equal counts keep first-occurrence order
        ordered = dict(counts.most_common(plan.top_k))
    return WordCounts(total, len(counts), ordered)


def count_full(text: str, options: CountOptions = _DEFAULT) -> tuple[WordCounts, Counter[str]]:
    """The counts, and all of them (untruncated, in first-occurrence order) for a Summary."""
    return _count(text, _plan(options))


def count(text: str, options: CountOptions = _DEFAULT) -> WordCounts:
    return _count(text, _plan(options))[0]


def count_with_full(
    texts: Iterable[str], options: CountOptions = _DEFAULT
) -> list[tuple[WordCounts, Counter[str]]]:
    """`count_full` over many texts with the same options."""
    plan = _plan(options)
    return [_count(text, plan) for text in texts]


def warm_up() -> None:
    """Load dictionaries and stop words now, not on the first request (call it per process)."""
    segmentation.warm_up()
    for language in STOPWORD_LANGUAGES:
        stopwords_for(language)
    count("warm up 物流很快")


def token_offsets(text: str, options: CountOptions = _DEFAULT) -> list[dict[str, Any]]:
    """Every counted word with where it is in `text`, as Elasticsearch's _analyze gives them:
    `start_offset`/`end_offset` in code points (text[start:end] is the word before case
    folding), `position` its index among all words, stop words included (so they leave gaps).
    """
    plan = _plan(options)
    folded = text.casefold() if plan.casefold else text
    words = plan.split(folded)
    unwanted = set(plan.unwanted(set(words))) if plan.filters else set()
    to_original = _offset_map(text, folded)
    tokens: list[dict[str, Any]] = []
    cursor = 0
    for position, word in enumerate(words):
        start = folded.find(word, cursor)
        if start < 0:  # not a substring (never seen): no offsets rather than wrong ones
            start, end = -1, -1
        else:
            cursor = end = start + len(word)
        if word in unwanted:
            continue
        tokens.append(
            {
                "token": word,
                "start_offset": to_original(start) if start >= 0 else None,
                "end_offset": to_original(end) if start >= 0 else None,
                "position": position,
            }
        )
    return tokens


def _offset_map(text: str, folded: str) -> Callable[[int], int]:
    if len(folded) == len(text):  # casefold maps each character to one: offsets agree
        return lambda offset: offset
    # "ß" folds to "ss", "ﬁ" to "fi": map an offset in the folded text back to its character
    starts = list(itertools.accumulate((len(c.casefold()) for c in text), initial=0))
    return lambda offset: (
        bisect.bisect_right(starts, offset) - 1 if offset < starts[-1] else len(text)
    )
