import json
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serve_app.core.records import ParseOptions, Record, UploadError, parser_for
from serve_app.core.records.base import RecordMaker
from serve_app.core.records.jsonarray import JsonParser, whole_object

from .helpers import assert_numbered, chunks_of, cut, cut_points, errors, parse, repeat, texts

JSON = "application/json"

# Strings holding the bytes the scanner cares about, nested values, escapes, odd spacing.
TRICKY = (
    b' \r\n[ {"id": 1, "text": "a \\"quoted\\" }, ] { [ \\\\"},'
    b'{"id": 2, "meta": {"tags": ["x", {"y": "},"}]}, "text": "nested"} ,\n'
    b'{"text": "back\\\\slash\\\\", "id": "three"},'
    b'3, "four", null, [5],'
    b'{"id": 6, "text": 6},'
    b'{"id": 7},'
    b'{"id": 8, "text": "bad \xff byte"},'
    b'{"id": 9, "text": "lone \\udc00"},'
    b'{"id": 10, "text": "\\u00e9t\\u00e9 \\ud83d\\ude00"}'
    b"]\n"
)


def test_an_array_of_objects_and_errors_for_what_is_not_a_good_object() -> None:
    records = parse(JSON, TRICKY)
    assert_numbered(records)
    assert [r.id for r in records] == [1, 2, "three", None, None, None, None, 6, 7, None, 9, 10]
    assert texts(records)[:3] == ['a "quoted" }, ] { [ \\', "nested", "back\\slash\\"]
    assert texts(records)[-1] == "\u00e9t\u00e9 \U0001f600"
    assert errors(records)[3:11] == [
        "byte 160: expected a JSON object, got number",
        "byte 163: expected a JSON object, got string",
        "byte 171: expected a JSON object, got null",
        "byte 177: expected a JSON object, got array",
        'byte 181: field "text" is not a string (got number)',
        'byte 202: missing field "text"',
        "byte 212: invalid UTF-8 at byte 23",
        "byte 244: text contains a lone surrogate (U+DC00)",
    ]


@settings(max_examples=60, deadline=None)
@given(cuts=cut_points)
def test_chunking_does_not_change_the_records(cuts: list[int] | str) -> None:
    assert parse(JSON, TRICKY, chunks=cut(TRICKY, cuts)) == parse(JSON, TRICKY)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(
        st.fixed_dictionaries(
            {"text": st.text()}, optional={"id": st.integers(0, 9), "x": json_values}
        )
        | json_values,
        max_size=8,
    ),
    ensure_ascii=st.booleans(),
    indent=st.sampled_from([None, 0, 2]),
    cuts=cut_points,
)
def test_any_array_any_chunking(
    items: list[object], ensure_ascii: bool, indent: int | None, cuts: list[int] | str
) -> None:
    body = json.dumps(items, ensure_ascii=ensure_ascii, indent=indent).encode()
    records = parse(JSON, body, chunks=cut(body, cuts))
    assert records == parse(JSON, body)
    assert_numbered(records)
    assert len(records) == len(items)
    for item, record in zip(items, records, strict=True):
        if isinstance(item, dict) and "text" in item:
            assert record.text == item["text"]
        else:
            assert record.error is not None


def test_records_come_out_before_the_closing_bracket() -> None:
    parser = parser_for(JSON)
    assert [r.text for r in parser.feed(b'[{"text": "a"}, {"text": "b"}')] == ["a", "b"]
    assert [r.text for r in parser.feed(b', {"text": "c}",\n "id": {"nested": 1}}')] == [None]
    assert parser.feed(b" ]  \n") == []
    assert parser.close() == []


def test_a_single_object_is_one_record() -> None:
    [record] = parse(JSON, b' {"id": "x", "text": "only"}\n')
    assert (record.id, record.text, record.size) == ("x", "only", 27)


@pytest.mark.parametrize("body", [b"", b" \n ", b"[]", b" [ ] "])
def test_no_records(body: bytes) -> None:
    assert parse(JSON, body) == []


@pytest.mark.parametrize(
    ("body", "got"),
    [(b'"text"', "a string"), (b"12", "a number"), (b"null", "null"), (b"<xml/>", "invalid JSON")],
)
def test_top_level_must_be_an_object_or_an_array(body: bytes, got: str) -> None:
    with pytest.raises(UploadError, match=f"must be an object or an array, got {got}"):
        parse(JSON, body)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"text": "a"}, ', "byte 16: invalid JSON: expected a value"),
        (b'{"text": "a"},,', "byte 15: invalid JSON: expected a value"),
        (b'{"text": "a"} {"text": "b"}', "byte 15: invalid JSON: expected ',' or ']' before"),
        (b'{"text": "a"} x', "byte 15: invalid JSON: expected ',' or ']' after"),
        (b'{"text": tru}', "byte 10: invalid JSON: invalid literal"),
        (b'{"text": "a"]', "byte 13: invalid JSON: unexpected character"),
        (b"", "byte 1: invalid JSON: expected a value"),
        (b"}", "byte 1: invalid JSON: unexpected '}'"),
        (b'{"text": "a"}] ]', "byte 16: invalid JSON: unexpected data after the end"),
    ],
)
def test_malformed_json_is_one_error_record_and_the_end(body: bytes, error: str) -> None:
    body = b"[" + body + b', {"text": "never"}]'
    for chunks in ([body], chunks_of(body, 1)):
        records = parse(JSON, body, chunks=chunks)
        assert_numbered(records)
        assert "never" not in texts(records)
        assert records[-1].error is not None
        assert records[-1].error.startswith(error)
        assert records[-1].error.endswith("; the rest of the JSON was not parsed")
        assert all(r.error is None for r in records[:-1])


def test_nothing_is_parsed_after_a_malformed_value() -> None:
    parser = parser_for(JSON)
    assert errors(parser.feed(b'[{"text": "a"}, {"text": nope}, ')) == [
        None,
        "byte 25: invalid JSON: invalid literal, expected 'null'; "
        "the rest of the JSON was not parsed",
    ]
    assert parser.feed(b'{"text": "b"}]') == []
    assert parser.close() == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'[{"text": "a"}', "byte 14: truncated JSON: the upload ended before the closing ']'"),
        (b'[{"text": "a"}, ', "byte 16: truncated JSON: the upload ended before the closing ']'"),
        (b'[{"text": "a"}, {"text": "b', "byte 16: truncated JSON: the upload ended inside"),
        (b'[{"text": "a"}, {"text": "b"}', "byte 29: truncated JSON: the upload ended before"),
        (b'[{"text": "a"}, 12', "byte 16: truncated JSON: the upload ended inside"),
        (b'{"text": "a"', "byte 0: truncated JSON: the upload ended inside"),
    ],
)
def test_a_truncated_upload_ends_with_an_error_record(body: bytes, error: str) -> None:
    for chunks in ([body], chunks_of(body, 1)):
        records = parse(JSON, body, chunks=chunks)
        assert_numbered(records)
        assert records[-1].error is not None
        assert records[-1].error.startswith(error)


def test_byte_order_mark_is_skipped() -> None:
    body = b'\xef\xbb\xbf[{"text": "a"}]'
    for chunks in ([body], chunks_of(body, 1)):
        assert texts(parse(JSON, body, chunks=chunks)) == ["a"]


def test_a_long_string_in_small_chunks_is_linear() -> None:
    # Quadratic rescanning of a 10 MB string in 64 KB chunks, or of 200 KB in 1-byte chunks,
    # would take minutes; both are well under a second when each byte is scanned once.
    for text, size in ((b'\\"x}, ' * 2_000_000, 64 << 10), (b"a\\\\}" * 50_000, 1)):
        body = b'[{"text": "' + text + b'"}, {"text": "next"}]'
        options = ParseOptions(max_record_bytes=16 << 20)
        records = parse(JSON, body, chunks=chunks_of(body, size), options=options)
        assert len(records[0].text or "") == len(text.replace(b"\\\\", b"\\").replace(b'\\"', b'"'))
        assert texts(records)[1:] == ["next"]


def test_a_value_over_the_limit_is_one_error_record_and_is_never_buffered_whole() -> None:
    limit = 1 << 20
    chunk = b"x" * (64 << 10)
    parser = parser_for(JSON, ParseOptions(max_record_bytes=limit))
    records = parser.feed(b'[{"text": "before"}, {"text": "')
    tracemalloc.start()
    try:
        for piece in repeat(chunk, 800):  # a 50 MiB string
            records += parser.feed(piece)
            assert parser.buffered_bytes <= limit + len(chunk)
        records += parser.feed(b'"}, {"text": "after"}]')
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    records += parser.close()
    assert peak < 4 * limit
    assert_numbered(records)
    assert texts(records) == ["before", None, "after"]
    size = 800 * len(chunk) + len(b'{"text": ""}')
    assert records[1].error == f"byte 21: record is {size} bytes, limit is {limit}"


def test_values_over_the_limit_whatever_the_chunking() -> None:
    body = b'[{"text": "' + b"y" * 100 + b'"}, "' + b"z" * 100 + b'", {"text": "ok"}]'
    options = ParseOptions(max_record_bytes=50)
    for chunks in ([body], chunks_of(body, 7), chunks_of(body, 1)):
        records = parse(JSON, body, chunks=chunks, options=options)
        assert errors(records) == [
            "byte 1: record is 112 bytes, limit is 50",
            "byte 115: record is 102 bytes, limit is 50",
            None,
        ]


def _by_parser(body: bytes, options: ParseOptions) -> list[Record]:
    parser = JsonParser(RecordMaker(options, source="f.json"))
    return parser.feed(body) + parser.close()


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": "a b", "id": 7}',
        b'\xef\xbb\xbf \r\n{"text": "\\u4e2d\\u6587 x", "id": "r-1"}\n\t',
        b'{"text": "a}, {b", "id": 1.5}',  # what the scanner's fast guess gets wrong
        b'{"text": "x", "nested": {"a": [1, {"b": "}]"}]}}',
    ],
)
def test_a_whole_object_document_gives_the_parsers_record(body: bytes) -> None:
    options = ParseOptions()
    got = whole_object(body, RecordMaker(options, source="f.json"))
    assert got is not None
    assert got == _by_parser(body, options)


@pytest.mark.parametrize(
    "body",
    [
        b'[{"text": "a"}]',  # an array: the parser's
        b'{"text": 1}',  # not a good record: the parser says why
        b'{"id": 1}',
        b'{"text": "a"} x',  # trailing bytes
        b'{"text": "a"',  # truncated
        b'{"text": "\\ud800"}',  # orjson refuses a lone surrogate; the parser says which
        b"",
        b"  ",
    ],
)
def test_anything_but_a_good_object_is_left_to_the_parser(body: bytes) -> None:
    assert whole_object(body, RecordMaker(ParseOptions(), source="f.json")) is None


def test_an_object_over_the_record_limit_is_left_to_the_parser() -> None:
    options = ParseOptions(max_record_bytes=20)
    body = b'{"text": "' + b"x" * 20 + b'"}'
    assert whole_object(body, RecordMaker(options)) is None
    assert _by_parser(body, options)[0].error is not None


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["text", "id", "other"]),
        st.one_of(st.text(), st.integers(), st.none(), st.lists(st.integers(), max_size=2)),
    ),
    st.sampled_from([b"", b" ", b"\n", b"\xef\xbb\xbf"]),
)
def test_whole_object_agrees_with_the_parser(obj: dict[str, object], pad: bytes) -> None:
    body = pad + json.dumps(obj).encode() + pad.strip(b"\xef\xbb\xbf")
    options = ParseOptions()
    got = whole_object(body, RecordMaker(options, source="f.json"))
    expected = _by_parser(body, options)
    assert got is None or got == expected
    if got is None:  # declined only when the parser has something else to say
        assert len(expected) != 1 or expected[0].error is not None
