"""Bulk pipeline: body bytes -> records -> byte-sized chunks -> workers -> ordered NDJSON lines.

It knows nothing of Ray or HTTP: the ingress hands it the body stream, a record parser and a
`submit` coroutine that analyzes one chunk of texts. That keeps the ordering, backpressure and
retry logic testable with plain fakes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from serve_app.core.analysis.dedup import DuplicateIndex, Signature, splice_duplicate
from serve_app.core.records import Record, RecordParser
from serve_app.core.summary import Summary


@dataclass(frozen=True, slots=True)
class ChunkResult:
    # One JSON object per text, in order, already serialized: the workers encode in parallel and
    # Ray moves bytes instead of pickling large dicts. None when no field is included.
    rows: list[bytes] | None
    summary: Summary
    node_id: str = ""
    # With duplicate detection: per text, its signature and (to leave duplicates out of the
    # counts) its words; the writer checks them in input order against one index.
    signatures: list[Signature] | None = None
    words: list[tuple[int, dict[str, int]] | None] | None = None


Submit = Callable[[list[str]], Awaitable[ChunkResult]]


@dataclass(frozen=True, slots=True)
class BatchLimits:
    chunk_bytes: int = 1 << 20  # a chunk closes once its texts reach this many bytes
    max_in_flight: int = 4  # chunks submitted and not yet written out
    max_attempts: int = 3  # a chunk whose replica died is sent again (the work is idempotent)
    # A call to a replica that died with its node may never answer: past this, send it again.
    attempt_timeout_s: float | None = 120.0
    max_upload_bytes: int | None = None
    linger_s: float = 0.02  # an idle pipeline sends a partial chunk after this long


class UploadTooLarge(ValueError):
    pass


@dataclass(slots=True)
class _Chunk:
    records: list[Record] = field(default_factory=list)
    nbytes: int = 0
    task: asyncio.Task[ChunkResult] | None = None


async def stream_batch(
    body: AsyncIterator[bytes],
    parser: RecordParser,
    *,
    submit: Submit,
    is_retryable: Callable[[BaseException], bool],
    limits: BatchLimits = BatchLimits(),
    top_words: int = 10,
    summary_only: bool = False,
    on_chunk: Callable[[ChunkResult, int], None] | None = None,
    duplicates: DuplicateIndex | None = None,
) -> AsyncIterator[bytes]:
    """Yield one NDJSON line per input record, in input order, then the summary line.

    A reader task parses the body and submits chunks; this generator writes results out in
    order. At most `max_in_flight` chunks are between the two, which is the backpressure: a
    slow client or slow workers stop the reading of the upload, never grow memory.
    """
    total = Summary()
    nodes: Counter[str] = Counter()
    ready: asyncio.Queue[_Chunk | BaseException | None] = asyncio.Queue()
    slots = asyncio.Semaphore(limits.max_in_flight)
    reader = asyncio.create_task(_read(body, parser, submit, is_retryable, limits, ready, slots))
    try:
        while (chunk := await ready.get()) is not None:
            if isinstance(chunk, BaseException):
                raise chunk
            result = await chunk.task if chunk.task is not None else None
            if result is not None:
                nodes[result.node_id] += 1
                if on_chunk is not None:
                    on_chunk(result, len(chunk.records))
            if result is not None and duplicates is not None:
                result = _mark_duplicates(chunk.records, result, duplicates)
            lines = _render(chunk.records, result, total, summary_only=summary_only)
            slots.release()
            if lines:
                yield lines
    finally:
        reader.cancel()
        while not ready.empty():
            item = ready.get_nowait()
            if isinstance(item, _Chunk) and item.task is not None:
                item.task.cancel()
    yield orjson.dumps({"summary": total.to_dict(top_words), "nodes": dict(nodes)}) + b"\n"


async def _read(
    body: AsyncIterator[bytes],
    parser: RecordParser,
    submit: Submit,
    is_retryable: Callable[[BaseException], bool],
    limits: BatchLimits,
    ready: asyncio.Queue[_Chunk | BaseException | None],
    slots: asyncio.Semaphore,
) -> None:
    async def attempt(texts: list[str]) -> ChunkResult:
        for tries in range(1, limits.max_attempts + 1):
            try:
                return await asyncio.wait_for(submit(texts), limits.attempt_timeout_s)
            except Exception as exc:
                retryable = isinstance(exc, TimeoutError) or is_retryable(exc)
                if tries == limits.max_attempts or not retryable:
                    raise
                await asyncio.sleep(min(0.1 * 2**tries, 2.0))  # let Serve drop a dead replica
        raise AssertionError("unreachable")

    async def launch(chunk: _Chunk) -> None:
        await slots.acquire()  # released once the chunk's lines are written out
        texts = [r.text for r in chunk.records if r.error is None and r.text is not None]
        if texts:
            chunk.task = asyncio.create_task(attempt(texts))
        await ready.put(chunk)

    current = _Chunk()
    received = 0
    chunks = aiter(body)
    next_piece: asyncio.Task[bytes] | None = None
    try:
        while True:
            if next_piece is None:
                next_piece = asyncio.ensure_future(anext(chunks))
            # While the upload stalls, send what has arrived instead of holding it back.
            timeout = limits.linger_s if current.records else None
            done, _ = await asyncio.wait({next_piece}, timeout=timeout)
            if not done:
                await launch(current)
                current = _Chunk()
                continue
            try:
                data = next_piece.result()
            except StopAsyncIteration:
                break
            finally:
                if done:
                    next_piece = None
            received += len(data)
            if limits.max_upload_bytes is not None and received > limits.max_upload_bytes:
                raise UploadTooLarge(
                    f"upload is larger than the limit of {limits.max_upload_bytes} bytes"
                )
            for record in parser.feed(data):
                current.records.append(record)
                current.nbytes += record.size
                if current.nbytes >= limits.chunk_bytes:
                    await launch(current)
                    current = _Chunk()
        current.records.extend(parser.close())
        if current.records:
            await launch(current)
        await ready.put(None)
    except asyncio.CancelledError:
        if next_piece is not None:
            next_piece.cancel()
        raise
    except Exception as exc:
        await ready.put(exc)


def _mark_duplicates(
    records: Iterable[Record], result: ChunkResult, index: DuplicateIndex
) -> ChunkResult:
    if result.signatures is None:
        return result
    good = [r for r in records if r.error is None and r.text is not None]
    rows = list(result.rows) if result.rows is not None else None
    for k, (record, sig) in enumerate(zip(good, result.signatures, strict=True)):
        first = index.check(record.index, sig)
        result.summary.add_flags(duplicate=first is not None)
        if first is None:
            continue
        if rows is not None:
            rows[k] = splice_duplicate(rows[k], first)
        if result.words is not None and (words := result.words[k]) is not None:
            result.summary.remove_words(word_count=words[0], word_counts=words[1])
    return dataclasses.replace(result, rows=rows)


def _render(
    records: Iterable[Record], result: ChunkResult | None, total: Summary, *, summary_only: bool
) -> bytes:
    has_rows = result is not None and result.rows is not None and not summary_only
    rows = iter(result.rows) if has_rows and result is not None and result.rows else None
    lines: list[bytes] = []
    for record in records:
        head: dict[str, Any] = {"index": record.index, "source": record.source}
        if record.error is not None:
            total.add_failure()
            head["error"] = record.error
            if record.id is not None:
                head["id"] = record.id
            if not summary_only:
                lines.append(orjson.dumps(head))
            continue
        if rows is not None:
            head["id"] = record.id
            row = next(rows)
            # Splice {"index":..,"source":..,"id":..} and the worker's {"text":..,...} into one.
            lines.append(
                orjson.dumps(head)[:-1] + b"," + row[1:] if row != b"{}" else orjson.dumps(head)
            )
    if result is not None:
        total.merge(result.summary)
    return b"\n".join(lines) + b"\n" if lines else b""
