"""The mergeable aggregate of a batch: records, characters, words and the most frequent words.

Partial summaries are built where the records are counted and merged where they meet;
merging a's then b's equals one pass over a's records then b's, including the order of
`word_counts` (first occurrence), so ties in `top_words` break the same way.
Feed `add_result` the untruncated counts in first-occurrence order (`counting.count_full`).
`add_analysis` adds the review analytics (records per language, sentiment labels and scores);
they appear in `to_dict` and `to_state` only once some were added, so a summary without them
is what it always was.
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
    languages: Counter[str] = field(default_factory=Counter)
    sentiment_labels: Counter[str] = field(default_factory=Counter)
    sentiment_score_sum: float = 0.0
    # None: not looked for (and not in to_dict); a count once a batch asks.
    duplicates: int | None = None
    boilerplate: int | None = None

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
        counts = self.word_counts
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
        self.word_counts.update(other.word_counts)
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
        return len(self.word_counts)

    def top_words(self, n: int = 10) -> list[tuple[str, int]]:
        # most_common sorts stably: equal counts keep first-occurrence order
        return self.word_counts.most_common(n)

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
        state["word_counts"] = dict(self.word_counts)
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
            **{name: int(state[name]) for name in _TOTALS},
            word_counts=Counter(state["word_counts"]),
            languages=Counter(state.get("languages", {})),
            sentiment_labels=Counter(state.get("sentiment_labels", {})),
            sentiment_score_sum=float(state.get("sentiment_score_sum", 0.0)),
            duplicates=state.get("duplicates"),
            boilerplate=state.get("boilerplate"),
        )
