import pytest
from hypothesis import given, settings

from serve_app.core.records import ParseOptions, UploadError, parser_for

from .helpers import (
    assert_numbered,
    chunks_of,
    cut,
    cut_points,
    errors,
    gz,
    gzip_of_zeros,
    multipart,
    ndjson,
    parse,
    texts,
)

FORM = "multipart/form-data; boundary=b0uNd4ry"

FILES = [
    ("title", None, b"not a file: ignored"),
    ("files", "a.jsonl", ndjson({"id": 1, "text": "a1"}, {"id": 2, "text": "a2"})),
    ("files", "b.CSV", b'id,text\n3,"b\r\n1"\n4,b2\n'),
    ("files", "c.json.gz", gz(b'[{"id": 5, "text": "c1"}, {"id": 6, "text": 6}]')),
    ("files", "d.txt", b"no format for this"),
    ("files", "e.csv", b"id,body\n7,no text column\n"),
    ("files", "f.ndjson.gz", b"not gzip at all"),
    ("other", "g.jsonl", ndjson({"text": "a file in another field: ignored"})),
    ("files", "h.json", b'{"id": 8, "text": "single object"}'),
    ("files", "caf\u00e9 \u6771\u4eac.jsonl", b'{"id": 9, "text": "utf-8 name"}'),
]
BODY = multipart(FILES)


def test_files_of_every_format_in_input_order() -> None:
    records = parse(FORM, BODY)
    assert_numbered(records)
    assert [(r.source, r.id, r.text) for r in records] == [
        ("a.jsonl", 1, "a1"),
        ("a.jsonl", 2, "a2"),
        ("b.CSV", "3", "b\r\n1"),
        ("b.CSV", "4", "b2"),
        ("c.json.gz", 5, "c1"),
        ("c.json.gz", 6, None),
        ("d.txt", None, None),
        ("e.csv", None, None),
        ("f.ndjson.gz", None, None),
        ("h.json", 8, "single object"),
        ("caf\u00e9 \u6771\u4eac.jsonl", 9, "utf-8 name"),
    ]
    assert errors(records)[5:9] == [
        'byte 26: field "text" is not a string (got number)',
        "unsupported file type: use .jsonl, .ndjson, .json, .csv, optionally gzipped (.gz)",
        "CSV has no \"text\" column; header: 'id', 'body'; the rest of this file was skipped",
        "invalid gzip data: Error -3 while decompressing data: incorrect header check;"
        " the rest of this file was skipped",
    ]


@settings(max_examples=40, deadline=None)
@given(cuts=cut_points)
def test_chunking_does_not_change_the_records(cuts: list[int] | str) -> None:
    assert parse(FORM, BODY, chunks=cut(BODY, cuts)) == parse(FORM, BODY)


def test_a_gzip_bomb_is_an_error_record_for_its_file_and_the_others_go_on() -> None:
    body = multipart(
        [
            ("files", "before.jsonl", ndjson({"text": "before"})),
            ("files", "bomb.jsonl.gz", gzip_of_zeros(200)),
            ("files", "after.jsonl", ndjson({"text": "after"})),
        ]
    )
    options = ParseOptions(max_record_bytes=1 << 20, max_decompressed_bytes=10 << 20)
    records = parse(FORM, body, chunks=chunks_of(body, 64 << 10), options=options)
    assert texts(records) == ["before", None, "after"]
    assert records[1].source == "bomb.jsonl.gz"
    assert records[1].error == (
        "decompressed data is over the limit of 10485760 bytes; the rest of this file was skipped"
    )


def test_bad_records_in_a_file_are_error_records_with_its_name() -> None:
    body = multipart([("files", "x.jsonl", b'{"text": "ok"}\n{"text": 1}\nnope\n')])
    records = parse(FORM, body)
    assert [(r.source, r.error) for r in records] == [
        ("x.jsonl", None),
        ("x.jsonl", 'line 2: field "text" is not a string (got number)'),
        ("x.jsonl", "line 3: invalid JSON: invalid literal, expected 'null' at byte 0"),
    ]


def test_an_upload_cut_inside_a_file_ends_with_an_error_record_for_it() -> None:
    body = multipart([("files", "x.jsonl", ndjson({"text": "a"}, {"text": "b"}))])
    records = parse(FORM, body[: body.index(b'{"text":"b"}') + 5])
    assert texts(records) == ["a", None]
    assert records[1].source == "x.jsonl"
    assert records[1].error == "the upload ended inside this file (no closing multipart boundary)"


def test_an_empty_body_and_a_form_with_no_files() -> None:
    assert parse(FORM, b"") == []
    assert parse(FORM, multipart([("files", "empty.jsonl", b"")])) == []
    with pytest.raises(
        UploadError, match=r"no file in the form field \"files\" \(fields found: 'file'\)"
    ):
        parse(FORM, multipart([("file", "x.jsonl", ndjson({"text": "a"}))]))


def test_a_malformed_body_is_an_upload_error() -> None:
    with pytest.raises(UploadError, match="malformed multipart body"):
        parse(FORM, b"--b0uNd4ry\r\nno colon in this header\r\n\r\n")


def test_multipart_needs_a_boundary() -> None:
    with pytest.raises(UploadError, match="without a boundary"):
        parser_for("multipart/form-data")
