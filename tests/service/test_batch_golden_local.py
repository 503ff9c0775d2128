"""The pinned /v1/batch answers (see batch_golden), from the framing, chunking and replica code
run in this process with small chunks: many frames and chunks per upload, no Ray."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from serve_app.core.pipeline import BulkOptions
from serve_app.core.records import ParseOptions, framer_for
from serve_app.core.records.framing import Frame
from serve_app.core.uploads import ChunkAnswer, analyze_chunk
from serve_app.schemas import BatchOptions
from serve_app.service.batch_stream import BatchLimits, stream_batch
from tests.service.batch_golden import GOLDEN, Upload, normalize, uploads


def include_fields(include: str | None) -> frozenset[str] | None:
    if include is None:
        return None
    return frozenset() if include == "none" else frozenset(include.split(","))


async def answer(upload: Upload, *, chunk_bytes: int, body_piece: int) -> bytes:
    params = upload.params
    parse = ParseOptions(
        text_field=params.get("text_field", "text"), id_field=params.get("id_field", "id")
    )
    options = BatchOptions.model_validate_json(params.get("options", "{}"))
    bulk = BulkOptions(
        clean=options.clean.to_core(),
        count=options.count.to_core(),
        include=include_fields(params.get("include")),
    )
    framer = framer_for(
        upload.content_type,
        parse,
        content_encoding=upload.headers.get("content-encoding"),
        piece_bytes=chunk_bytes,
    )

    async def body() -> AsyncIterator[bytes]:
        for at in range(0, len(upload.body), body_piece):
            await asyncio.sleep(0)
            yield upload.body[at : at + body_piece]

    async def submit(frames: list[Frame]) -> ChunkAnswer:
        await asyncio.sleep(0.001 * (len(frames) % 3))  # answers come back out of order
        return analyze_chunk(frames, parse, bulk)

    lines = stream_batch(
        body(),
        framer,
        submit=submit,
        is_retryable=lambda exc: False,
        limits=BatchLimits(chunk_bytes=chunk_bytes, max_in_flight=3, linger_s=0.001),
        top_words=int(params.get("top_words", "10")),
    )
    return b"".join([line async for line in lines])


@pytest.mark.parametrize("upload", uploads(), ids=lambda upload: upload.name)
@pytest.mark.parametrize(("chunk_bytes", "body_piece"), [(1024, 997), (1 << 20, 1 << 16)])
def test_the_answer_is_the_pinned_bytes(upload: Upload, chunk_bytes: int, body_piece: int) -> None:
    got = asyncio.run(answer(upload, chunk_bytes=chunk_bytes, body_piece=body_piece))
    assert normalize(got) == (GOLDEN / f"{upload.name}.ndjson").read_bytes()
