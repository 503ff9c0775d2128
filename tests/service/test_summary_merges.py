"""OrderedMerges: packs merged in input order, whatever the number of packs and the order in
which the merges finish; what is left at the end, reduced part by part, is every pack merged."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serve_app.core import packed_summary, summary_parts
from serve_app.core.summary import Summary
from serve_app.core.summary_parts import Leaf, Split
from serve_app.service.summary_merges import OrderedMerges
from tests.core.summaries import reduced_by_part

WORDS = st.lists(st.sampled_from(["a", "b", "c", "d", "好", "e"]), max_size=6)


def summary_of(words: list[str]) -> Summary:
    summary = Summary()
    summary.add_words(char_count=len(words), words=words)
    return summary


def run(
    chunks: list[list[str]], fan_in: int, seed: int, parts: int = 2
) -> tuple[list[Leaf | Split], int]:
    shuffle = random.Random(seed)
    calls = 0

    async def merge(items: list[Leaf | Split]) -> Split:
        nonlocal calls
        calls += 1
        assert 2 <= len(items)
        await asyncio.sleep(shuffle.random() / 1000)  # merges finish in any order
        return summary_parts.merge_ranges(items, parts)

    async def main() -> list[Leaf | Split]:
        merges = OrderedMerges(merge, fan_in=fan_in)
        for words in chunks:
            merges.add(packed_summary.pack(summary_of(words)))
            await asyncio.sleep(0)
        return await merges.remaining()

    return asyncio.run(main()), calls


@settings(max_examples=60, deadline=None)
@given(
    chunks=st.lists(WORDS, max_size=40),
    fan_in=st.integers(2, 5),
    seed=st.integers(0, 99),
    parts=st.integers(1, 3),
)
def test_what_is_left_reduced_equals_one_pass_over_the_chunks_in_order(
    chunks: list[list[str]], fan_in: int, seed: int, parts: int
) -> None:
    left, _ = run(chunks, fan_in, seed, parts)
    if not chunks:
        assert left == []
        return
    assert len(left) < fan_in * (1 + len(chunks).bit_length())  # at most fan_in - 1 per level
    assert all(len(item.packs) == parts for item in left if isinstance(item, Split))
    expected = Summary()
    for words in chunks:
        expected.merge(summary_of(words))
    # every word in top_words: their order is the first-occurrence order among equal counts
    assert reduced_by_part(left, parts, 10) == expected.to_dict(10)


def test_merges_start_as_soon_as_a_level_is_full_and_read_each_pack_once() -> None:
    # 16 packs with fan-in 4: four merges of leaves, one of their results; nothing left over.
    _, calls = run([["w"]] * 16, 4, 0)
    assert calls == 5
    # 5 packs: one merge of four; its result and the fifth are left, in that order.
    left, calls = run([["w"]] * 4 + [["v"]], 4, 0)
    assert calls == 1
    assert isinstance(left[0], Split)
    assert left[1] == Leaf(4, packed_summary.pack(summary_of(["v"])))
    assert [reduced_by_part([item], 2, 3)["top_words"] for item in left] == [[["w", 4]], [["v", 1]]]
    left, calls = run([["w"]], 4, 0)
    assert (len(left), calls) == (1, 0)


def test_a_failed_merge_fails_what_is_left_and_cancel_stops_the_rest() -> None:
    async def broken(items: list[Leaf | Split]) -> Split:
        raise RuntimeError("replica gone")

    async def main() -> None:
        merges = OrderedMerges(broken, fan_in=2)
        for _ in range(3):
            merges.add(packed_summary.pack(summary_of(["x"])))
        with pytest.raises(RuntimeError, match="replica gone"):
            await merges.remaining()

    asyncio.run(main())

    async def slow(items: list[Leaf | Split]) -> Split:
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
        OrderedMerges(lambda items: asyncio.sleep(0, Split(())), fan_in=1)
