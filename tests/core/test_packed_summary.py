from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from serve_app.core import packed_summary
from serve_app.core.summary import Summary
from tests.core.summaries import sequential, summaries


@settings(max_examples=200, deadline=None)  # a loaded machine is not a failure
@given(summaries(), st.integers(0, 12))
def test_a_pack_keeps_the_summary_and_its_first_occurrence_order(
    summary: Summary, top_n: int
) -> None:
    expected = sequential([summary])
    packed = packed_summary.pack(summary)
    assert packed_summary.to_dict(packed, top_n) == expected.to_dict(top_n)
    unpacked = packed_summary.unpack(packed)
    assert unpacked.to_state() == expected.to_state()
    assert list(unpacked.word_counts.items()) == list(expected.word_counts.items())


def test_ties_in_top_words_break_by_first_occurrence() -> None:
    summary = Summary()
    summary.add_words(char_count=3, words=["z", "y", "x"])
    summary.add_words(char_count=3, words=["x", "w", "y"])
    packed = packed_summary.pack(summary)
    assert packed_summary.to_dict(packed, 4)["top_words"] == [
        ["y", 2],
        ["x", 2],
        ["z", 1],
        ["w", 1],
    ]
    assert Counter({"y": 2, "x": 2, "z": 1, "w": 1}) == packed_summary.unpack(packed).word_counts


def test_an_empty_summary_packs_to_an_empty_summary() -> None:
    assert packed_summary.to_dict(packed_summary.pack(Summary())) == Summary().to_dict()


def test_totals_reads_everything_but_the_words() -> None:
    summary = Summary()
    summary.add_words(char_count=9, words=["a", "b", "a"])
    summary.add_failure()
    summary.add_analysis({"language": "en", "sentiment": {"label": "positive", "score": 0.5}})
    got = packed_summary.totals(packed_summary.pack(summary))
    assert got.word_counts == Counter()
    assert (got.records, got.ok, got.failed, got.total_chars, got.total_words) == (2, 1, 1, 9, 3)
    assert got.languages == Counter({"en": 1}) and got.sentiment_score_sum == 0.5
