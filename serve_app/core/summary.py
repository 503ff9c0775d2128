"""The mergeable aggregate of a batch: records, characters, words and the most frequent words.

Partial summaries are built where the records are counted and merged where they meet;
merging a's then b's equals one pass over a's records then b's, including the order of
`word_counts` (first occurrence), so ties in `top_words` break the same way.
Feed `add_result` the untruncated counts in first-occurrence order (`counting.count_full`).
`add_analysis` adds the review analytics (records per language, sentiment labels and scores);
they appear in `to_dict` and `to_state` only once some were added, so a summary without them
is what it always was.

Words counted by Arrow (a whole chunk's, `add_columns`) stay Arrow columns until something
needs them as Python objects (`settle`, which every method here calls first): a chunk's
summary that is only packed (`packed_summary.pack`) and merged far away never makes a Python
string per word, which was a third of a seed-mode chunk's CPU. The columns come after
`word_counts` in first-occurrence order.
"""

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from serve_app.core.arrow_arrays import int64_array, numbers, utf8_array

__all__ = ["Summary", "merge_columns", "merge_counts", "top_of"]

_MAX_COLUMNS = 64
_TOTALS = ("records", "ok", "failed", "total_chars", "total_words")
_COMPARED = (
    *_TOTALS,
    "word_counts",
    "languages",
    "sentiment_labels",
    "sentiment_score_sum",
    "duplicates",
    "boilerplate",
)


@dataclass(slots=True)
class Summary:
    records: int = 0
    ok: int = 0
    failed: int = 0
    total_chars: int = 0
    total_words: int = 0
    word_counts: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)
    sentiment_labels: Counter[str] = field(default_factory=Counter)
    sentiment_score_sum: float = 0.0
    # None: not looked for (and not in to_dict); a count once a batch asks.
    duplicates: int | None = None
    boilerplate: int | None = None
    # Word counts still in Arrow (word, count) columns, after word_counts in order: `settle`.
    columns: list[tuple[pa.Array, pa.Array]] = field(default_factory=list, repr=False)

    def settle(self) -> Counter[str]:
        """The word counts as one Counter (the Arrow columns folded into it, in order)."""
        counts = self.word_counts
        for words, tallies in self.columns:
            get = counts.get
            for word, n in zip(words.to_pylist(), tallies.to_pylist(), strict=True):
                counts[word] = get(word, 0) + n
        self.columns = []
        return counts

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Summary):
            return NotImplemented
        self.settle()
        other.settle()
        return all(getattr(self, name) == getattr(other, name) for name in _COMPARED)

    def add_result(
        self, *, char_count: int, word_count: int, word_counts: Mapping[str, int]
    ) -> None:
        self.settle()
        self.records += 1
        self.ok += 1
        self.total_chars += char_count
        self.total_words += word_count
        # Counter.update's own loop, minus its per-call Mapping check: this runs per record
        counts = self.word_counts
        get = counts.get
        for word, n in word_counts.items():
            counts[word] = get(word, 0) + n

    def add_words(self, *, char_count: int, words: Sequence[str]) -> None:
        """`add_result` from the record's words themselves (as `counting.tokenize` gives them):
        Counter counts a sequence in C, where merging a mapping is a Python loop per word."""
        self.settle()
        self.records += 1
        self.ok += 1
        self.total_chars += char_count
        self.total_words += len(words)
        self.word_counts.update(words)

    def add_columns(
        self, *, results: int, char_count: int, word_count: int, words: pa.Array, counts: pa.Array
    ) -> None:
        """Many results at once (a whole chunk counted by Arrow), their counts as Arrow columns
        (distinct words in first-occurrence order, and their counts), kept as they are until
        needed."""
        self.records += results
        self.ok += results
        self.total_chars += char_count
        self.total_words += word_count
        if len(words):
            self.columns = [*self.columns, (words, counts)]
            self._compact()

    def _compact(self) -> None:
        """Bound the columns a long-lived summary keeps: past _MAX_COLUMNS, merge them in Arrow
        once the later ones hold as many words as the first (so each word is hashed a bounded
        number of times however many chunks come)."""
        if len(self.columns) > _MAX_COLUMNS:
            later = sum(len(words) for words, _ in self.columns[1:])
            if later >= len(self.columns[0][0]):
                self.columns = [merge_columns(self.columns)]

    def add_analysis(self, fields: Mapping[str, Any]) -> None:
        """The `language` and `sentiment` fields of one result (`analysis.review.analyze`)."""
        if "language" in fields:
            self.languages[fields["language"] or "unknown"] += 1
        if "sentiment" in fields:
            self.sentiment_labels[fields["sentiment"]["label"]] += 1
            self.sentiment_score_sum += fields["sentiment"]["score"]

    def add_flags(self, *, duplicate: bool | None = None, boilerplate: bool | None = None) -> None:
        """A record looked at for duplicates and/or boilerplate (None: not looked for)."""
        if duplicate is not None:
            self.duplicates = (self.duplicates or 0) + duplicate
        if boilerplate is not None:
            self.boilerplate = (self.boilerplate or 0) + boilerplate

    def remove_words(self, *, word_count: int, word_counts: Mapping[str, int]) -> None:
        """Take back one result's words (a duplicate left out of the counts once it is known)."""
        self.total_words -= word_count
        counts = self.settle()
        for word, n in word_counts.items():
            left = counts[word] - n
            if left > 0:
                counts[word] = left
            else:
                del counts[word]

    def add_failure(self) -> None:
        self.records += 1
        self.failed += 1

    def merge(self, other: "Summary") -> "Summary":
        self.records += other.records
        self.ok += other.ok
        self.failed += other.failed
        self.total_chars += other.total_chars
        self.total_words += other.total_words
        if other.word_counts:
            self.settle().update(other.settle())
        else:  # only Arrow columns (or nothing): they follow self's words as they are
            self.columns = [*self.columns, *other.columns]  # a new list: never shared
            self._compact()
        self.languages.update(other.languages)
        self.sentiment_labels.update(other.sentiment_labels)
        self.sentiment_score_sum += other.sentiment_score_sum
        if other.duplicates is not None:
            self.duplicates = (self.duplicates or 0) + other.duplicates
        if other.boilerplate is not None:
            self.boilerplate = (self.boilerplate or 0) + other.boilerplate
        return self

    @property
    def unique_words(self) -> int:
        if (merged := self._merged_columns()) is not None:
            return len(merged[0])
        return len(self.settle())

    def top_words(self, n: int = 10) -> list[tuple[str, int]]:
        if (merged := self._merged_columns()) is not None:
            return top_of(*merged, n)
        # most_common sorts stably: equal counts keep first-occurrence order
        return self.settle().most_common(n)

    def word_columns(self) -> tuple[pa.Array, pa.Array]:
        """Every word and its count as two Arrow columns, in first-occurrence order: from the
        columns as they are when all words are there, else from the settled Counter."""
        if (merged := self._merged_columns()) is not None:
            return merged
        counts = self.settle()
        return utf8_array(list(counts)), int64_array(counts.values(), len(counts))

    def without_words(self) -> "Summary":
        """A copy with the totals and analytics only."""
        return dataclasses.replace(self, word_counts=Counter(), columns=[])

    def _merged_columns(self) -> tuple[pa.Array, pa.Array] | None:
        """The words as one pair of columns when all of them are Arrow's (else None): the
        figures of to_dict then come from Arrow, without a Python object per word."""
        if not self.columns or self.word_counts:
            return None
        self.columns = [merge_columns(self.columns)]
        return self.columns[0]

    def to_dict(self, top_n: int = 10) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "records": self.records,
            "ok": self.ok,
            "failed": self.failed,
            "total_chars": self.total_chars,
            "total_words": self.total_words,
            "unique_words": self.unique_words,
            "top_words": [[word, n] for word, n in self.top_words(top_n)],
        }
        if self.languages:
            summary["languages"] = dict(self.languages.most_common())
        if self.sentiment_labels:
            analyzed = sum(self.sentiment_labels.values())
            summary["sentiment"] = {
                "labels": {
                    label: self.sentiment_labels.get(label, 0)
                    for label in ("positive", "neutral", "negative")
                },
                "mean_score": round(self.sentiment_score_sum / analyzed, 4),
            }
        if self.duplicates is not None:
            summary["duplicates"] = self.duplicates
        if self.boilerplate is not None:
            summary["boilerplate"] = self.boilerplate
        return summary

    def to_state(self) -> dict[str, Any]:
        """Plain builtins only (JSON- and pickle-friendly); `from_state` restores it exactly."""
        state: dict[str, Any] = {name: getattr(self, name) for name in _TOTALS}
        state["word_counts"] = dict(self.settle())
        if self.languages:
            state["languages"] = dict(self.languages)
        if self.sentiment_labels:
            state["sentiment_labels"] = dict(self.sentiment_labels)
            state["sentiment_score_sum"] = self.sentiment_score_sum
        for name in ("duplicates", "boilerplate"):
            if getattr(self, name) is not None:
                state[name] = getattr(self, name)
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "Summary":
        return cls(
            records=int(state["records"]),
            ok=int(state["ok"]),
            failed=int(state["failed"]),
            total_chars=int(state["total_chars"]),
            total_words=int(state["total_words"]),
            word_counts=Counter(state["word_counts"]),
            languages=Counter(state.get("languages", {})),
            sentiment_labels=Counter(state.get("sentiment_labels", {})),
            sentiment_score_sum=float(state.get("sentiment_score_sum", 0.0)),
            duplicates=state.get("duplicates"),
            boilerplate=state.get("boilerplate"),
        )


def merge_columns(columns: Sequence[tuple[pa.Array, pa.Array]]) -> tuple[pa.Array, pa.Array]:
    """(word, count) columns merged in order: each word once, in first-occurrence order."""
    if len(columns) == 1:
        return columns[0]
    unique, sums, _ = merge_counts(
        [words for words, _ in columns], [numbers(counts) for _, counts in columns]
    )
    return unique, sums


def merge_counts(
    words: Sequence[pa.Array], counts: Sequence[np.ndarray[Any, Any]]
) -> tuple[pa.Array, pa.Int64Array, np.ndarray[Any, Any]]:
    """Words given chunk by chunk (at least one chunk, all of one type), each with its count,
    merged by one hash pass over the chunks as they are (not concatenated first: a copy of
    every word): each distinct word once, in first-occurrence order, with its summed count; and
    the number of each word given, in order (`dictionary_encode` numbers words as it first
    meets them)."""
    encoded = pc.dictionary_encode(pa.chunked_array(words))
    # One memo table over the chunks: every chunk carries the final dictionary.
    unique = encoded.chunk(encoded.num_chunks - 1).dictionary
    if any(len(chunk.dictionary) != len(unique) for chunk in encoded.chunks):
        raise RuntimeError("dictionary_encode gave chunks different dictionaries")
    indices = np.concatenate([numbers(chunk.indices) for chunk in encoded.chunks])
    sums = np.bincount(indices, weights=np.concatenate(counts), minlength=len(unique))
    return unique, int64_array(sums), indices


def top_of(words: pa.Array, counts: pa.Array, n: int) -> list[tuple[str, int]]:
    """The n most frequent, ties by first occurrence (Counter.most_common's order). The keys
    (count, position) are unique, so select_k's result does not depend on its instability."""
    k = min(n, len(words))
    if k <= 0:
        return []
    table = pa.table({"count": counts, "at": int64_array(np.arange(len(words)))})
    picked = pc.select_k_unstable(
        table, k, sort_keys=[("count", "descending"), ("at", "ascending")]
    )
    return list(zip(words.take(picked).to_pylist(), counts.take(picked).to_pylist(), strict=True))
