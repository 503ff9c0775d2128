"""OrderedMerges: packs merged in input order, whatever the number of packs and the order in
which the merges finish; what is left at the end, merged, is every pack merged."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serve_app.core import packed_summary
from serve_app.core.summary import Summary
from serve_app.service.summary_merges import OrderedMerges

WORDS = st.lists(st.sampled_from(["a", "b", "c", "d", "好", "e"]), max_size=6)


def summary_of(words: list[str]) -> Summary:
    summary = Summary()
    summary.add_words(char_count=len(words), words=words)
    return summary


def run(chunks: list[list[str]], fan_in: int, seed: int) -> tuple[list[bytes], int]:
    shuffle = random.Random(seed)
    calls = 0

    async def merge(packs: list[bytes]) -> bytes:
        nonlocal calls
        calls += 1
        assert 2 <= len(packs)
        await asyncio.sleep(shuffle.random() / 1000)  # merges finish in any order
        return packed_summary.merge(packs)

    async def main() -> list[bytes]:
        merges = OrderedMerges(merge, fan_in=fan_in)
        for words in chunks:
            merges.add(packed_summary.pack(summary_of(words)))
            await asyncio.sleep(0)
        return await merges.remaining()

    return asyncio.run(main()), calls


@settings(max_examples=60, deadline=None)
@given(chunks=st.lists(WORDS, max_size=40), fan_in=st.integers(2, 5), seed=st.integers(0, 99))
def test_what_is_left_merged_equals_one_pass_over_the_chunks_in_order(
    chunks: list[list[str]], fan_in: int, seed: int
) -> None:
    left, _ = run(chunks, fan_in, seed)
    if not chunks:
        assert left == []
        return
    assert len(left) < fan_in * (1 + len(chunks).bit_length())  # at most fan_in - 1 per level
    expected = Summary()
    for words in chunks:
        expected.merge(summary_of(words))
    root = packed_summary.merge(left)
    got = packed_summary.unpack(root)
    assert got == expected
    assert list(got.word_counts) == list(expected.word_counts)  # first-occurrence order
    assert packed_summary.to_dict(root, 3) == expected.to_dict(3)


def test_merges_start_as_soon_as_a_level_is_full_and_read_each_pack_once() -> None:
    # 16 packs with fan-in 4: four merges of leaves, one of their results; nothing left over.
    _, calls = run([["w"]] * 16, 4, 0)
    assert calls == 5
    # 5 packs: one merge of four; its result and the fifth are left, in that order.
    left, calls = run([["w"]] * 4 + [["v"]], 4, 0)
    assert calls == 1
    assert [packed_summary.to_dict(pack)["top_words"] for pack in left] == [[["w", 4]], [["v", 1]]]
    left, calls = run([["w"]], 4, 0)
    assert (len(left), calls) == (1, 0)


def test_a_failed_merge_fails_what_is_left_and_cancel_stops_the_rest() -> None:
    async def broken(packs: list[bytes]) -> bytes:
        raise RuntimeError("replica gone")

    async def main() -> None:
        merges = OrderedMerges(broken, fan_in=2)
        for _ in range(3):
            merges.add(packed_summary.pack(summary_of(["x"])))
        with pytest.raises(RuntimeError, match="replica gone"):
            await merges.remaining()

    asyncio.run(main())

    async def slow(packs: list[bytes]) -> bytes:
        await asyncio.sleep(60)
        raise AssertionError("cancelled merges do not finish")

    async def cancelled() -> None:
        merges = OrderedMerges(slow, fan_in=2)
        for _ in range(4):
            merges.add(packed_summary.pack(summary_of(["x"])))
        await asyncio.sleep(0)
        tasks = set(merges._tasks)
        assert tasks
        merges.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert all(task.cancelled() for task in tasks)

    asyncio.run(cancelled())


def test_fan_in_below_two_is_refused() -> None:
    with pytest.raises(ValueError):
        OrderedMerges(lambda packs: asyncio.sleep(0, b""), fan_in=1)
