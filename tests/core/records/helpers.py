import gzip
import zlib
from collections.abc import Iterable, Iterator

import orjson
from hypothesis import strategies as st

from serve_app.core.records import ParseOptions, Record, RecordParser, parser_for


def chunks_at(body: bytes, cuts: Iterable[int]) -> list[bytes]:
    edges = [0, *sorted(c for c in cuts if 0 < c < len(body)), len(body)]
    return [body[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def chunks_of(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def run(parser: RecordParser, chunks: Iterable[bytes]) -> list[Record]:
    out: list[Record] = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out + parser.close()


def parse(
    content_type: str,
    body: bytes,
    *,
    chunks: Iterable[bytes] | None = None,
    options: ParseOptions = ParseOptions(),
    content_encoding: str | None = None,
) -> list[Record]:
    parser = parser_for(content_type, options, content_encoding=content_encoding)
    return run(parser, [body] if chunks is None else chunks)


def ndjson(*objects: object) -> bytes:
    return b"".join(orjson.dumps(o) + b"\n" for o in objects)


def texts(records: list[Record]) -> list[str | None]:
    return [r.text for r in records]


def errors(records: list[Record]) -> list[str | None]:
    return [r.error for r in records]


def assert_numbered(records: list[Record]) -> None:
    assert [r.index for r in records] == list(range(len(records)))
    for r in records:
        assert (r.text is None) != (r.error is None)


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0uNd4ry") -> bytes:
    """A multipart/form-data body: (field name, file name or None, content) per part."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        head += "Content-Type: application/octet-stream\r\n\r\n"
        body += head.encode() + content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def gzip_of_zeros(megabytes: int) -> bytes:
    """Compressed without holding the uncompressed data: the zeros of a gzip bomb."""
    compressor = zlib.compressobj(9, wbits=31)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(megabytes)]
    return b"".join(parts) + compressor.flush()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def repeat(piece: bytes, times: int) -> Iterator[bytes]:
    for _ in range(times):
        yield piece


EACH_BYTE = "each byte"

# How Hypothesis cuts a body into chunks: at random points, or into 1-byte chunks.
cut_points = st.one_of(
    st.lists(st.integers(min_value=0, max_value=4000), max_size=30),
    st.just(EACH_BYTE),
)


def cut(body: bytes, cuts: list[int] | str) -> list[bytes]:
    return chunks_of(body, 1) if isinstance(cuts, str) else chunks_at(body, cuts)
