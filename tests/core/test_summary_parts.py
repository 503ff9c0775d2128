from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serve_app.core import packed_summary, summary_parts
from serve_app.core.arrow_arrays import utf8_array
from serve_app.core.summary import Summary
from serve_app.core.summary_parts import Leaf, Split
from tests.core.summaries import reduced_by_part, sequential, summaries


@settings(max_examples=200, deadline=None)  # a loaded machine is not a failure
@given(st.lists(summaries(), max_size=7), st.integers(1, 5), st.integers(0, 12))
def test_parts_reduced_apart_equal_one_sequential_merge(
    summaries: list[Summary], parts: int, top_n: int
) -> None:
    split = [summary_parts.split(s, parts=parts, origin=i) for i, s in enumerate(summaries)]
    assert all(len(packs) == parts for packs in split)
    heads = [summary_parts.reduce([packs[p] for packs in split], top_n) for p in range(parts)]
    assert summary_parts.combine(heads, top_n) == sequential(summaries).to_dict(top_n)


@st.composite
def ranges(draw: st.DrawFn, leaves: list[Leaf], parts: int) -> list[Leaf | Split]:
    """The leaves, some runs of consecutive ones merged into ranges, and some runs of those
    ranges merged again (an upload's levels), in input order."""

    def grouped(items: list[Any]) -> list[Any]:
        out: list[Any] = []
        at = 0
        while at < len(items):
            size = draw(st.integers(1, 3))
            run = items[at : at + size]
            merge = len(run) > 1 and draw(st.booleans())
            out += [summary_parts.merge_ranges(run, parts)] if merge else run
            at += size
        return out

    level = grouped(list(leaves))
    ranges_only = [item for item in level if isinstance(item, Split)]
    if len(ranges_only) > 1 and ranges_only == level[: len(ranges_only)] and draw(st.booleans()):
        level = [summary_parts.merge_ranges(ranges_only, parts), *level[len(ranges_only) :]]
    return level


@settings(max_examples=200, deadline=None)
@given(st.lists(summaries(), max_size=7), st.integers(1, 5), st.integers(0, 12), st.data())
def test_chunks_merged_in_ranges_then_reduced_by_part_equal_one_sequential_merge(
    summaries: list[Summary], parts: int, top_n: int, data: st.DataObject
) -> None:
    leaves = [Leaf(i, packed_summary.pack(s)) for i, s in enumerate(summaries)]
    items = data.draw(ranges(leaves, parts))
    expected = sequential(summaries).to_dict(top_n)
    assert reduced_by_part(items, parts, top_n) == expected


def test_chunks_break_ties_by_first_occurrence_across_parts_and_ranges() -> None:
    first, second, third = Summary(), Summary(), Summary()
    first.add_words(char_count=3, words=["z", "y", "x"])
    second.add_words(char_count=3, words=["x", "w", "y", "v", "v"])
    third.add_words(char_count=2, words=["u", "z"])
    leaves: list[Leaf | Split] = [
        Leaf(i, packed_summary.pack(s)) for i, s in enumerate([first, second, third])
    ]
    for parts in (1, 2, 3, 8):
        for items in (leaves, [summary_parts.merge_ranges(leaves[:2], parts), leaves[2]]):
            summary = reduced_by_part(items, parts, 5)
            assert summary["top_words"] == [["z", 2], ["y", 2], ["x", 2], ["v", 2], ["w", 1]]
            assert summary["unique_words"] == 6
            assert summary["records"] == 3  # the totals counted once, in part 0
    with pytest.raises(ValueError, match="part 2 is not one of 2"):
        summary_parts.reduce(leaves, 5, part=2, parts=2)
    with pytest.raises(ValueError, match="in 2 parts merged into 3"):
        summary_parts.merge_ranges([summary_parts.merge_ranges(leaves, 2)], 3)


def test_ties_break_by_first_occurrence_across_parts_and_origins() -> None:
    first, second = Summary(), Summary()
    first.add_words(char_count=3, words=["z", "y", "x"])
    second.add_words(char_count=3, words=["x", "w", "y", "v", "v"])
    for parts in (1, 2, 3, 8):
        split = [
            summary_parts.split(s, parts=parts, origin=i) for i, s in enumerate([first, second])
        ]
        heads = [summary_parts.reduce(pair, 5) for pair in zip(*split, strict=True)]
        assert summary_parts.combine(heads, 5)["top_words"] == [
            ["y", 2], ["x", 2], ["v", 2], ["z", 1], ["w", 1]
        ]  # fmt: skip


def test_a_word_has_one_part_wherever_it_stands() -> None:
    words = [f"w{i}-{'好' * (i % 13)}" for i in range(2000)]
    parts = summary_parts.part_numbers(utf8_array(words), 6)
    sliced = summary_parts.part_numbers(utf8_array(["", *words[::-1]]).slice(1), 6)
    assert parts.tolist() == sliced.tolist()[::-1]
    shares = [parts.tolist().count(p) / len(words) for p in range(6)]
    assert min(shares) > 0.1, shares  # spread, not all in one part


def test_empty_words_and_no_words() -> None:
    assert summary_parts.part_numbers(utf8_array(["", "", "a"]), 3).shape == (3,)
    assert summary_parts.part_numbers(utf8_array(["", ""]), 3).tolist() == [0, 0]
    empty = summary_parts.split(Summary(), parts=3, origin=0)
    heads = [summary_parts.reduce([pack], 10) for pack in empty]
    assert summary_parts.combine(heads) == Summary().to_dict()
    assert summary_parts.combine([summary_parts.reduce([], 3)], 3) == Summary().to_dict(3)
