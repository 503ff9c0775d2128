from __future__ import annotations

from collections import Counter

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from serve_app.core import counting
from serve_app.core.chunk_words import count_chunk

WHITESPACE = counting.CountOptions(tokenizer="whitespace", lowercase=False)

# Every character str.split() splits at: ASCII blanks, and those only Unicode's split knows.
BLANKS = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


def test_arrow_whitespace_is_str_split_whitespace() -> None:
    # The chunk path leans on this: Arrow's Unicode whitespace is exactly str.split()'s.
    points = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    texts = [f"a{chr(c)}b" for c in points]
    split = pc.utf8_split_whitespace(pa.array(texts)).to_pylist()
    assert [t for t, s in zip(texts, split, strict=True) if t.split() != s] == []
    ends = [f"{chr(c)}a{chr(c)}" for c in points]
    trimmed = pc.utf8_trim_whitespace(pa.array(ends)).to_pylist()
    assert [t for t, s in zip(ends, trimmed, strict=True) if t.strip() != s] == []


def check(texts: list[str], options: counting.CountOptions = WHITESPACE) -> None:
    """count_chunk, with and without each text's counts, against str.split() and Counter."""
    folded = [t.casefold() for t in texts] if options.lowercase else texts
    expected = Counter(word for text in folded for word in text.split())
    for by_record in (False, True):
        chunk = count_chunk(texts, options, by_record=by_record)
        assert chunk is not None
        assert chunk.totals == [len(t.split()) for t in folded]
        assert chunk.words.type == pa.large_string()
        pairs = zip(chunk.words.to_pylist(), chunk.counts.to_pylist(), strict=True)
        assert list(pairs) == list(expected.items())  # in first-occurrence order
        if by_record:
            assert chunk.tallies is not None
            got = [list(tally.items()) for tally in chunk.tallies]
            assert got == [list(Counter(t.split()).items()) for t in folded]
        else:
            assert chunk.tallies is None
    check_json(texts, options)


def check_json(texts: list[str], options: counting.CountOptions = WHITESPACE) -> None:
    """by_record="json": each text's tally as the bytes orjson.dumps writes for its Counter
    dict, or the dicts themselves where a word holds a control character."""
    folded = [t.casefold() for t in texts] if options.lowercase else texts
    expected = [dict(Counter(t.split())) for t in folded]
    chunk = count_chunk(texts, options, by_record="json")
    assert chunk is not None
    if any(ord(c) < 0x20 for t in folded for word in t.split() for c in word):
        assert chunk.tally_json is None and chunk.tallies == expected
        return
    assert chunk.tallies is None
    assert chunk.tally_json == [(len(tally), orjson.dumps(tally)) for tally in expected]


def test_unstripped_and_empty_texts() -> None:
    check(["", " ", " x ", "\u3000a b\x1c", "a"])
    chunk = count_chunk(["", " ", " x ", "a"], WHITESPACE, by_record=True)
    assert chunk is not None and chunk.tallies == [{}, {}, {"x": 1}, {"a": 1}]


@pytest.mark.parametrize("blank", [b for b in BLANKS if b not in " \t\n\v\f\r"])
def test_each_blank_only_unicode_knows(blank: str) -> None:
    # One such blank, in one text of a chunk that is otherwise ASCII-blank only.
    check(["x y", f"a{blank}b c", "物流 很快"])


@given(
    st.lists(
        st.text(alphabet=st.sampled_from([*BLANKS, "a", "b", "B", "é", "物", "流"])), min_size=1
    ),
    st.booleans(),
)
def test_chunk_counts_are_str_split_counts(texts: list[str], lowercase: bool) -> None:
    check(texts, counting.CountOptions(tokenizer="whitespace", lowercase=lowercase))


@given(
    st.lists(
        st.text(
            alphabet=st.sampled_from([" ", "\n", "a", "é", "物", '"', "\\", "/", "\x7f", "\u2028"])
            | st.characters(max_codepoint=0x40)
        ),
        min_size=1,
    )
)
def test_json_tallies_are_what_orjson_writes(texts: list[str]) -> None:
    # Quotes, backslashes and control characters are what JSON escapes; the rest goes as it is.
    check_json(texts)


def test_json_tallies_of_empty_texts_and_a_word_with_a_control_character() -> None:
    check_json(["", " a ", 'say "hi" \\o/', "", "x"])
    chunk = count_chunk(["a\x01b c", "d"], WHITESPACE, by_record="json")
    assert chunk is not None and chunk.tally_json is None
    assert chunk.tallies == [{"a\x01b": 1, "c": 1}, {"d": 1}]


def test_none_where_arrow_cannot_give_the_same_words() -> None:
    assert count_chunk([], WHITESPACE) is None
    assert count_chunk(["a\ud800b"], WHITESPACE) is None  # not UTF-8
    assert count_chunk(["a b"], counting.CountOptions(tokenizer="unicode")) is None
    filtered = counting.CountOptions(tokenizer="whitespace", min_length=2)
    assert count_chunk(["a bb"], filtered) is None
