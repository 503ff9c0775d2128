"""What a correct answer looks like, as pure functions: each returns None, or the reason the
answer is wrong. The locustfile marks a request failed with that reason; the unit tests call
these directly.

Under load the risk is not only slowness: the ingress groups concurrent requests into one
downstream call, so a mix-up would hand one client another client's answer. Every request the
locustfile sends carries a unique marker word, and the checks ask for it back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

Problem = str | None
SUMMARY_TOTALS = ("records", "ok", "failed", "total_chars", "total_words", "unique_words")


def _ints(body: dict[str, Any], *fields: str) -> Problem:
    for name in fields:
        value = body.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"{name} is {value!r}, not a non-negative integer"
    return None


def check_clean(body: Any, *, marker: str | None = None) -> Problem:
    if not isinstance(body, dict):
        return f"body is {type(body).__name__}, not an object"
    text = body.get("text")
    if not isinstance(text, str):
        return f"text is {type(text).__name__}, not a string"
    if problem := _ints(body, "char_count"):
        return problem
    if body["char_count"] != len(text):
        return f"char_count {body['char_count']} != len(text) {len(text)}"
    if marker is not None and marker not in text:
        return f"marker {marker!r} missing from the cleaned text: someone else's answer?"
    return None


def check_count(body: Any, *, top_k: int | None = None, marker: str | None = None) -> Problem:
    if not isinstance(body, dict):
        return f"body is {type(body).__name__}, not an object"
    if problem := _ints(body, "word_count", "unique_words"):
        return problem
    counts = body.get("word_counts")
    if not isinstance(counts, dict):
        return f"word_counts is {type(counts).__name__}, not an object"
    if not all(isinstance(n, int) and n > 0 for n in counts.values()):
        return "word_counts holds a count that is not a positive integer"
    total = sum(counts.values())
    if top_k is None:
        if body["word_count"] != total:
            return f"word_count {body['word_count']} != sum(word_counts) {total}"
        if body["unique_words"] != len(counts):
            return f"unique_words {body['unique_words']} != len(word_counts) {len(counts)}"
    else:
        if len(counts) > min(top_k, body["unique_words"]):
            return f"{len(counts)} words returned for top_k={top_k}"
        if body["word_count"] < total:
            return f"word_count {body['word_count']} < sum of the top words {total}"
        if list(counts.values()) != sorted(counts.values(), reverse=True):
            return "top words are not ordered by count"
    if marker is not None and marker not in counts:
        return f"marker {marker!r} missing from word_counts: someone else's answer?"
    return None


def check_analyze(body: Any, *, top_k: int | None = None, marker: str | None = None) -> Problem:
    return check_clean(body, marker=marker) or check_count(body, top_k=top_k, marker=marker)


def check_seed_compatible(sent: str, body: Any) -> Problem:
    """`clean: {"preset": "minimal"}`, `count: {"tokenizer": "whitespace", "lowercase": false}`
    must answer exactly what the original script computed."""
    if problem := check_analyze(body):
        return problem
    expected = sent.replace("\n", " ").strip()
    if body["text"] != expected:
        return "text != sent.replace('\\n', ' ').strip()"
    words = Counter(expected.split())
    if body["word_counts"] != words:
        return "word_counts != Counter(text.split())"
    if list(body["word_counts"]) != list(words):
        return "word_counts are not in first-occurrence order"
    return None


class BatchStreamCheck:
    """Checks a /v1/batch NDJSON answer line by line: one line per record sent, indexes in
    order, then a summary line that agrees with the lines before it."""

    def __init__(
        self,
        *,
        records: int,
        summary_only: bool = False,
        expected_texts: Sequence[str] | None = None,
        expected_summary: Mapping[str, Any] | None = None,
    ) -> None:
        self.records = records
        self.summary_only = summary_only
        self.expected_texts = expected_texts
        self.expected_summary = expected_summary
        self.lines = 0
        self.ok = 0
        self.failed = 0
        self.chars = 0
        self.words = 0
        self.summary: dict[str, Any] | None = None
        self.problem: Problem = None

    def feed(self, line: dict[str, Any]) -> Problem:
        """Check one decoded line; the first problem is kept (and returned)."""
        if self.problem is None:
            self.problem = self._feed(line)
        return self.problem

    def _feed(self, line: Any) -> Problem:
        self.lines += 1
        if self.summary is not None:
            return f"line {self.lines} comes after the summary line"
        if not isinstance(line, dict):
            return f"line {self.lines} is {type(line).__name__}, not an object"
        if "summary" in line:
            self.summary = line["summary"]
            return None
        index = self.lines - 1
        if self.summary_only:
            return f"line {self.lines} is a record line, but include=none was asked for"
        if line.get("index") != index:
            return f"line {self.lines} has index {line.get('index')!r}, expected {index}"
        if "error" in line:
            self.failed += 1
            return None
        if problem := check_analyze(line):
            return f"record {index}: {problem}"
        if self.expected_texts is not None and (
            index >= len(self.expected_texts) or line["text"] != self.expected_texts[index]
        ):
            return f"record {index}: text is not the one sent at that index"
        self.ok += 1
        self.chars += line["char_count"]
        self.words += line["word_count"]
        return None

    def finish(self) -> Problem:
        """Call after the last line: the first problem seen, or what is missing or disagrees."""
        if self.problem is not None:
            return self.problem
        self.problem = self._finish()
        return self.problem

    def _finish(self) -> Problem:
        expected_lines = 1 if self.summary_only else self.records + 1
        summary = self.summary
        if not isinstance(summary, dict):
            return f"no summary line at the end ({self.lines} lines for {self.records} records)"
        if self.lines != expected_lines:
            return f"{self.lines} lines for {self.records} records (expected {expected_lines})"
        if problem := _ints(summary, *SUMMARY_TOTALS):
            return f"summary: {problem}"
        if summary["records"] != self.records:
            return f"summary.records {summary['records']} != {self.records} sent"
        if summary["ok"] + summary["failed"] != summary["records"]:
            return "summary: ok + failed != records"
        if not isinstance(summary.get("top_words"), list):
            return "summary.top_words is not a list"
        if self.expected_summary is not None:
            for key in SUMMARY_TOTALS:
                if summary[key] != self.expected_summary.get(key):
                    return (
                        f"summary.{key} {summary[key]} != {self.expected_summary.get(key)} "
                        "from an earlier upload of the same body"
                    )
        if self.summary_only:
            return None
        seen = {
            "ok": self.ok,
            "failed": self.failed,
            "total_chars": self.chars,
            "total_words": self.words,
        }
        for key, value in seen.items():
            if summary[key] != value:
                return f"summary.{key} {summary[key]} != {value} from the record lines"
        return None
