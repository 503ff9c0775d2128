from __future__ import annotations

import orjson
import pytest

from serve_app.core import cleaning, counting
from serve_app.core.pipeline import BulkOptions, analyze_records, to_ndjson
from serve_app.core.records import ParseOptions, Record, parser_for
from serve_app.core.summary import Summary


def parse(body: bytes) -> list:  # type: ignore[type-arg]
    parser = parser_for("application/x-ndjson", ParseOptions())
    return [*parser.feed(body), *parser.close()]


BODY = (
    b'{"id": 1, "text": "Great value, \\u7269\\u6d41\\u5f88\\u5feb"}\n'
    b'{"id": 2, "text": "<b>great</b>"}\n'
    b'{"id": 3}\n'
)


def test_result_and_error_rows_in_input_order() -> None:
    analysis = analyze_records(parse(BODY), BulkOptions())
    assert [row["index"] for row in analysis.rows] == [0, 1, 2]
    assert analysis.rows[1] == {
        "index": 1,
        "source": None,
        "id": 2,
        "text": "great",
        "char_count": 5,
        "word_count": 1,
        "unique_words": 1,
        "word_counts": {"great": 1},
    }
    assert analysis.rows[2] == {
        "index": 2,
        "source": None,
        "error": 'line 3: missing field "text"',
        "id": 3,
    }
    summary = analysis.summary.to_dict(3)
    assert (summary["records"], summary["ok"], summary["failed"]) == (3, 2, 1)
    assert summary["top_words"][0] == ["great", 2]


def test_include_selects_fields_and_none_keeps_only_errors() -> None:
    some = analyze_records(parse(BODY), BulkOptions(include=frozenset({"word_count"})))
    assert some.rows[0] == {"index": 0, "source": None, "id": 1, "word_count": 4}
    none = analyze_records(parse(BODY), BulkOptions(include=frozenset()))
    assert [row["index"] for row in none.rows] == [2]
    assert none.summary.records == 3


def test_seed_options_match_the_seed_script() -> None:
    seed = BulkOptions(
        clean=cleaning.CleanOptions(preset="minimal"),
        count=counting.CountOptions(tokenizer="whitespace", lowercase=False),
    )
    text = "seed  compatible\ntext text "
    rows = analyze_records(parse(orjson.dumps({"text": text}) + b"\n"), seed).rows
    words = text.replace("\n", " ").strip().split()
    assert rows[0]["word_count"] == len(words)
    assert rows[0]["word_counts"] == {"seed": 1, "compatible": 1, "text": 2}


def test_ndjson_is_one_line_per_row() -> None:
    rows = analyze_records(parse(BODY), BulkOptions()).rows
    assert to_ndjson(rows).count(b"\n") == 3


# --- the chunk's whitespace words, counted by Arrow --------------------------------------------


def records_of(texts: list[str]) -> list[Record]:
    return [Record(i, None, i, text, None, len(text)) for i, text in enumerate(texts)]


CHUNK = [
    "b a  b\nc",
    "a\u3000d\x1ce b",  # whitespace only str.split() and Arrow's Unicode split know
    "",
    "  ",
    "B b ß SS ss",
    "物流 很快 物流",
]


@pytest.mark.parametrize("top_k", [None, 2])
@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize(
    "texts", [CHUNK, CHUNK[:1], [t for t in CHUNK if t.isascii()], [*CHUNK, "a\ud800b a"]]
)
def test_chunk_counts_match_record_by_record(
    texts: list[str], lowercase: bool, top_k: int | None
) -> None:
    options = BulkOptions(
        clean=cleaning.CleanOptions(preset="minimal"),
        count=counting.CountOptions(tokenizer="whitespace", lowercase=lowercase, top_k=top_k),
    )
    analysis = analyze_records(records_of(texts), options)
    expected = Summary()
    for text in cleaning.clean_many(texts, options.clean):
        counts, full = counting.count_full(text, options.count)
        expected.add_result(char_count=len(text), word_count=counts.word_count, word_counts=full)
    assert analysis.summary == expected
    assert list(analysis.summary.word_counts) == list(expected.word_counts)  # first occurrence
    for row, text in zip(analysis.rows, cleaning.clean_many(texts, options.clean), strict=True):
        assert row["word_count"] == counting.count(text, options.count).word_count
        expected_counts = counting.count(text, options.count).word_counts
        assert list(row["word_counts"].items()) == list(expected_counts.items())
