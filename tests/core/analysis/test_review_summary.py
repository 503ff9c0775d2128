"""Analytics in the bulk work unit and the summary: additive, mergeable, off by default."""

from __future__ import annotations

import orjson

from serve_app.core.analysis.review import AnalysisOptions
from serve_app.core.pipeline import BulkOptions, analyze_records
from serve_app.core.records import ParseOptions, parser_for
from serve_app.core.summary import Summary

REVIEWS = ["质量很好，物流很快，非常满意", "太差了，用了两天就坏了", "Great value, would buy again"]
BODY = b"".join(orjson.dumps({"text": text}) + b"\n" for text in REVIEWS)
BOTH = BulkOptions(analysis=AnalysisOptions(language=True, sentiment=True))


def parse(body: bytes) -> list:  # type: ignore[type-arg]
    parser = parser_for("application/x-ndjson", ParseOptions())
    return [*parser.feed(body), *parser.close()]


def test_rows_carry_language_and_sentiment_and_the_summary_counts_them() -> None:
    analysis = analyze_records(parse(BODY), BOTH)
    assert [row["language"] for row in analysis.rows] == ["zh", "zh", "en"]
    assert [row["sentiment"]["label"] for row in analysis.rows] == [
        "positive",
        "negative",
        "positive",
    ]
    summary = analysis.summary.to_dict()
    assert summary["languages"] == {"zh": 2, "en": 1}
    assert summary["sentiment"]["labels"] == {"positive": 2, "neutral": 0, "negative": 1}
    mean = sum(row["sentiment"]["score"] for row in analysis.rows) / 3
    assert abs(summary["sentiment"]["mean_score"] - mean) < 1e-3


def test_without_analysis_rows_and_summary_are_unchanged() -> None:
    analysis = analyze_records(parse(BODY), BulkOptions())
    assert all("language" not in row and "sentiment" not in row for row in analysis.rows)
    assert set(analysis.summary.to_dict()) == {
        "records",
        "ok",
        "failed",
        "total_chars",
        "total_words",
        "unique_words",
        "top_words",
    }
    assert set(analysis.summary.to_state()) == {
        "records",
        "ok",
        "failed",
        "total_chars",
        "total_words",
        "word_counts",
    }


def test_analytics_merge_across_partial_summaries_and_survive_their_state() -> None:
    records = parse(BODY)
    whole = analyze_records(records, BOTH).summary
    parts = [analyze_records(records[i : i + 1], BOTH).summary for i in range(len(records))]
    merged = Summary()
    for part in parts:
        merged.merge(Summary.from_state(orjson.loads(orjson.dumps(part.to_state()))))
    assert merged.to_dict() == whole.to_dict()


def test_include_can_pick_the_analysis_fields() -> None:
    options = BulkOptions(
        include=frozenset({"language"}), analysis=AnalysisOptions(language=True, sentiment=True)
    )
    rows = analyze_records(parse(BODY), options).rows
    assert rows[2] == {"index": 2, "source": None, "id": None, "language": "en"}
