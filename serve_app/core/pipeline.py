"""Records in, result lines and a partial summary out: the bulk work of one chunk or file.

Every bulk path calls this: `/v1/batch` chunks and job blocks alike, so a record gives the
same result line whichever way it came. A result line is
`{"index", "source", "id", "text", "char_count", "word_count", "unique_words", "word_counts"}`
(only the `include`d result fields; plus "language" and "sentiment" when `analysis` asks,
"boilerplate" and "duplicate_of" when `dedup` does), an error line
`{"index", "source", "error"[, "id"]}`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from serve_app.core import cleaning, counting
from serve_app.core.analysis import boilerplate, dedup, review
from serve_app.core.chunk_words import count_chunk
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
    known_duplicates: Mapping[tuple[str | None, int], Any] | None = None,
    json_counts: bool = False,
) -> Analysis:
    """Clean and count every good record; an error row for every bad one.

    With `options.dedup.duplicates`, a record is a duplicate of an earlier one in `records`, or
    in `duplicates` when given: pass one index to calls made in input order to find duplicates
    across them, else each call finds those within its own records. Or, when the duplicates
    were found beforehand (a job's first pass), `known_duplicates` maps a record's
    `(source, index)` to its `duplicate_of`; every other record is no duplicate.

    `json_counts`: the rows go to `to_ndjson` and nowhere else, so a row's `word_counts` may
    be JSON already written (an `orjson.Fragment`, the same bytes) instead of a dict.
    """
    summary = Summary()
    flags = options.dedup
    index = duplicates
    deferred = flags.duplicates and options.defer_duplicates
    signatures: list[dedup.SignatureState] | None = [] if deferred else None
    words: list[dedup.Words] | None = [] if deferred and flags.exclude_from_counts else None
    known = known_duplicates if flags.duplicates else None
    if index is None and flags.duplicates and not deferred and known is None:
        index = dedup.DuplicateIndex(threshold=flags.threshold)
    # Flags and analytics need each record on its own: no whole-chunk counting then.
    per_record = flags.any or options.analysis.any
    include = options.include
    want_rows = include is None or bool(include)
    # Per-record counts only when a row shows them: the summary counts the words themselves.
    want_counts = include is None or not include.isdisjoint({"unique_words", "word_counts"})
    good = [r for r in records if r.error is None and r.text is not None]
    cleaned = cleaning.clean_many([r.text for r in good], options.clean)  # type: ignore[misc]
    count_options = options.count
    # Whitespace words are counted by Arrow, a chunk at a time (and text by text when rows
    # show counts); other words record by record, the summary counting them in C as it goes.
    by_record: bool | Literal["json"] = want_rows and want_counts
    if by_record and json_counts and count_options.top_k is None:  # first-occurrence order
        by_record = "json"
    chunk = None if per_record else count_chunk(cleaned, count_options, by_record=by_record)
    record_words: list[list[str]] | None = None
    if chunk is not None:
        word_totals = chunk.totals
        summary.add_columns(
            results=len(cleaned),
            char_count=sum(map(len, cleaned)),
            word_count=sum(word_totals),
            words=chunk.words,
            counts=chunk.counts,
        )
    else:
        record_words = counting.tokenize_many(cleaned, count_options)
        word_totals = [len(words) for words in record_words]
    # Signed together: a MinHash per call costs mostly numpy's per-call overhead.
    signed = dedup.signatures(cleaned) if index is not None or signatures is not None else None
    rows: list[dict[str, Any]] = []
    at = 0  # index of the next good record
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
        text = cleaned[at]
        char_count = len(text)
        marks: dict[str, Any] = {}
        if flags.boilerplate:
            default_review = boilerplate.is_boilerplate(text)
            summary.add_flags(boilerplate=default_review)
            if default_review:
                marks["boilerplate"] = True
        if index is not None:
            assert signed is not None
            first = index.check(record.index, signed[at])
            summary.add_flags(duplicate=first is not None)
            if first is not None:
                marks["duplicate_of"] = first
        elif known is not None:
            earlier = known.get((record.source, record.index))
            summary.add_flags(duplicate=earlier is not None)
            if earlier is not None:
                marks["duplicate_of"] = earlier
        if signatures is not None:
            assert signed is not None
            signatures.append((signed[at].exact, signed[at].minhash))
        counts: counting.WordCounts | None = None
        written: tuple[int, orjson.Fragment] | None = None  # unique words, word_counts as JSON
        if chunk is not None and chunk.tally_json is not None:
            unique_words, json_tally = chunk.tally_json[at]
            written = (unique_words, orjson.Fragment(json_tally))
        elif chunk is not None and chunk.tallies is not None:
            counts = counting.counts_of_tally(chunk.tallies[at], word_totals[at], count_options)
        elif chunk is None:
            assert record_words is not None
            taken = record_words[at]
            left_out = bool(marks) and flags.exclude_from_counts
            if want_rows and want_counts:
                # The row's counts are needed anyway: merging them is twice as fast as
                # counting the words again (a record's distinct words are ~10% of its words).
                counts, tally = counting.full_counts_of(taken, count_options)
                summary.add_result(
                    char_count=char_count,
                    word_count=0 if left_out else len(taken),
                    word_counts={} if left_out else tally,
                )
            else:
                summary.add_words(char_count=char_count, words=[] if left_out else taken)
            if words is not None:
                words.append(None if marks else (len(taken), dict(Counter(taken))))
        extra = review.analyze(text, options.analysis) if options.analysis.any else {}
        if extra:
            summary.add_analysis(extra)
        if want_rows:
            row = {"index": record.index, "source": record.source, "id": record.id}
            result: dict[str, Any] = {
                "text": text,
                "char_count": char_count,
                "word_count": word_totals[at],
            }
            if want_counts and written is not None:
                result["unique_words"], result["word_counts"] = written
            elif want_counts:
                assert counts is not None
                result["unique_words"] = counts.unique_words
                result["word_counts"] = counts.word_counts
            result.update(extra)
            if include is not None:
                result = {k: v for k, v in result.items() if k in include}
            row.update(result)
            row.update(marks)
            rows.append(row)
        at += 1
    return Analysis(rows, summary, signatures, words)


def to_ndjson(rows: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)
