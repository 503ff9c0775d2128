"""Framed, then parsed frame by frame, an upload gives exactly the sequential parser's records."""

import random
import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serve_app.core.records import ParseOptions, Record, UploadError, framer_for
from serve_app.core.records.framing import Frame
from serve_app.core.uploads import number_lines, read_frame
from tests.core.records.helpers import cut, cut_points, gz, multipart, parse

NDJSON, JSON, CSV = "application/x-ndjson", "application/json", "text/csv"
FORM = "multipart/form-data; boundary=b0uNd4ry"


def frames_of(
    content_type: str,
    chunks: list[bytes],
    options: ParseOptions,
    *,
    piece: int,
    content_encoding: str | None = None,
    flush: bool = False,
) -> list[Frame]:
    """flush: after every chunk, as when the upload stalls after each."""
    framer = framer_for(content_type, options, content_encoding=content_encoding, piece_bytes=piece)
    frames: list[Frame] = []
    for chunk in chunks:
        frames += [frame for step in framer.steps(chunk) for frame in step]
        if flush:
            frames += framer.flush()
    return frames + framer.close()


def read_all(frames: list[Frame], options: ParseOptions) -> list[Record]:
    out: list[Record] = []
    failed: set[int] = set()
    for frame in frames:
        if frame.doc in failed:
            continue
        records, ends = read_frame(frame, options)
        out += records
        if ends:
            failed.add(frame.doc)
    return out


def shape(records: list[Record]) -> list[tuple[object, ...]]:
    return [(r.source, r.id, r.text, r.error) for r in records]


def same_records(
    content_type: str,
    body: bytes,
    chunks: list[bytes],
    *,
    piece: int = 64,
    options: ParseOptions = ParseOptions(),
    content_encoding: str | None = None,
    flush: bool = False,
) -> None:
    try:
        expected = shape(parse(content_type, body, chunks=chunks, options=options,
                               content_encoding=content_encoding))  # fmt: skip
    except UploadError as exc:
        with pytest.raises(UploadError, match=re.escape(str(exc)[:40])):
            frames = frames_of(
                content_type,
                chunks,
                options,
                piece=piece,
                content_encoding=content_encoding,
                flush=flush,
            )
            read_all(frames, options)
        return
    frames = frames_of(
        content_type, chunks, options, piece=piece, content_encoding=content_encoding, flush=flush
    )
    assert shape(read_all(frames, options)) == expected


def ndjson_body(rng: random.Random, n: int) -> bytes:
    lines = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.1:
            lines.append(b"")
        elif roll < 0.15:
            lines.append(b"  \r")
        elif roll < 0.2:
            lines.append(b'{"text": broken')
        elif roll < 0.25:
            lines.append(b'{"id": 1}')
        elif roll < 0.28:
            lines.append(b'{"text": "' + b"x" * rng.randint(50, 200) + b'"}')  # over a limit
        else:
            lines.append(orjson.dumps({"id": i, "text": "word " * rng.randint(0, 6)}))
    return b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")


def json_body(rng: random.Random, n: int) -> bytes:
    values = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.1:
            values.append(b"7")
        elif roll < 0.15:
            values.append(b' "a, [string]" ')
        elif roll < 0.2:
            values.append(b'{"text": "nested", "x": [[{"a": "}"}]], "id": 3}')
        elif roll < 0.23:
            values.append(b'{"text": "' + b"y" * rng.randint(50, 200) + b'"}')
        else:
            values.append(orjson.dumps({"id": i, "text": "w, [x] {y} " * rng.randint(0, 3)}))
    return b"[" + b",\n ".join(values) + b"]"


def csv_body(rng: random.Random, n: int) -> bytes:
    rows = [b"id,text"]
    for i in range(n):
        roll = rng.random()
        if roll < 0.1:
            rows.append(b"")
        elif roll < 0.2:
            rows.append(b'%d,"quoted, with\nnewline ""q"""' % i)
        elif roll < 0.25:
            rows.append(b"%d,too,many" % i)
        elif roll < 0.28:
            rows.append(b'%d,"' % i + b"z" * rng.randint(50, 200) + b'"')
        else:
            rows.append(b"%d,plain text %d" % (i, i))
    return b"\n".join(rows) + b"\n"


SMALL = ParseOptions(max_record_bytes=100)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=cut_points, piece=st.integers(1, 300), flush=st.booleans())
def test_ndjson(seed: int, cuts: list[int] | str, piece: int, flush: bool) -> None:
    body = ndjson_body(random.Random(seed), 40)
    same_records(NDJSON, body, cut(body, cuts), piece=piece, options=SMALL, flush=flush)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=cut_points, piece=st.integers(1, 300), flush=st.booleans())
def test_json_array(seed: int, cuts: list[int] | str, piece: int, flush: bool) -> None:
    body = json_body(random.Random(seed), 30)
    same_records(JSON, body, cut(body, cuts), piece=piece, options=SMALL, flush=flush)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=cut_points, piece=st.integers(1, 300), flush=st.booleans())
def test_csv(seed: int, cuts: list[int] | str, piece: int, flush: bool) -> None:
    body = csv_body(random.Random(seed), 30)
    same_records(CSV, body, cut(body, cuts), piece=piece, options=SMALL, flush=flush)


BAD_JSON = [
    b"",
    b"   ",
    b'\xef\xbb\xbf [{"text": "bom"}]',
    b'{"text": "one object"}',
    b'{"text": "object"} trailing',
    b'[{"text": "a"}] ]',
    b'[{"text": "a"}, {"text": "b" "c"}, {"text": "d"}]',
    b'[{"text": "a"},, {"text": "d"}]',
    b'[{"text": "a"}, ]',
    b'[{"text": "a"} {"text": "b"}]',
    b'[{"text": "a"}, }',
    b'[{"text": "a"}, {"text": "b"}',
    b'[{"text": "a"}, {"text": "b"},',
    b'[{"text": "a"}, {"text": "unterminated',
    b'[{"text": "a"}, ' + b"[" * 40 + b"]" * 40 + b"]",
    b'[{"text": "a"}, ' + b"[{" * 40 + b"]" * 80 + b"]",
    b'[{"text": "a"}, {"a": ]}',
    b'"a scalar document"',
    b"42",
    b'[{"text": "\\ud800"}, {"text": "ok"}]',
    b'[{"text": "caf\xc3"}, {"text": "ok"}]',
    b'[{"text": "' + b"x" * 300 + b'"}, {"text": "after a long one"}]',
    b"[" + b" " * 300 + b'{"text": "after many blanks"}]',
]


@pytest.mark.parametrize("body", BAD_JSON)
@pytest.mark.parametrize("piece", [1, 7, 1000])
def test_json_edge_cases(body: bytes, piece: int) -> None:
    for size in (1, 3, len(body) or 1):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        same_records(JSON, body, chunks, piece=piece, options=SMALL, flush=size == 3)


def test_csv_edge_cases() -> None:
    for body in [
        b"",
        b"\n\r\n\ntext\nafter blank lines\n",
        b"a,b\n1,2\n",
        b"text\n",
        b"text",
        b'text\n"unterminated\nquote\n',
        b"text\nno newline at the end",
        b"\xef\xbb\xbftext,id\nbom,1\n",
        b'\r\n\r\n"te\nxt",id\n"a ""quoted"" one",1\n',
        b'\r\n\r\n"text",id\n"a ""quoted""\none",1\n"' + b"x" * 150 + b'",2\nlast,3\n',
    ]:
        for piece in (1, 5, 100):
            for size in (1, 2, len(body) or 1):
                chunks = [body[i : i + size] for i in range(0, len(body), size)]
                same_records(CSV, body, chunks, piece=piece, options=SMALL)


def test_multipart_and_gzip() -> None:
    rng = random.Random(5)
    body = multipart(
        [
            ("files", "a.jsonl", ndjson_body(rng, 20)),
            ("files", "b.json", json_body(rng, 20)),
            ("files", "c.csv", csv_body(rng, 20)),
            ("files", "d.jsonl.gz", gz(ndjson_body(rng, 20))),
            ("files", "e.json.gz", b"not gzip"),
            ("files", "f.txt", b"what"),
            ("files", "g.json", b'[{"text": "a"}, {"text": "b" "c"}, {"text": "d"}]'),
            ("files", "h.csv", b"a,b\n1,2\n"),
            ("files", "i.json", b"42"),
            ("other", None, b"field"),
        ]
    )
    for size in (7, 100, len(body)):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        for piece in (1, 50, 10_000):
            same_records(FORM, body, chunks, piece=piece, options=SMALL, flush=piece == 50)


def test_a_gzip_encoded_body() -> None:
    body = gz(ndjson_body(random.Random(1), 50))
    same_records(NDJSON, body, [body[:10], body[10:]], piece=20, content_encoding="gzip")


def test_number_lines_gives_indices_in_order() -> None:
    lines = b'{"index":0,"a":1}\n{"index":0,"b":"{\\"index\\":0,"}\n'
    numbered, end = number_lines(lines, 41)
    assert numbered == b'{"index":41,"a":1}\n{"index":42,"b":"{\\"index\\":0,"}\n'
    assert end == 43
    assert number_lines(b"", 7) == (b"", 7)


# Lines as replicas write them: JSON without a raw newline, index 0 first; short (reviews) or
# long (a whole file's word counts), either side of where number_lines changes its method.
_LINE = st.builds(
    lambda text, width: b'{"index":0,"text":' + orjson.dumps(text * width) + b"}",
    st.text(),
    st.sampled_from([1, 40, 400]),
)


@settings(max_examples=200)
@given(st.lists(_LINE, min_size=1, max_size=30), st.integers(0, 10**9))
def test_number_lines_numbers_every_line_as_a_plain_loop_does(
    lines: list[bytes], first: int
) -> None:
    body = b"".join(line + b"\n" for line in lines)
    expected = b"".join(
        b'{"index":%d,' % (first + i) + line.removeprefix(b'{"index":0,') + b"\n"
        for i, line in enumerate(lines)
    )
    assert number_lines(body, first) == (expected, first + len(lines))


# Any bytes after a first head, from pieces that make near-misses: a newline inside a line or at
# the end, a head cut short, a head without its newline, lines either side of _SHORT_LINE.
_PIECE = st.sampled_from(
    [b"\n", b'{"index":0,', b'\n{"index":0', b'\n{"index":1,', b'{"', b",", b"x", b"y" * 3000]
)


@settings(max_examples=300)
@given(st.lists(_PIECE, max_size=40), st.integers(0, 10**9))
def test_number_lines_cuts_where_a_newline_and_a_head_are(pieces: list[bytes], first: int) -> None:
    # number_lines looks for newlines and checks the head after each: it must cut exactly where
    # the whole "\n" + head is, as a search for both together (bytes.split) does.
    body = b'{"index":0,' + b"".join(pieces)
    tails = body.removeprefix(b'{"index":0,').split(b'\n{"index":0,')
    expected = b"\n".join(b'{"index":%d,' % (first + i) + tail for i, tail in enumerate(tails))
    assert number_lines(body, first) == (expected, first + len(tails))
