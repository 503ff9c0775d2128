"""cleanserve batch's client side: reading the result stream."""

import asyncio
import itertools
from collections.abc import AsyncIterator

from hypothesis import given, settings
from hypothesis import strategies as st

from serve_app.ops import batch_client


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=12),
    cuts=st.lists(st.integers(0, 600), max_size=20),
    end_newline=st.booleans(),
)
def test_split_lines_gives_the_lines_however_the_stream_is_cut(
    lines: list[bytes], cuts: list[int], end_newline: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if end_newline else b"")
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]

    async def stream() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    async def collect() -> list[bytes]:
        return [line async for line in batch_client.split_lines(stream())]

    assert asyncio.run(collect()) == [line for line in data.split(b"\n") if line]
