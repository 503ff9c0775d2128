from __future__ import annotations

from collections import Counter

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def test_arrow_whitespace_is_str_split_whitespace() -> None:
    # The chunk path leans on this: Arrow's Unicode whitespace is exactly str.split()'s.
    points = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    texts = [f"a{chr(c)}b" for c in points]
    split = pc.utf8_split_whitespace(pa.array(texts)).to_pylist()
    assert [t for t, s in zip(texts, split, strict=True) if t.split() != s] == []
    ends = [f"{chr(c)}a{chr(c)}" for c in points]
    trimmed = pc.utf8_trim_whitespace(pa.array(ends)).to_pylist()
    assert [t for t, s in zip(ends, trimmed, strict=True) if t.strip() != s] == []


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


@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize(
    "texts", [CHUNK, CHUNK[:1], [t for t in CHUNK if t.isascii()], [*CHUNK, "a\ud800b a"]]
)
def test_chunk_counts_match_record_by_record(texts: list[str], lowercase: bool) -> None:
    options = BulkOptions(
        clean=cleaning.CleanOptions(preset="minimal"),
        count=counting.CountOptions(tokenizer="whitespace", lowercase=lowercase),
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
        assert row["word_counts"] == counting.count(text, options.count).word_counts


def test_chunk_split_of_unstripped_texts() -> None:
    from serve_app.core.pipeline import _split_chunk

    texts = ["", " ", " x ", "\u3000a b\x1c", "a"]
    options = counting.CountOptions(tokenizer="whitespace", lowercase=False)
    split = _split_chunk(texts, options)
    assert split is not None
    totals, words, counts = split
    assert totals == [0, 0, 1, 2, 1]
    assert dict(zip(words.to_pylist(), counts.to_pylist(), strict=True)) == {"x": 1, "a": 2, "b": 1}
    assert words.to_pylist() == ["x", "a", "b"]  # first occurrence; the empty texts' "" dropped


# Every character str.split() splits at: ASCII blanks, the ones only Unicode's split knows.
BLANKS = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


@pytest.mark.parametrize("blank", [b for b in BLANKS if b not in " \t\n\v\f\r"])
def test_chunk_split_at_each_blank_only_unicode_knows(blank: str) -> None:
    from serve_app.core.pipeline import _split_chunk

    # One such blank, in one text of a chunk that is otherwise ASCII-blank only.
    texts = ["x y", f"a{blank}b c", "物流 很快"]
    split = _split_chunk(texts, counting.CountOptions(tokenizer="whitespace", lowercase=False))
    assert split is not None
    totals, words, counts = split
    assert totals == [len(t.split()) for t in texts]
    expected = Counter(word for text in texts for word in text.split())
    assert dict(zip(words.to_pylist(), counts.to_pylist(), strict=True)) == expected


@given(st.lists(st.text(alphabet=st.sampled_from([*BLANKS, "a", "b", "é", "物", "流"]))))
def test_chunk_split_is_str_split(texts: list[str]) -> None:
    from serve_app.core.pipeline import _split_chunk

    split = _split_chunk(texts, counting.CountOptions(tokenizer="whitespace", lowercase=False))
    if not texts:
        assert split is None
        return
    assert split is not None
    totals, words, counts = split
    assert totals == [len(t.split()) for t in texts]
    expected = Counter(word for text in texts for word in text.split())
    assert words.type == pa.large_string()
    assert list(zip(words.to_pylist(), counts.to_pylist(), strict=True)) == list(expected.items())
