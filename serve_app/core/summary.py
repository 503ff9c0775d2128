"""The mergeable aggregate of a batch: records, characters, words and the most frequent words.

Partial summaries are built where the records are counted and merged where they meet;
merging a's then b's equals one pass over a's records then b's, including the order of
`word_counts` (first occurrence), so ties in `top_words` break the same way.
Feed `add_result` the untruncated counts in first-occurrence order (`counting.count_full`).
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Summary"]

_TOTALS = ("records", "ok", "failed", "total_chars", "total_words")


@dataclass(slots=True)
class Summary:
    records: int = 0
    ok: int = 0
    failed: int = 0
    total_chars: int = 0
    total_words: int = 0
    word_counts: Counter[str] = field(default_factory=Counter)

    def add_result(
        self, *, char_count: int, word_count: int, word_counts: Mapping[str, int]
    ) -> None:
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
        self.records += 1
        self.ok += 1
        self.total_chars += char_count
        self.total_words += len(words)
        self.word_counts.update(words)

    def add_results(
        self, *, results: int, char_count: int, word_count: int, word_counts: Mapping[str, int]
    ) -> None:
        """Many results at once, their counts merged (in first-occurrence order)."""
        self.records += results
        self.ok += results
        self.total_chars += char_count
        self.total_words += word_count
        self.word_counts.update(word_counts)

    def add_failure(self) -> None:
        self.records += 1
        self.failed += 1

    def merge(self, other: "Summary") -> "Summary":
        self.records += other.records
        self.ok += other.ok
        self.failed += other.failed
        self.total_chars += other.total_chars
        self.total_words += other.total_words
        self.word_counts.update(other.word_counts)
        return self

    @property
    def unique_words(self) -> int:
        return len(self.word_counts)

    def top_words(self, n: int = 10) -> list[tuple[str, int]]:
        # most_common sorts stably: equal counts keep first-occurrence order
        return self.word_counts.most_common(n)

    def to_dict(self, top_n: int = 10) -> dict[str, Any]:
        return {
            "records": self.records,
            "ok": self.ok,
            "failed": self.failed,
            "total_chars": self.total_chars,
            "total_words": self.total_words,
            "unique_words": self.unique_words,
            "top_words": [[word, n] for word, n in self.top_words(top_n)],
        }

    def to_state(self) -> dict[str, Any]:
        """Plain builtins only (JSON- and pickle-friendly); `from_state` restores it exactly."""
        state: dict[str, Any] = {name: getattr(self, name) for name in _TOTALS}
        state["word_counts"] = dict(self.word_counts)
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "Summary":
        return cls(
            **{name: int(state[name]) for name in _TOTALS},
            word_counts=Counter(state["word_counts"]),
        )
