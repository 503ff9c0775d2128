"""Bulk pipeline: body bytes -> frames -> byte-sized chunks -> replicas -> ordered NDJSON lines.

The ingress only frames (`core.records.framing`: cut at record or file boundaries, no record
decoded); a replica parses, cleans, counts and encodes each chunk (`core.uploads`), and this
writes the replicas' bytes out in input order, numbering the lines, and has their partial
summaries merged (`summary_merges`: by replicas too, in the service, split by word into
parts), the last merge in those parts at once (`head`). It knows nothing of Ray or HTTP: the
ingress hands it the body stream, a framer, a `submit` coroutine that analyzes one chunk, a
`merge` coroutine that merges packed summaries and a `head` coroutine that reduces one part of
the last ones, so ordering, backpressure and retries are testable with plain fakes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from serve_app.core import packed_summary, summary_parts
from serve_app.core.analysis.dedup import DuplicateIndex, mark_duplicates
from serve_app.core.records import UploadError
from serve_app.core.records.framing import Frame, Framer
from serve_app.core.summary import Summary
from serve_app.core.summary_parts import Leaf, Split
from serve_app.core.uploads import ChunkAnswer, number_lines
from serve_app.service.summary_merges import OrderedMerges

Submit = Callable[[list[Frame]], Awaitable[ChunkAnswer]]
# (chunks and ranges in input order, parts) -> them merged (`summary_parts.merge_ranges`)
MergeInParts = Callable[[list[Leaf | Split], int], Awaitable[Split]]
# (chunks and one part's packs of ranges, part, parts, top_words) -> that part's head
# (`summary_parts.reduce`)
Head = Callable[[list[Leaf | bytes], int, int, int], Awaitable[dict[str, Any]]]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class BatchLimits:
    chunk_bytes: int = 4 << 20  # a chunk closes once its frames reach this many bytes
    max_in_flight: int = 4  # chunks at the replicas at once: submitted and not yet answered
    # Chunks read and not yet written out (at least max_in_flight): an answered chunk waits
    # here for an earlier, slower one, while the next chunks go to the replicas that are free.
    # When this counted the chunks at the replicas too, one slow chunk left them idle.
    max_buffered: int = 16
    max_attempts: int = 3  # a chunk whose replica died is sent again (the work is idempotent)
    # A call to a replica that died with its node may never answer: past this, send it again.
    attempt_timeout_s: float | None = 120.0
    max_upload_bytes: int | None = None
    linger_s: float = 0.02  # an idle pipeline sends a partial chunk after this long
    # The upload's summary is merged split by word in this many parts, and its last merge runs
    # in those parts at once (`head`), each reading its part alone: that merge reads every
    # distinct word while nothing else runs, so one replica alone made the tail of an upload.
    final_parts: int = 2


class UploadTooLarge(ValueError):
    pass


class ServiceStopping(RuntimeError):
    """The ingress is being stopped: the stream ends here, and the client retries the rest."""


STOPPING_MESSAGE = "the service is stopping; retry the rest"


@dataclass(slots=True)
class _Chunk:
    frames: list[Frame] = field(default_factory=list)
    nbytes: int = 0
    task: asyncio.Task[ChunkAnswer] | None = None


async def stream_batch(
    body: AsyncIterator[bytes],
    framer: Framer,
    *,
    submit: Submit,
    is_retryable: Callable[[BaseException], bool],
    limits: BatchLimits = BatchLimits(),
    top_words: int = 10,
    on_chunk: Callable[[ChunkAnswer, Summary], None] | None = None,
    duplicates: DuplicateIndex | None = None,
    on_retry: Callable[[], object] | None = None,
    stop: Callable[[], Awaitable[None]] | None = None,
    merge: MergeInParts | None = None,
    head: Head | None = None,
) -> AsyncIterator[bytes]:
    """Yield one NDJSON line per input record, in input order, then the summary line.

    A reader task frames the body and submits chunks; this generator writes results out in
    order. At most `max_in_flight` chunks are at the replicas and at most `max_buffered`
    between the two, which is the backpressure: a slow client or slow replicas stop the
    reading of the upload, never grow memory. When this generator is closed (the client went
    away, or the answer is final) the reader is cancelled: it yields to the event loop after
    every bounded step of framing, so it stops.

    `stop` returns when the stream must end early (the service is stopping): then no more
    lines are written and this raises ServiceStopping, instead of waiting for chunks that a
    stage being stopped will never answer.

    `merge` merges packed summaries into ranges split in `final_parts` (default: here,
    `summary_parts.merge_ranges`) and `head` reduces one part of what is left at the end
    (default: here, `summary_parts.reduce`); both are retried as `submit` is. With
    `duplicates`, the summaries are merged here instead: the index takes each duplicate's
    words back out of the summary as the chunks come in.
    """

    stopped = asyncio.ensure_future(stop()) if stop is not None else None

    async def unless_stopped(step: Awaitable[Any]) -> Any:
        if stopped is None:
            return await step
        if stopped.done():
            raise ServiceStopping(STOPPING_MESSAGE)
        task = asyncio.ensure_future(step)
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            raise ServiceStopping(STOPPING_MESSAGE)
        return task.result()

    async def retried(call: Callable[[], Awaitable[_T]]) -> _T:
        for tries in range(1, limits.max_attempts + 1):
            try:
                return await asyncio.wait_for(call(), limits.attempt_timeout_s)
            except Exception as exc:
                retryable = isinstance(exc, TimeoutError) or is_retryable(exc)
                if tries == limits.max_attempts or not retryable:
                    raise
                if on_retry is not None:
                    on_retry()
                await asyncio.sleep(min(0.1 * 2**tries, 2.0))  # let Serve drop a dead replica
        raise AssertionError("unreachable")

    async def attempt(frames: list[Frame]) -> ChunkAnswer:
        return await retried(lambda: submit(frames))

    parts = limits.final_parts

    async def merged(items: list[Leaf | Split]) -> Split:
        if merge is None:
            return summary_parts.merge_ranges(items, parts)
        return await retried(lambda: merge(items, parts))

    async def head_of(items: list[Leaf | Split], part: int) -> dict[str, Any]:
        # A range sends only its pack of this part: each call reads its part's words alone.
        mine = summary_parts.of_part(items, part)
        if head is None:
            return summary_parts.reduce(mine, top_words, part=part, parts=parts)
        return await retried(lambda: head(mine, part, parts, top_words))

    async def summarized(items: list[Leaf | Split]) -> dict[str, Any]:
        if len(items) == 1 and isinstance(leaf := items[0], Leaf):  # one chunk: a small upload
            return packed_summary.to_dict(leaf.pack, top_words)
        tasks = [asyncio.ensure_future(head_of(items, part)) for part in range(parts)]
        try:
            heads = await asyncio.gather(*tasks)
        finally:  # one part failed, or the stream was closed: the others stop too
            for task in tasks:
                task.cancel()
        return summary_parts.combine(heads, top_words)

    total = Summary()  # with duplicates; else what the merges reduce
    merges = OrderedMerges(merged)
    nodes: Counter[str] = Counter()
    failed_docs: set[int] = set()  # documents whose later frames count for nothing
    next_index = 0
    ready: asyncio.Queue[_Chunk | BaseException | None] = asyncio.Queue()
    window = asyncio.Semaphore(max(limits.max_buffered, limits.max_in_flight))
    running = asyncio.Semaphore(limits.max_in_flight)  # places at the replicas
    reader = asyncio.create_task(
        _read(body, framer, attempt, limits, ready, window, running, failed_docs)
    )
    try:
        while (chunk := await unless_stopped(ready.get())) is not None:
            if isinstance(chunk, BaseException):
                raise chunk
            answer = await unless_stopped(chunk.task) if chunk.task is not None else None
            if answer is not None and any(f.doc in failed_docs for f in chunk.frames):
                # Sent before an earlier chunk said where its document ends: send again
                # without what comes after that end (rare: a syntax error, a bad file).
                frames = [f for f in chunk.frames if f.doc not in failed_docs]
                answer = await unless_stopped(_sent_again(attempt, frames, running))
            window.release()
            if answer is None:
                continue
            if duplicates is None:
                summary = packed_summary.totals(answer.summary)
                merges.add(answer.summary)
            else:
                summary = packed_summary.unpack(answer.summary)
            nodes[answer.node_id] += 1
            if on_chunk is not None:
                on_chunk(answer, summary)
            first_index = next_index
            lines, next_index = number_lines(answer.lines, next_index)
            if duplicates is not None:
                if answer.signatures is not None:
                    lines = mark_duplicates(
                        lines, first_index, answer.signatures, answer.words, duplicates, summary
                    )
                total.merge(summary)
            failed_docs.update(answer.failed_docs)
            if lines:
                yield lines
            if answer.upload_error is not None:
                raise UploadError(answer.upload_error)
        if duplicates is None and (left := await unless_stopped(merges.remaining())):
            final = await unless_stopped(summarized(left))
        else:
            final = total.to_dict(top_words)
    finally:
        reader.cancel()
        merges.cancel()
        if stopped is not None:
            stopped.cancel()
        while not ready.empty():
            item = ready.get_nowait()
            if isinstance(item, _Chunk) and item.task is not None:
                item.task.cancel()
    yield orjson.dumps({"summary": final, "nodes": dict(nodes)}) + b"\n"


async def _sent_again(
    attempt: Callable[[list[Frame]], Coroutine[Any, Any, ChunkAnswer]],
    frames: list[Frame],
    running: asyncio.Semaphore,
) -> ChunkAnswer | None:
    """A chunk sent again without its frames of failed documents (None if nothing is left), in
    one of the replicas' places as the reader's chunks are."""
    if not frames:
        return None
    async with running:
        return await attempt(frames)


async def _read(
    body: AsyncIterator[bytes],
    framer: Framer,
    attempt: Callable[[list[Frame]], Coroutine[Any, Any, ChunkAnswer]],
    limits: BatchLimits,
    ready: asyncio.Queue[_Chunk | BaseException | None],
    window: asyncio.Semaphore,
    running: asyncio.Semaphore,
    failed_docs: set[int],
) -> None:
    async def launch(chunk: _Chunk) -> None:
        await window.acquire()  # released once the chunk's lines are written out
        await running.acquire()  # released once the chunk is answered (or fails)
        chunk.frames = [f for f in chunk.frames if f.doc not in failed_docs]
        if chunk.frames:
            chunk.task = asyncio.create_task(attempt(chunk.frames))
            chunk.task.add_done_callback(lambda _: running.release())
            await ready.put(chunk)
        else:
            running.release()
            window.release()

    current = _Chunk()
    unsent = False  # bytes were framed since the last flush
    received = 0
    chunks = aiter(body)
    next_piece: asyncio.Task[bytes] | None = None
    try:
        while True:
            if next_piece is None:
                next_piece = asyncio.ensure_future(anext(chunks))
            # While the upload stalls, send what has arrived instead of holding it back.
            timeout = limits.linger_s if unsent else None
            done, _ = await asyncio.wait({next_piece}, timeout=timeout)
            if not done:
                unsent = False
                current.frames += framer.flush()
                if current.frames:
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
            unsent = True
            for step in framer.steps(data):
                for frame in step:
                    current.frames.append(frame)
                    current.nbytes += frame.nbytes
                    if current.nbytes >= limits.chunk_bytes:
                        await launch(current)
                        current = _Chunk()
                # A bounded step of framing is done (a gzip bomb inflates one step at a time):
                # let the writer run, and a cancellation land.
                await asyncio.sleep(0)
        current.frames.extend(framer.close())
        if current.frames:
            await launch(current)
        await ready.put(None)
    except asyncio.CancelledError:
        if next_piece is not None:
            next_piece.cancel()
        raise
    except Exception as exc:
        await ready.put(exc)
