"""Duplicates across the chunks of one upload: signatures from the replicas' work
(`core.uploads`), one index in the writer. Chunks are tiny and finish out of order, so the
copies land in other chunks than their originals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from serve_app.core.analysis.dedup import DedupOptions, DuplicateIndex
from serve_app.core.pipeline import BulkOptions, analyze_records
from serve_app.core.records import ParseOptions, framer_for, parser_for
from serve_app.core.records.framing import Frame
from serve_app.core.uploads import ChunkAnswer, analyze_chunk
from serve_app.service.batch_stream import BatchLimits, stream_batch

TEXTS = [
    "质量很好，物流很快，包装也不错，下次还会再来买的",
    "此用户未填写评价内容",
    "Great value, would buy again for sure",
    "完全不同的一条评论内容，说的是别的事情",
    "质量很好物流很快，包装也不错，下次还会再来买的！！",
    "great value, would buy again for sure!!!",
    "此用户未填写评价内容",
    "质量一般",
]
BODY = b"".join(orjson.dumps({"text": t}) + b"\n" for t in TEXTS)


def run(flags: DedupOptions, include: frozenset[str] | None = None) -> list[dict[str, Any]]:
    options = BulkOptions(include=include, dedup=flags, defer_duplicates=True)

    async def submit(frames: list[Frame]) -> ChunkAnswer:
        await asyncio.sleep(0.002 * (len(frames) % 2))  # finish out of order
        return analyze_chunk(frames, ParseOptions(), options)

    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(BODY), 40):
            await asyncio.sleep(0)
            yield BODY[i : i + 40]

    async def collect() -> list[dict[str, Any]]:
        limits = BatchLimits(chunk_bytes=80, max_in_flight=3)
        lines = stream_batch(
            body(),
            framer_for("application/x-ndjson", ParseOptions(), piece_bytes=limits.chunk_bytes),
            submit=submit,
            is_retryable=lambda exc: False,
            limits=limits,
            duplicates=DuplicateIndex(threshold=flags.threshold) if flags.duplicates else None,
        )
        out = b"".join([line async for line in lines])
        return [orjson.loads(line) for line in out.splitlines()]

    return asyncio.run(collect())


def test_copies_in_later_chunks_point_at_the_first_record() -> None:
    lines = run(DedupOptions(duplicates=True, boilerplate=True))
    rows, summary = lines[:-1], lines[-1]["summary"]
    assert [row["index"] for row in rows] == list(range(len(TEXTS)))
    assert [row.get("duplicate_of") for row in rows] == [None, None, None, None, 0, 2, 1, None]
    assert [row.get("boilerplate", False) for row in rows] == [
        False, True, False, False, False, False, True, False
    ]  # fmt: skip
    assert summary["duplicates"] == 3 and summary["boilerplate"] == 2
    assert sum(lines[-1]["nodes"].values()) > 2  # many chunks


def test_leaving_them_out_counts_what_the_pipeline_counts_in_one_pass() -> None:
    flags = DedupOptions(duplicates=True, boilerplate=True, exclude_from_counts=True)
    summary = run(flags, include=frozenset())[-1]["summary"]
    parser = parser_for("application/x-ndjson", ParseOptions())
    records = [*parser.feed(BODY), *parser.close()]
    expected = analyze_records(records, BulkOptions(dedup=flags)).summary.to_dict()
    assert summary == expected
    assert summary["total_words"] < analyze_records(records, BulkOptions()).summary.total_words
