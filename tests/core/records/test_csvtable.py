import csv
import io
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serve_app.core.records import ParseOptions, UploadError, parser_for

from .helpers import assert_numbered, chunks_of, cut, cut_points, errors, parse, repeat, texts

CSV = "text/csv"

MIXED = (
    b"id,text,lang\r\n"
    b"1,plain,en\r\n"
    b'2,"comma, and ""quotes""",en\r\n'
    b"\r\n"
    b'3,"two\r\nlines, ""quoted""\nand a bare newline",fr\r\n'
    b"4,too,many,fields\r\n"
    b"5,too few\r\n"
    b"6,bad \xff byte,en\r\n"
    b'7,"closed" then text,en\r\n'
    b",no id,en\r\n"
    b'8,"last, unterminated\r\n'
)


def test_rows_quoted_fields_and_one_error_record_per_bad_row() -> None:
    records = parse(CSV, MIXED)
    assert_numbered(records)
    assert [(r.id, r.text) for r in records if r.error is None] == [
        ("1", "plain"),
        ("2", 'comma, and "quotes"'),
        ("3", 'two\r\nlines, "quoted"\nand a bare newline'),
        (None, "no id"),
    ]
    assert errors(records) == [
        None,
        None,
        None,
        "line 8: expected 3 fields, got 4",
        "line 9: expected 3 fields, got 2",
        "line 10: invalid UTF-8 at byte 6",
        "line 11: malformed CSV: ',' expected after '\"'",
        None,
        "line 13: unterminated quoted field (the upload ended inside it)",
    ]
    assert records[0].size == len(b"1,plain,en\r")


@settings(max_examples=60, deadline=None)
@given(cuts=cut_points)
def test_chunking_does_not_change_the_records(cuts: list[int] | str) -> None:
    assert parse(CSV, MIXED, chunks=cut(MIXED, cuts)) == parse(CSV, MIXED)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 99), st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
        ),
        max_size=10,
    ),
    # Minimal quoting with "\n" line ends leaves a "\r" in a field bare, which no reader can
    # tell from a line end, so that writer quotes everything.
    dialect=st.sampled_from([("\r\n", False), ("\n", True)]),
    cuts=cut_points,
)
def test_any_table_any_chunking(
    rows: list[tuple[int, str]], dialect: tuple[str, bool], cuts: list[int] | str
) -> None:
    out = io.StringIO()
    line_end, quote_all = dialect
    writer = csv.writer(out, lineterminator=line_end)
    if quote_all:
        writer = csv.writer(out, lineterminator=line_end, quoting=csv.QUOTE_ALL)
    writer.writerow(["id", "text"])
    writer.writerows(rows)
    body = out.getvalue().encode()
    records = parse(CSV, body, chunks=cut(body, cuts))
    assert records == parse(CSV, body)
    expected = [(str(i), t) for i, t in rows]
    assert [(r.id, r.text) for r in records] == expected
    assert_numbered(records)


def test_the_text_and_id_columns_are_options_and_id_is_optional() -> None:
    body = b"title,body\nt1,hello\n"
    [record] = parse(CSV, body, options=ParseOptions(text_field="body", id_field="title"))
    assert (record.id, record.text) == ("t1", "hello")
    [record] = parse(CSV, b"text\nhello\n")
    assert (record.id, record.text) == (None, "hello")


def test_a_csv_without_the_text_column_is_unusable() -> None:
    with pytest.raises(UploadError, match=r"CSV has no \"text\" column; header: 'id', 'body'"):
        parse(CSV, b"\xef\xbb\xbfid,body\n1,hello\n")


def test_the_header_may_come_after_blank_lines_and_a_byte_order_mark() -> None:
    body = b"\xef\xbb\xbf\r\n\ntext\nhello"
    for chunks in ([body], chunks_of(body, 1)):
        assert texts(parse(CSV, body, chunks=chunks)) == ["hello"]


@pytest.mark.parametrize("body", [b"", b"\n\r\n", b"id,text\r\n", b"id,text"])
def test_no_records(body: bytes) -> None:
    assert parse(CSV, body) == []


def test_a_bad_header_is_an_upload_error() -> None:
    with pytest.raises(UploadError, match="CSV header: invalid UTF-8 at byte 3"):
        parse(CSV, b"id,\xfftext\n")


def test_a_row_over_the_limit_is_one_error_record_and_is_never_buffered_whole() -> None:
    limit = 1 << 20
    chunk = b'x"",' * (16 << 10)  # 64 KiB of quotes and commas inside a quoted field
    parser = parser_for(CSV, ParseOptions(max_record_bytes=limit))
    records = parser.feed(b'id,text\n1,before\n2,"')
    tracemalloc.start()
    try:
        for piece in repeat(chunk, 800):  # a 50 MiB field
            records += parser.feed(piece + b"\n")
            assert parser.buffered_bytes <= limit + len(chunk) + 1
        records += parser.feed(b'"\n3,after\n')
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    records += parser.close()
    assert peak < 4 * limit
    assert_numbered(records)
    assert texts(records) == ["before", None, "after"]
    size = 800 * (len(chunk) + 1) + len(b'2,""')
    assert records[1].error == f"line 3: record is {size} bytes, limit is {limit}"


def test_rows_over_the_limit_whatever_the_chunking() -> None:
    body = b"text\n" + b"y" * 100 + b'\nok\n"' + b"z\n" * 50 + b'"\nlast\n"' + b"w" * 60
    options = ParseOptions(max_record_bytes=50)
    for chunks in ([body], chunks_of(body, 7), chunks_of(body, 1)):
        records = parse(CSV, body, chunks=chunks, options=options)
        assert errors(records) == [
            "line 2: record is 100 bytes, limit is 50",
            None,
            "line 4: record is 102 bytes, limit is 50",
            None,
            "line 56: record is 61 bytes, limit is 50 (the upload ended inside it)",
        ]
