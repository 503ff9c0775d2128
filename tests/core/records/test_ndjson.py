import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from serve_app.core.records import ParseOptions, parser_for

from .helpers import assert_numbered, chunks_of, cut, cut_points, errors, ndjson, parse, repeat

NDJSON = "application/x-ndjson"

MIXED = (
    b'{"id": 1, "text": "one"}\n'
    b"{not json\n"
    b'{"id": 2, "text": 2}\n'
    b"\n"
    b'["text"]\n'
    b'{"id": 3}\n'
    b'{"id": 4, "text": "bad \xff byte"}\n'
    b'{"id": 5, "text": "lone \\ud800"}\n'
    b'{"id": 6, "text": "pair \\ud83d\\ude00"}\n'
    b'{"id": 7, "text": "trailing \\r"}\r\n'
    b'{"id": [8], "text": "id is not a scalar"}\n'
    b'{"id": 9, "text": "last, no newline"}'
)


def test_good_records_with_ids_of_every_scalar_type() -> None:
    body = ndjson(
        {"id": "a", "text": "x"},
        {"id": 2, "text": "y"},
        {"id": 2.5, "text": "z"},
        {"id": True, "text": ""},
        {"id": None, "text": "n"},
        {"text": "no id", "other": {"nested": [1]}},
    )
    records = parse(NDJSON, body)
    assert_numbered(records)
    assert [(r.id, r.text) for r in records] == [
        ("a", "x"),
        (2, "y"),
        (2.5, "z"),
        (True, ""),
        (None, "n"),
        (None, "no id"),
    ]
    assert all(r.source is None and r.error is None for r in records)
    assert sum(r.size for r in records) + len(records) == len(body)


def test_bad_lines_are_one_error_record_each_and_the_rest_goes_on() -> None:
    records = parse(NDJSON, MIXED)
    assert_numbered(records)
    assert [r.id for r in records] == [1, None, 2, None, 3, None, 5, 6, 7, None, 9]
    assert errors(records) == [
        None,
        "line 2: invalid JSON: unexpected character, expected a string key at byte 1",
        'line 3: field "text" is not a string (got number)',
        "line 5: expected a JSON object, got array",
        'line 6: missing field "text"',
        "line 7: invalid UTF-8 at byte 23",
        "line 8: text contains a lone surrogate (U+D800)",
        None,
        None,
        'line 11: field "id" is not a scalar (got array)',
        None,
    ]
    assert records[7].text == "pair \U0001f600"
    assert records[8].text == "trailing \r"


def test_blank_lines_and_crlf_are_not_records() -> None:
    body = b'\r\n  \n{"text": "a"}\r\n\r\n\t\n{"text": "b"}\r\n\n'
    assert [r.text for r in parse(NDJSON, body)] == ["a", "b"]


def test_empty_body_has_no_records() -> None:
    assert parse(NDJSON, b"") == []
    assert parse(NDJSON, b"\n\n\r\n") == []


def test_a_truncated_last_line_is_an_error_record() -> None:
    records = parse(NDJSON, b'{"text": "a"}\n{"text": "b')
    assert records[0].text == "a"
    assert records[1].error == "line 2: invalid JSON: unexpected end of data at byte 11"


def test_byte_order_mark_is_skipped() -> None:
    body = b'\xef\xbb\xbf{"text": "a"}\n'
    assert [r.text for r in parse(NDJSON, body, chunks=chunks_of(body, 1))] == ["a"]


def test_text_and_id_fields_are_options() -> None:
    body = ndjson({"doc": "d1", "body": "hello", "text": "ignored"})
    options = ParseOptions(text_field="body", id_field="doc")
    [record] = parse(NDJSON, body, options=options)
    assert (record.id, record.text) == ("d1", "hello")


@settings(max_examples=60, deadline=None)
@given(cuts=cut_points)
def test_chunking_does_not_change_the_records(cuts: list[int] | str) -> None:
    assert parse(NDJSON, MIXED, chunks=cut(MIXED, cuts)) == parse(NDJSON, MIXED)


@settings(max_examples=40, deadline=None)
@given(
    lines=st.lists(
        st.one_of(
            st.fixed_dictionaries({"id": st.integers(-(2**63), 2**63 - 1), "text": st.text()}),
            # Raw bytes stand for broken lines; Hypothesis also tries constants from the source,
            # such as b'{"text":""}', which are records, not broken lines.
            st.binary(max_size=30).filter(lambda raw: b'"text"' not in raw),
        ),
        max_size=20,
    ),
    cuts=cut_points,
)
def test_any_lines_any_chunking(
    lines: list[dict[str, object] | bytes], cuts: list[int] | str
) -> None:
    body = b"\n".join(
        line.replace(b"\n", b" ") if isinstance(line, bytes) else ndjson(line)[:-1]
        for line in lines
    )
    records = parse(NDJSON, body, chunks=cut(body, cuts))
    assert records == parse(NDJSON, body)
    assert_numbered(records)
    expected = [line["text"] for line in lines if isinstance(line, dict)]
    assert [r.text for r in records if r.text is not None] == expected


def test_a_line_over_the_limit_is_one_error_record_and_is_never_buffered_whole() -> None:
    limit = 1 << 20
    chunk = b"x" * (64 << 10)
    parser = parser_for(NDJSON, ParseOptions(max_record_bytes=limit))
    records = parser.feed(b'{"text": "before"}\n')
    tracemalloc.start()
    try:
        for piece in repeat(chunk, 800):  # a 50 MiB line
            records += parser.feed(piece)
            assert parser.buffered_bytes <= limit + len(chunk)
        records += parser.feed(b'\n{"text": "after"}\n')
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    records += parser.close()
    assert peak < 4 * limit
    assert_numbered(records)
    assert [r.text for r in records] == ["before", None, "after"]
    assert records[1].error == f"line 2: record is {800 * len(chunk)} bytes, limit is {limit}"
    assert records[1].size == 800 * len(chunk)


def test_an_oversize_line_in_one_chunk_and_at_the_end() -> None:
    body = b'{"text": "' + b"y" * 100 + b'"}\n{"text": "ok"}\n' + b"z" * 200
    options = ParseOptions(max_record_bytes=50)
    for chunks in ([body], chunks_of(body, 7)):
        records = parse(NDJSON, body, chunks=chunks, options=options)
        assert errors(records) == [
            "line 1: record is 112 bytes, limit is 50",
            None,
            "line 3: record is 200 bytes, limit is 50 (the upload ended inside it)",
        ]
