import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serve_app.core import packed_summary, summary_parts
from serve_app.core.arrow_arrays import utf8_array
from serve_app.core.summary import Summary
from tests.core.summaries import sequential, summaries


@settings(max_examples=200, deadline=None)  # a loaded machine is not a failure
@given(st.lists(summaries(), max_size=7), st.integers(1, 5), st.integers(0, 12))
def test_parts_reduced_apart_equal_one_sequential_merge(
    summaries: list[Summary], parts: int, top_n: int
) -> None:
    split = [summary_parts.split(s, parts=parts, origin=i) for i, s in enumerate(summaries)]
    assert all(len(packs) == parts for packs in split)
    heads = [summary_parts.reduce([packs[p] for packs in split], top_n) for p in range(parts)]
    assert summary_parts.combine(heads, top_n) == sequential(summaries).to_dict(top_n)


@settings(max_examples=200, deadline=None)
@given(st.lists(summaries(), max_size=7), st.integers(1, 5), st.integers(0, 12))
def test_whole_packs_reduced_part_by_part_equal_one_sequential_merge(
    summaries: list[Summary], parts: int, top_n: int
) -> None:
    packs = [packed_summary.pack(s) for s in summaries]
    heads = [
        summary_parts.reduce_packs(packs, part=p, parts=parts, top_n=top_n) for p in range(parts)
    ]
    assert summary_parts.combine(heads, top_n) == sequential(summaries).to_dict(top_n)
    # and what one merge of the packs gives, the way a single pack is summarized
    if packs:
        assert summary_parts.combine(heads, top_n) == packed_summary.to_dict(
            packed_summary.merge(packs), top_n
        )


def test_whole_packs_break_ties_by_first_occurrence_across_parts() -> None:
    first, second = Summary(), Summary()
    first.add_words(char_count=3, words=["z", "y", "x"])
    second.add_words(char_count=3, words=["x", "w", "y", "v", "v"])
    packs = [packed_summary.pack(first), packed_summary.pack(second)]
    for parts in (1, 2, 3, 8):
        heads = [
            summary_parts.reduce_packs(packs, part=p, parts=parts, top_n=5) for p in range(parts)
        ]
        summary = summary_parts.combine(heads, 5)
        assert summary["top_words"] == [["y", 2], ["x", 2], ["v", 2], ["z", 1], ["w", 1]]
        assert summary["unique_words"] == 5
        assert summary["records"] == 2  # the totals counted once, in part 0
    with pytest.raises(ValueError):
        summary_parts.reduce_packs(packs, part=2, parts=2, top_n=5)


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
