import tracemalloc

import pytest

from serve_app.core.records import ParseOptions, UnsupportedMediaType, UploadError, parser_for

from .helpers import assert_numbered, chunks_of, gz, gzip_of_zeros, ndjson, parse, run, texts

NDJSON = "application/x-ndjson"
BODY = ndjson(*({"id": i, "text": f"record {i}"} for i in range(1000)))


@pytest.mark.parametrize("size", [None, 1, 100, 64 << 10])
def test_a_gzipped_body_whatever_the_chunking(size: int | None) -> None:
    data = gz(BODY)
    chunks = None if size is None else chunks_of(data, size)
    records = parse(NDJSON, data, chunks=chunks, content_encoding="gzip")
    assert_numbered(records)
    assert texts(records) == [f"record {i}" for i in range(1000)]


def test_output_bigger_than_one_step_is_all_read() -> None:
    text = "x" * (1 << 20)
    records = parse(NDJSON, gz(ndjson({"text": text}) * 3), content_encoding="x-gzip")
    assert texts(records) == [text] * 3


def test_several_gzip_members_are_one_stream() -> None:
    data = gz(BODY[:5000]) + gz(BODY[5000:])
    for chunks in ([data], chunks_of(data, 333)):
        records = parse(NDJSON, data, chunks=chunks, content_encoding="gzip")
        assert len(records) == 1000
        assert all(r.error is None for r in records)


def test_an_empty_body_has_no_records() -> None:
    assert parse(NDJSON, b"", content_encoding="gzip") == []
    assert parse("application/json", gz(b""), content_encoding="gzip") == []


def test_corrupt_gzip_is_an_upload_error() -> None:
    with pytest.raises(UploadError, match="invalid gzip data"):
        parse(NDJSON, BODY, content_encoding="gzip")
    data = bytearray(gz(BODY))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(UploadError, match="invalid gzip data"):
        parse(NDJSON, bytes(data), content_encoding="gzip")


def test_truncated_gzip_is_an_upload_error_at_the_end() -> None:
    data = gz(BODY)
    parser = parser_for(NDJSON, content_encoding="gzip")
    assert len(parser.feed(data[: len(data) // 2])) > 0
    with pytest.raises(UploadError, match="gzip data is truncated"):
        parser.close()


def test_a_gzip_bomb_stops_at_the_limit_in_bounded_memory() -> None:
    bomb = gzip_of_zeros(200)  # 200 MiB of zeros in about 200 KiB
    assert len(bomb) < 1 << 20
    options = ParseOptions(max_record_bytes=1 << 20, max_decompressed_bytes=10 << 20)
    parser = parser_for(NDJSON, options, content_encoding="gzip")
    tracemalloc.start()
    try:
        with pytest.raises(UploadError, match="over the limit of 10485760 bytes"):
            run(parser, chunks_of(bomb, 64 << 10))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_an_unknown_content_encoding_is_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType, match="Content-Encoding 'br'"):
        parser_for(NDJSON, content_encoding="br")
    assert parse(NDJSON, BODY, content_encoding="identity")[0].text == "record 0"
