"""Duplicates across the chunks of one upload: WordCounter's signatures, the writer's index.

The real deployment class (without Ray) answers every chunk, out of order; chunks are tiny so
the copies land in other chunks than their originals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from serve_app.core import cleaning, counting
from serve_app.core.analysis.dedup import DedupOptions, DuplicateIndex, Signature
from serve_app.core.pipeline import BulkOptions, analyze_records
from serve_app.core.records import ParseOptions, parser_for
from serve_app.core.summary import Summary
from serve_app.service.batch_stream import BatchLimits, ChunkResult, stream_batch
from serve_app.service.deployments import WordCounter

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


def run(flags: DedupOptions, include: frozenset[str] | None = None) -> list[dict[str, Any]]:
    counter = WordCounter.func_or_class()  # type: ignore[attr-defined]
    options = counting.CountOptions()

    async def submit(texts: list[str]) -> ChunkResult:
        await asyncio.sleep(0.002 * (len(texts) % 2))  # finish out of order
        cleaned = [cleaning.clean(t) for t in texts]
        rows, state, node, *marks = counter.analyze_chunk(
            cleaned, options, include=include, flags=flags
        )
        signatures = [Signature(e, m) for e, m in marks[0]["signatures"]] if marks else None
        return ChunkResult(
            rows=rows,
            summary=Summary.from_state(state),
            node_id=node,
            signatures=signatures,
            words=marks[0]["words"] if marks else None,
        )

    async def body() -> AsyncIterator[bytes]:
        for text in TEXTS:
            await asyncio.sleep(0)
            yield orjson.dumps({"text": text}) + b"\n"

    async def collect() -> list[dict[str, Any]]:
        lines = stream_batch(
            body(),
            parser_for("application/x-ndjson", ParseOptions()),
            submit=submit,
            is_retryable=lambda exc: False,
            limits=BatchLimits(chunk_bytes=60, max_in_flight=3),
            duplicates=DuplicateIndex(threshold=flags.threshold) if flags.duplicates else None,
        )
        return [orjson.loads(line) async for chunk in lines for line in chunk.splitlines()]

    return asyncio.run(collect())


def test_copies_in_later_chunks_point_at_the_first_record() -> None:
    lines = run(DedupOptions(duplicates=True, boilerplate=True))
    rows, summary = lines[:-1], lines[-1]["summary"]
    assert [row.get("duplicate_of") for row in rows] == [None, None, None, None, 0, 2, 1, None]
    assert [row.get("boilerplate", False) for row in rows] == [
        False, True, False, False, False, False, True, False
    ]  # fmt: skip
    assert summary["duplicates"] == 3 and summary["boilerplate"] == 2
    assert len(lines[-1]["nodes"]) == 1 and sum(lines[-1]["nodes"].values()) > 2  # many chunks


def test_leaving_them_out_counts_what_the_pipeline_counts_in_one_pass() -> None:
    flags = DedupOptions(duplicates=True, boilerplate=True, exclude_from_counts=True)
    summary = run(flags, include=frozenset())[-1]["summary"]
    parser = parser_for("application/x-ndjson", ParseOptions())
    records = [*parser.feed(b"".join(orjson.dumps({"text": t}) + b"\n" for t in TEXTS))]
    expected = analyze_records(records, BulkOptions(dedup=flags)).summary.to_dict()
    assert summary == expected
    assert summary["total_words"] < analyze_records(records, BulkOptions()).summary.total_words
