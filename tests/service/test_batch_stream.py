import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
import pytest

from serve_app.core import packed_summary, summary_parts
from serve_app.core.counting import CountOptions
from serve_app.core.pipeline import BulkOptions
from serve_app.core.records import ParseOptions, UploadError, framer_for
from serve_app.core.records.framing import Frame
from serve_app.core.summary import Summary
from serve_app.core.summary_parts import Leaf, Split
from serve_app.core.uploads import ChunkAnswer, analyze_chunk
from serve_app.service.batch_stream import BatchLimits, UploadTooLarge, stream_batch
from tests.core.records.helpers import multipart

WHITESPACE = BulkOptions(count=CountOptions(tokenizer="whitespace", lowercase=False))
NDJSON = "application/x-ndjson"
FORM = "multipart/form-data; boundary=b0uNd4ry"


class ReplicaDied(Exception):
    pass


async def body(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        await asyncio.sleep(0)
        yield piece


def analyze(frames: list[Frame], options: BulkOptions = WHITESPACE) -> ChunkAnswer:
    return analyze_chunk(frames, ParseOptions(), options)


class InFlight:
    """Calls at the replicas at once (`with in_flight:` around a call's work), and the most."""

    def __init__(self) -> None:
        self.now = self.peak = 0

    def __enter__(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        self.now -= 1


def ndjson(records: list[object]) -> bytes:
    return b"".join((orjson.dumps(r) if not isinstance(r, bytes) else r) + b"\n" for r in records)


def collect(
    data: bytes,
    *,
    piece: int = 7,
    limits: BatchLimits = BatchLimits(chunk_bytes=40, max_in_flight=2),
    submit=None,  # type: ignore[no-untyped-def]
    options: BulkOptions = WHITESPACE,
    content_type: str = NDJSON,
    on_retry=None,  # type: ignore[no-untyped-def]
    merge=None,  # type: ignore[no-untyped-def]
    head=None,  # type: ignore[no-untyped-def]
) -> list[dict[str, object]]:
    async def default_submit(frames: list[Frame]) -> ChunkAnswer:
        await asyncio.sleep(0.001 * (len(frames) % 3))  # finish out of order
        return analyze(frames, options)

    async def run() -> list[dict[str, object]]:
        lines = stream_batch(
            body(data[i : i + piece] for i in range(0, len(data), piece)),
            framer_for(content_type, ParseOptions(), piece_bytes=limits.chunk_bytes),
            submit=submit or default_submit,
            is_retryable=lambda exc: isinstance(exc, ReplicaDied),
            limits=limits,
            on_retry=on_retry,
            merge=merge,
            head=head,
        )
        out = b"".join([line async for line in lines])
        return [orjson.loads(line) for line in out.splitlines()]

    return asyncio.run(run())


def test_every_record_yields_one_line_in_input_order_then_the_summary() -> None:
    records: list[object] = [{"id": i, "text": f"word{i % 5} common"} for i in range(50)]
    records[7] = b"{not json"
    records[20] = {"id": 20}
    records[33] = {"id": 33, "text": 42}
    lines = collect(ndjson(records))
    assert [line["index"] for line in lines[:-1]] == list(range(50))
    assert {i for i, line in enumerate(lines[:-1]) if "error" in line} == {7, 20, 33}
    assert lines[5]["id"] == 5 and lines[5]["text"] == "word0 common"
    summary = lines[-1]["summary"]
    assert summary["records"] == 50 and summary["ok"] == 47 and summary["failed"] == 3
    assert summary["top_words"][0] == ["common", 47]
    assert summary["total_words"] == 94


def test_the_summary_equals_one_pass_over_the_good_records() -> None:
    texts = [f"a b {'c ' * (i % 4)}é 物流" for i in range(200)]
    lines = collect(ndjson([{"text": t} for t in texts]), piece=13)
    expected = Counter(w for t in texts for w in t.split())
    summary = lines[-1]["summary"]
    assert summary["unique_words"] == len(expected)
    assert summary["total_chars"] == sum(len(t.strip()) for t in texts)
    assert [tuple(p) for p in summary["top_words"]] == expected.most_common(10)


def test_include_none_returns_only_the_summary() -> None:
    data = ndjson([{"text": "x y"}, b"broken", {"text": "z"}])
    lines = collect(data, options=BulkOptions(include=frozenset()))
    assert len(lines) == 1 and lines[0]["summary"]["failed"] == 1


def test_a_chunk_whose_replica_died_is_sent_again_and_nothing_is_lost() -> None:
    attempts: Counter[int] = Counter()

    async def flaky(frames: list[Frame]) -> ChunkAnswer:
        key = frames[0].start
        attempts[key] += 1
        if attempts[key] == 1 and key % 3 == 0:
            raise ReplicaDied()
        return analyze(frames)

    data = ndjson([{"text": f"t{i}"} for i in range(40)])
    lines = collect(data, submit=flaky, limits=BatchLimits(chunk_bytes=16, max_in_flight=3))
    assert [line["text"] for line in lines[:-1]] == [f"t{i}" for i in range(40)]
    assert max(attempts.values()) == 2


def test_the_summaries_are_merged_by_merge_and_head_calls_retried_like_chunks() -> None:
    """The chunks' packed summaries go to `merge` (the replicas, in the service), what is left
    at the end to `head`, one call per part; a call whose replica died is sent again, and the
    summary is still one pass over the records."""
    calls: list[int] = []
    heads: list[tuple[int, int, int]] = []

    async def flaky_merge(items: list[Leaf | Split], parts: int) -> Split:
        calls.append(len(items))
        assert parts == 3
        if len(calls) == 1:
            raise ReplicaDied()
        await asyncio.sleep(0.001 * (len(calls) % 3))
        return summary_parts.merge_ranges(items, parts)

    async def flaky_head(
        items: list[Leaf | bytes], part: int, parts: int, top_n: int
    ) -> dict[str, Any]:
        heads.append((len(items), part, parts))
        # a range sends its pack of this part alone; the chunks after it come whole
        assert isinstance(items[0], bytes)
        assert all(isinstance(item, Leaf) for item in items[1:])
        if len(heads) == 1:
            raise ReplicaDied()
        return summary_parts.reduce(items, top_n, part=part, parts=parts)

    texts = [f"w{i % 7} common w{i % 3}" for i in range(200)]
    retries: list[int] = []
    lines = collect(
        ndjson([{"text": t} for t in texts]),
        merge=flaky_merge,
        head=flaky_head,
        limits=BatchLimits(chunk_bytes=64, max_in_flight=3, final_parts=3),
        on_retry=lambda: retries.append(1),
    )
    expected = Summary()
    for text in texts:
        expected.add_words(char_count=len(text), words=text.split())
    assert lines[-1]["summary"] == expected.to_dict()
    assert calls == [64, 64]  # one level of 64 chunks' packs, sent twice
    left = heads[0][0]  # that merge and the chunks after it
    assert sorted(heads) == sorted([(left, 0, 3), (left, 0, 3), (left, 1, 3), (left, 2, 3)])
    assert len(retries) == 2


def test_a_chunk_that_keeps_failing_ends_the_stream_with_the_error() -> None:
    async def dead(frames: list[Frame]) -> ChunkAnswer:
        raise ReplicaDied()

    with pytest.raises(ReplicaDied):
        collect(ndjson([{"text": "a"}]), submit=dead)


def test_an_error_that_is_not_retryable_is_not_retried() -> None:
    calls = 0

    async def wrong(frames: list[Frame]) -> ChunkAnswer:
        nonlocal calls
        calls += 1
        raise TypeError("bug")

    with pytest.raises(TypeError):
        collect(ndjson([{"text": "a"}]), submit=wrong)
    assert calls == 1


def test_in_flight_chunks_are_bounded() -> None:
    in_flight = InFlight()

    async def slow(frames: list[Frame]) -> ChunkAnswer:
        with in_flight:
            await asyncio.sleep(0.002)
        return analyze(frames)

    data = ndjson([{"text": "x" * 30} for _ in range(100)])
    lines = collect(
        data, piece=4096, submit=slow, limits=BatchLimits(chunk_bytes=64, max_in_flight=3)
    )
    assert len(lines) == 101
    assert in_flight.peak <= 3


def slow_first_chunk(limits: BatchLimits, chunks: int) -> tuple[int, list[dict[str, object]]]:
    """An upload whose first chunk is answered last: how many chunks were sent to replicas
    while it was still working, and the lines."""
    submitted = 0
    seen_while_first_works = 0

    async def submit(frames: list[Frame]) -> ChunkAnswer:
        nonlocal submitted, seen_while_first_works
        submitted += 1
        if submitted == 1:
            # Let the others be submitted (or not), then finish.
            for _ in range(200):
                await asyncio.sleep(0.001)
            seen_while_first_works = submitted
        return analyze(frames)

    data = ndjson([{"text": f"r{i} " + "x" * 30} for i in range(chunks)])
    lines = collect(data, piece=4096, submit=submit, limits=limits)
    return seen_while_first_works, lines


def test_a_slow_chunk_leaves_the_replicas_free_for_the_next_ones() -> None:
    # One record per chunk. The first chunk holds one of 2 places at the replicas; the later
    # chunks take the other in turn and wait, answered, to be written after it.
    limits = BatchLimits(chunk_bytes=32, max_in_flight=2, max_buffered=6)
    seen, lines = slow_first_chunk(limits, 20)
    assert seen == 6  # the first and 5 more: max_buffered, not max_in_flight, bounds them
    assert [line["index"] for line in lines[:-1]] == list(range(20))
    assert lines[-1]["summary"]["records"] == 20  # type: ignore[index]


def test_chunks_waiting_to_be_written_are_bounded() -> None:
    seen, _ = slow_first_chunk(BatchLimits(chunk_bytes=32, max_in_flight=3, max_buffered=2), 20)
    assert seen == 3  # max_buffered below max_in_flight is raised to it, never past it


def test_results_flow_before_the_upload_ends() -> None:
    async def run() -> bool:
        first_line_seen = asyncio.Event()
        served_early = False

        async def upload() -> AsyncIterator[bytes]:
            nonlocal served_early
            yield ndjson([{"text": f"r{i}"} for i in range(10)])
            for _ in range(200):  # the rest of the upload waits for a first result
                if first_line_seen.is_set():
                    served_early = True
                    break
                await asyncio.sleep(0.005)
            yield ndjson([{"text": "last"}])

        async def submit(frames: list[Frame]) -> ChunkAnswer:
            return analyze(frames)

        lines = stream_batch(
            upload(),
            framer_for(NDJSON, ParseOptions(), piece_bytes=1 << 20),
            submit=submit,
            is_retryable=lambda exc: False,
            limits=BatchLimits(chunk_bytes=1 << 20, linger_s=0),
        )
        async for _ in lines:
            first_line_seen.set()
        return served_early

    assert asyncio.run(run())


def test_an_upload_past_the_limit_stops_with_a_clear_error() -> None:
    with pytest.raises(UploadTooLarge, match="limit of 100 bytes"):
        collect(
            ndjson([{"text": "x" * 50} for _ in range(10)]),
            limits=BatchLimits(chunk_bytes=40, max_upload_bytes=100),
        )


def test_a_chunk_call_that_never_answers_is_sent_again() -> None:
    calls = 0

    async def hangs_once(frames: list[Frame]) -> ChunkAnswer:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.Event().wait()  # a replica that died with its node
        return analyze(frames)

    lines = collect(
        ndjson([{"text": "a b"}]),
        submit=hangs_once,
        limits=BatchLimits(attempt_timeout_s=0.05),
    )
    assert lines[0]["text"] == "a b" and calls == 2


def test_every_chunk_sent_again_is_counted_once() -> None:
    calls = retries = 0

    async def dies_three_times(frames: list[Frame]) -> ChunkAnswer:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise ReplicaDied("replica gone")
        return analyze(frames)

    def count_retry() -> None:
        nonlocal retries
        retries += 1

    lines = collect(
        ndjson([{"text": "a b"}, {"text": "c d"}]),
        submit=dies_three_times,
        limits=BatchLimits(chunk_bytes=40, max_attempts=5),
        on_retry=count_retry,
    )
    assert [line.get("text") for line in lines[:2]] == ["a b", "c d"]
    assert retries == 3


def test_after_a_syntax_error_later_chunks_of_that_document_count_for_nothing() -> None:
    values = [b'{"text": "v%d"}' % i for i in range(30)]
    values[4] = b'{"text": "bad" "x"}'
    data = b"[" + b",".join(values) + b"]"
    lines = collect(
        data,
        content_type="application/json",
        limits=BatchLimits(chunk_bytes=20, max_in_flight=4),
    )
    assert [line.get("text") for line in lines[:-1]] == ["v0", "v1", "v2", "v3", None]
    assert "the rest of the JSON was not parsed" in str(lines[4]["error"])
    assert lines[-1]["summary"]["records"] == 5


def test_a_chunk_sent_again_without_a_failed_document_waits_for_a_place_at_the_replicas() -> None:
    # Two files: the first has a syntax error in its first chunk, which is answered last; a
    # later chunk holds the first file's end and the second file's start, so it is sent again
    # without the first file while the reader keeps both places at the replicas busy.
    values = [b'{"text": "v%d"}' % i for i in range(12)]
    values[1] = b'{"text": "bad" "x"}'
    first = b"[" + b",".join(values) + b"]"
    second = ndjson([{"text": f"w{i}"} for i in range(40)])
    data = multipart([("files", "a.json", first), ("files", "b.jsonl", second)])
    sent: list[list[Frame]] = []  # the frames of each call, kept alive: their ids stay unique
    in_flight = InFlight()

    async def submit(frames: list[Frame]) -> ChunkAnswer:
        sent.append(frames)
        with in_flight:
            await asyncio.sleep(0.05 if len(sent) == 1 else 0.005)
        return analyze(frames)

    lines = collect(
        data,
        piece=4096,
        submit=submit,
        content_type=FORM,
        limits=BatchLimits(chunk_bytes=64, max_in_flight=2, max_buffered=8),
    )
    texts = [line.get("text") for line in lines[:-1]]
    assert texts[:2] == ["v0", None] and texts[2:] == [f"w{i}" for i in range(40)]
    ids = [{id(frame) for frame in frames} for frames in sent]
    assert any(later < earlier for i, earlier in enumerate(ids) for later in ids[i + 1 :])
    assert in_flight.peak == 2


def test_an_upload_error_found_by_a_replica_ends_the_stream_after_the_lines_before_it() -> None:
    async def run() -> list[bytes]:
        lines = stream_batch(
            body([b"a,b\n1,2\n"]),
            framer_for("text/csv", ParseOptions(), piece_bytes=1024),
            submit=lambda frames: asyncio.sleep(0, analyze(frames)),
            is_retryable=lambda exc: False,
        )
        return [line async for line in lines]

    with pytest.raises(UploadError, match='CSV has no "text" column'):
        asyncio.run(run())


def test_when_the_answer_is_closed_the_upload_is_no_longer_read() -> None:
    """A client that goes away closes the answer: the reading of its upload stops too."""
    read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal read
        while True:
            read += 1
            await asyncio.sleep(0)
            yield b'{"text": "more"}\n' * 100

    async def run() -> None:
        lines = stream_batch(
            endless(),
            framer_for(NDJSON, ParseOptions(), piece_bytes=1024),
            submit=lambda frames: asyncio.sleep(0, analyze(frames)),
            is_retryable=lambda exc: False,
            limits=BatchLimits(chunk_bytes=1024),
        )
        await anext(lines)
        await lines.aclose()
        before = read
        await asyncio.sleep(0.05)
        assert read == before

    asyncio.run(run())


@pytest.mark.parametrize(
    ("content_type", "record"),
    [
        (NDJSON, b'{"text": "some words here"}\n'),
        ("text/csv", b'"some, words",here\n'),
    ],
)
def test_the_ingress_holds_a_few_chunks_whatever_the_upload_size(
    content_type: str, record: bytes
) -> None:
    """64 MB through framing and chunking: the peak of what is allocated stays near
    max_in_flight chunks (the replicas' work is faked: it is not the ingress's memory)."""
    import tracemalloc

    piece = record * (65536 // len(record))
    head = b"text,id\n" if content_type == "text/csv" else b""

    async def upload() -> AsyncIterator[bytes]:
        yield head
        for _ in range(64 * 16):
            await asyncio.sleep(0)
            yield piece

    async def submit(frames: list[Frame]) -> ChunkAnswer:
        await asyncio.sleep(0.001)
        return ChunkAnswer(b"", packed_summary.pack(Summary()))

    async def run() -> None:
        lines = stream_batch(
            upload(),
            framer_for(content_type, ParseOptions(), piece_bytes=1 << 20),
            submit=submit,
            is_retryable=lambda exc: False,
            limits=BatchLimits(chunk_bytes=1 << 20, max_in_flight=4),
        )
        async for _ in lines:
            pass

    tracemalloc.start()
    try:
        asyncio.run(run())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB for a 64 MiB upload"
