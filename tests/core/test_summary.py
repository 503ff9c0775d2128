import pickle
from collections import Counter
from collections.abc import Iterator, Sequence

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serve_app.core import counting
from serve_app.core.counting import CountOptions, count_full
from serve_app.core.summary import Summary

# A record is a text to count, or None for one that failed before counting.
Record = str | None


@pytest.fixture(autouse=True, scope="module")
def _warm() -> Iterator[None]:
    counting.warm_up()
    yield


def summarize(records: Sequence[Record], options: CountOptions = CountOptions()) -> Summary:
    summary = Summary()
    for text in records:
        if text is None:
            summary.add_failure()
        else:
            counts, full = count_full(text, options)
            summary.add_result(char_count=len(text), word_count=counts.word_count, word_counts=full)
    return summary


def assert_same_summary(got: Summary, expected: Summary) -> None:
    assert got.to_state() == expected.to_state()
    assert list(got.word_counts.items()) == list(expected.word_counts.items())
    assert got.top_words(10_000) == expected.top_words(10_000)
    assert got.to_dict() == expected.to_dict()


def test_empty_summary() -> None:
    assert Summary().to_dict() == {
        "records": 0,
        "ok": 0,
        "failed": 0,
        "total_chars": 0,
        "total_words": 0,
        "unique_words": 0,
        "top_words": [],
    }


def test_results_and_failures() -> None:
    summary = Summary()
    summary.add_result(char_count=5, word_count=3, word_counts={"b": 1, "a": 2})
    summary.add_failure()
    summary.add_result(char_count=2, word_count=2, word_counts={"a": 1, "c": 1})
    assert summary.to_dict(top_n=2) == {
        "records": 3,
        "ok": 2,
        "failed": 1,
        "total_chars": 7,
        "total_words": 5,
        "unique_words": 3,
        "top_words": [["a", 3], ["b", 1]],
    }
    assert summary.unique_words == 3


def test_matches_the_seed_summary() -> None:
    records = ["b a a c", "c d e e", "f", "", "x y z x y z b"]
    summary = summarize(records, CountOptions(tokenizer="whitespace", lowercase=False))
    tokens = [w for text in records for w in text.split()]
    assert summary.top_words() == Counter(tokens).most_common(10)
    assert summary.to_dict()["top_words"] == [list(p) for p in Counter(tokens).most_common(10)]
    assert summary.unique_words == len(set(tokens))
    assert summary.total_words == len(tokens)
    assert summary.total_chars == sum(map(len, records))


def test_ties_break_by_first_occurrence_across_records() -> None:
    # per-record word_counts put "a" first (count order); the summary must still rank "b"
    # first, as Counter over all tokens does, because b occurred first
    summary = summarize(["b a a", "b"], CountOptions(tokenizer="unicode"))
    assert summary.top_words() == [("b", 2), ("a", 2)]


def test_merge_is_in_place_and_returns_self() -> None:
    a, b = summarize(["x y"]), summarize(["y z", None])
    merged = a.merge(b)
    assert merged is a
    assert a.to_dict()["records"] == 3
    assert b.to_dict()["records"] == 2  # the other side is untouched


def test_state_round_trips_through_json_and_pickle() -> None:
    summary = summarize(["物流很快 great", None, "great 👍 the"])
    state = summary.to_state()
    assert_same_summary(Summary.from_state(orjson.loads(orjson.dumps(state))), summary)
    assert_same_summary(pickle.loads(pickle.dumps(summary)), summary)
    assert type(state["word_counts"]) is dict


_WORDS = st.sampled_from(["the", "a", "b", "物流", "很快", "好", "don't", "x", "Y", "👍"])
_RECORDS = st.lists(
    st.one_of(st.none(), st.lists(_WORDS, max_size=8).map(" ".join), st.text(max_size=20)),
    max_size=12,
)
_COUNT_OPTIONS = st.builds(
    CountOptions,
    tokenizer=st.sampled_from(counting.TOKENIZERS),
    stopwords=st.sampled_from([None, ("en", "zh")]),
    top_k=st.sampled_from([None, 1]),
)


@given(_RECORDS, st.data(), _COUNT_OPTIONS)
def test_merging_two_parts_equals_one_pass(
    records: list[Record], data: st.DataObject, options: CountOptions
) -> None:
    cut = data.draw(st.integers(0, len(records)))
    merged = summarize(records[:cut], options).merge(summarize(records[cut:], options))
    assert_same_summary(merged, summarize(records, options))


@given(_RECORDS, st.data(), _COUNT_OPTIONS)
def test_merging_is_associative(
    records: list[Record], data: st.DataObject, options: CountOptions
) -> None:
    i = data.draw(st.integers(0, len(records)))
    j = data.draw(st.integers(i, len(records)))
    parts = records[:i], records[i:j], records[j:]

    def part(k: int) -> Summary:
        return summarize(parts[k], options)

    left = part(0).merge(part(1)).merge(part(2))
    right = part(0).merge(part(1).merge(part(2)))
    one_pass = summarize(records, options)
    assert_same_summary(left, one_pass)
    assert_same_summary(right, one_pass)


# Word counts kept as Arrow columns (a whole chunk counted by Arrow) and those counted in Python
# give the same summary, in any mix and merge order; packing them gives the same bytes.
_STEP = st.tuples(
    st.sampled_from(["columns", "words", "merge-columns", "merge-words"]),
    st.lists(st.sampled_from(["a", "b", "c", "好", "d"]), max_size=6),
)


def _columns(words: list[str]) -> tuple[object, object]:
    import pyarrow as pa

    counts = Counter(words)
    return pa.array(list(counts), pa.large_string()), pa.array(list(counts.values()), pa.int64())


@settings(deadline=None)  # the first example imports pyarrow's IPC
@given(steps=st.lists(_STEP, max_size=12))
def test_arrow_columns_and_python_counts_make_the_same_summary(
    steps: list[tuple[str, list[str]]],
) -> None:
    from serve_app.core import packed_summary

    mixed, python = Summary(), Summary()
    for kind, words in steps:
        part = Summary()
        if kind.endswith("columns"):
            names, numbers = _columns(words)
            part.add_columns(
                results=1, char_count=len(words), word_count=len(words), words=names, counts=numbers
            )
        else:
            part.add_words(char_count=len(words), words=words)
        if kind.startswith("merge"):
            mixed.merge(part)
        elif kind == "columns":
            names, numbers = _columns(words)
            mixed.add_columns(
                results=1, char_count=len(words), word_count=len(words), words=names, counts=numbers
            )
        else:
            mixed.add_words(char_count=len(words), words=words)
        python.add_words(char_count=len(words), words=words)
    packed = packed_summary.pack(mixed)  # before anything settles the columns
    assert packed == packed_summary.pack(python)
    all_arrow = not mixed.word_counts
    for n in (0, 2, 10):  # from Arrow when every word is in columns
        assert mixed.to_dict(n) == python.to_dict(n)
    assert bool(mixed.columns) == (all_arrow and bool(python.word_counts))
    assert_same_summary(mixed, python)
    assert not mixed.columns  # settled by the comparisons


def test_many_arrow_columns_are_compacted_and_still_equal_python_counts() -> None:
    mixed, python = Summary(), Summary()
    for i in range(300):
        words = [f"w{i % 17}", f"w{i % 5}", f"u{i}", "x"]
        names, numbers = _columns(words)
        mixed.add_columns(results=1, char_count=4, word_count=4, words=names, counts=numbers)
        python.add_words(char_count=4, words=words)
    assert len(mixed.columns) <= 65  # compacted in Arrow, not settled
    assert mixed.to_dict(7) == python.to_dict(7) and mixed.columns  # from Arrow
    assert_same_summary(mixed, python)
