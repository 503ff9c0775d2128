"""Records in, result lines and a partial summary out: the bulk work of one chunk or file.

Every bulk path calls this: `/v1/batch` chunks and job blocks alike, so a record gives the
same result line whichever way it came. A result line is
`{"index", "source", "id", "text", "char_count", "word_count", "unique_words", "word_counts"}`
(only the `include`d result fields; plus "language" and "sentiment" when `analysis` asks),
an error line `{"index", "source", "error"[, "id"]}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from serve_app.core import cleaning, counting
from serve_app.core.analysis import boilerplate, dedup, review
from serve_app.core.records import Record
from serve_app.core.summary import Summary

RESULT_FIELDS: Final = frozenset(
    {"text", "char_count", "word_count", "unique_words", "word_counts", "language", "sentiment"}
)


@dataclass(frozen=True, slots=True)
class BulkOptions:
    clean: cleaning.CleanOptions = cleaning.CleanOptions()
    count: counting.CountOptions = counting.CountOptions()
    # Result fields per record: None for all, an empty set for none (then only the summary
    # and the error lines matter).
    include: frozenset[str] | None = None
    analysis: review.AnalysisOptions = review.AnalysisOptions()
    dedup: dedup.DedupOptions = dedup.DedupOptions()
    # Duplicates across chunks that run apart (/v1/batch): leave them to the caller, which
    # checks `Analysis.signatures` in input order against one index.
    defer_duplicates: bool = False


@dataclass(frozen=True, slots=True)
class Analysis:
    rows: list[dict[str, Any]]  # one per record, in order; empty when nothing is included
    summary: Summary
    # With defer_duplicates: per record, its signature (None for an error record) and, when
    # flagged records are left out of the counts, its words (None: already left out).
    signatures: list[dedup.SignatureState] | None = None
    words: list[dedup.Words] | None = None


def analyze_records(
    records: Sequence[Record],
    options: BulkOptions,
    *,
    duplicates: dedup.DuplicateIndex | None = None,
) -> Analysis:
    """Clean and count every good record; an error row for every bad one.

    With `options.dedup.duplicates`, a record is a duplicate of an earlier one in `records`, or
    in `duplicates` when given: pass one index to calls made in input order to find duplicates
    across them (a job's blocks), else each call finds those within its own records.
    """
    summary = Summary()
    flags = options.dedup
    index = duplicates
    deferred = flags.duplicates and options.defer_duplicates
    signatures: list[dedup.SignatureState] | None = [] if deferred else None
    words: list[dedup.Words] | None = [] if deferred and flags.exclude_from_counts else None
    if index is None and flags.duplicates and not deferred:
        index = dedup.DuplicateIndex(threshold=flags.threshold)
    include = options.include
    want_rows = include is None or bool(include)
    good = [r for r in records if r.error is None and r.text is not None]
    cleaned = cleaning.clean_many([r.text for r in good], options.clean)  # type: ignore[misc]
    results = iter(zip(cleaned, counting.count_with_full(cleaned, options.count), strict=True))
    rows: list[dict[str, Any]] = []
    for record in records:
        if record.error is not None or record.text is None:
            summary.add_failure()
            row: dict[str, Any] = {"index": record.index, "source": record.source}
            row["error"] = record.error
            if record.id is not None:
                row["id"] = record.id
            rows.append(row)
            if signatures is not None:
                signatures.append(None)
            if words is not None:
                words.append(None)
            continue
        text, (counts, full) = next(results)
        char_count = len(text)
        marks: dict[str, Any] = {}
        if flags.boilerplate:
            default_review = boilerplate.is_boilerplate(text)
            summary.add_flags(boilerplate=default_review)
            if default_review:
                marks["boilerplate"] = True
        if index is not None and flags.duplicates:
            first = index.check(record.index, dedup.signature(text))
            summary.add_flags(duplicate=first is not None)
            if first is not None:
                marks["duplicate_of"] = first
        if signatures is not None:
            sig = dedup.signature(text)
            signatures.append((sig.exact, sig.minhash))
        if words is not None:
            words.append(None if marks else (counts.word_count, dict(full)))
        if marks and flags.exclude_from_counts:
            summary.add_result(char_count=char_count, word_count=0, word_counts={})
        else:
            summary.add_result(
                char_count=char_count, word_count=counts.word_count, word_counts=full
            )
        extra = review.analyze(text, options.analysis) if options.analysis.any else {}
        if extra:
            summary.add_analysis(extra)
        if not want_rows:
            continue
        row = {"index": record.index, "source": record.source, "id": record.id}
        result = {
            "text": text,
            "char_count": char_count,
            "word_count": counts.word_count,
            "unique_words": counts.unique_words,
            "word_counts": counts.word_counts,
            **extra,
        }
        if include is not None:
            result = {k: v for k, v in result.items() if k in include}
        row.update(result)
        row.update(marks)
        rows.append(row)
    return Analysis(rows, summary, signatures, words)


def to_ndjson(rows: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)
