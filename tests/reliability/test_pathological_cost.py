"""Pathological uploads cost CPU time in proportion to their bytes, bounded per byte.

Measured as process CPU time (not wall clock: the machine is shared) of framing in this
process, as the ingress frames, plus parsing, cleaning and counting the frames, as the replicas
do. The bounds are loose (several times what a 2-CPU CI machine takes) and per megabyte; what
they catch is a return of per-blank-line or per-bracket Python work, which costs 10-100x more:
a 500 KB gzip of blank lines once kept a core busy for 80 s.
"""

from __future__ import annotations

import gzip
import time
import zlib

import pytest

from serve_app.core import packed_summary
from serve_app.core.cleaning import CleanOptions
from serve_app.core.counting import CountOptions
from serve_app.core.pipeline import BulkOptions
from serve_app.core.records import ParseOptions, UploadError, framer_for
from serve_app.core.records.framing import Frame
from serve_app.core.uploads import analyze_chunk
from tests.reliability.uploads import gzip_bomb

pytestmark = pytest.mark.reliability

MB = 1024 * 1024
SEED = BulkOptions(
    clean=CleanOptions(preset="minimal"),
    count=CountOptions(tokenizer="whitespace", lowercase=False),
    include=frozenset(),
)
NDJSON = "application/x-ndjson"


def gzip_of(piece: bytes, times: int) -> bytes:
    deflate = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = [deflate.compress(piece) for _ in range(times)]
    return b"".join(out) + deflate.flush()


def cpu_seconds_to_answer(
    content_type: str,
    body: bytes,
    *,
    content_encoding: str | None = None,
    options: ParseOptions = ParseOptions(),
    bulk: BulkOptions = BulkOptions(),
) -> tuple[float, int]:
    """CPU seconds to frame the body and analyze every frame, and the records answered."""
    started = time.process_time()
    framer = framer_for(content_type, options, content_encoding=content_encoding)
    frames: list[Frame] = []
    records = 0
    for at in range(0, len(body), 64 * 1024):  # as the request body arrives
        for step in framer.steps(body[at : at + 64 * 1024]):
            frames += step
        while sum(f.nbytes for f in frames) >= MB:
            records += packed_summary.totals(analyze_chunk(frames, options, bulk).summary).records
            frames = []
    frames += framer.close()
    records += packed_summary.totals(analyze_chunk(frames, options, bulk).summary).records
    return time.process_time() - started, records


def test_blank_lines_cost_little_per_byte() -> None:
    size = 128 * MB
    body = gzip_of(b"\n" * MB, size // MB)
    seconds, records = cpu_seconds_to_answer(NDJSON, body, content_encoding="gzip")
    assert records == 0
    assert seconds < 0.02 * size / MB, f"{seconds:.2f} CPU-s for {size // MB} MB of blank lines"


@pytest.mark.parametrize("blank", [b"\n", b" \n", b"\r\n"])
def test_blank_lines_between_records_cost_little_per_byte(blank: bytes) -> None:
    size = 32 * MB
    piece = b'{"text": "x"}\n' + blank * ((MB - 14) // len(blank))
    body = gzip_of(piece, size // MB)
    seconds, records = cpu_seconds_to_answer(NDJSON, body, content_encoding="gzip")
    assert records == size // MB
    assert seconds < 0.02 * size / MB, f"{seconds:.2f} CPU-s for {size // MB} MB"


def test_deep_nesting_costs_little_per_byte() -> None:
    size = 16 * MB
    deep = b"[" * (size // 2) + b"]" * (size // 2)
    for body in (deep, b'[{"text": "ok"}, ' + deep + b"]"):
        seconds, records = cpu_seconds_to_answer("application/json", body)
        assert records >= 1
        assert seconds < 0.1 * size / MB, f"{seconds:.2f} CPU-s for {size // MB} MB of brackets"


@pytest.mark.parametrize("record", [b'{"text":"a"}\n', b"{}\n", b"1\n"])
def test_tiny_records_cost_per_record_not_more(record: bytes) -> None:
    count = 100_000
    seconds, records = cpu_seconds_to_answer(NDJSON, record * count, bulk=SEED)
    assert records == count
    assert seconds < 50e-6 * count, f"{seconds:.2f} CPU-s for {count} records"


def test_a_gzip_bomb_stops_at_the_limit() -> None:
    limit = 64 * MB
    options = ParseOptions(max_decompressed_bytes=limit)
    started = time.process_time()
    with pytest.raises(UploadError, match="over the limit"):
        cpu_seconds_to_answer(NDJSON, gzip_bomb(1024**3), content_encoding="gzip", options=options)
    seconds = time.process_time() - started - _bomb_cost()
    assert seconds < 0.05 * limit / MB, f"{seconds:.2f} CPU-s to stop at {limit // MB} MB"


def _bomb_cost() -> float:
    """CPU time of making the bomb itself (the test's, not the service's)."""
    started = time.process_time()
    gzip_bomb(1024**3)
    return time.process_time() - started


def test_gzip_helper_round_trips() -> None:
    assert gzip.decompress(gzip_of(b"ab", 3)) == b"ababab"
