"""A chunk's whitespace words counted by Arrow in C++: the texts are split and hash-counted
whole (no Python string per word), for the chunk's summary and, when rows show them, for each
text's own counts.

Only for counting that is (case-folded) `str.split()` and nothing else
(`counting.splits_on_whitespace_only`): Arrow's whitespace is exactly str.split()'s (checked
over every code point in the tests). None where only the Python path gives the same words:
other tokenizers, filters, lone surrogates (not UTF-8).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from serve_app.core import counting
from serve_app.core.arrow_arrays import int64_array, numbers, short_utf8_array

__all__ = ["ChunkWords", "count_chunk"]

# What str.split() splits on besides " \t\n\v\f\r" (Arrow's ASCII whitespace), as an RE2 class.
_NOT_ASCII_BLANK: Final = "[\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


@dataclass(frozen=True, slots=True)
class ChunkWords:
    totals: list[int]  # each text's number of words
    words: pa.LargeStringArray  # the chunk's distinct words, in first-occurrence order
    counts: pa.Int64Array  # and how often each occurs in the chunk
    # With by_record: each text's words and counts, in first-occurrence order (as Counter
    # gives them for the text's str.split()).
    tallies: list[dict[str, int]] | None = None
    # With by_record="json": each text's number of distinct words and its tally as the JSON
    # object orjson would write for it (bytes); None where orjson would escape a control
    # character (then `tallies` are given instead).
    tally_json: list[tuple[int, bytes]] | None = None


def count_chunk(
    texts: Sequence[str],
    options: counting.CountOptions,
    *,
    by_record: bool | Literal["json"] = False,
) -> ChunkWords | None:
    if not counting.splits_on_whitespace_only(options) or not texts:
        return None
    if options.lowercase:
        texts = [text.casefold() for text in texts]
    try:
        array = short_utf8_array(texts)
    except UnicodeEncodeError:
        return None
    # Arrow keeps an empty word for whitespace at either end, and for an empty text: strip the
    # ends first (clean() has already, in both presets), and count empty texts as wordless.
    if any(text[:1].isspace() or text[-1:].isspace() for text in texts):
        array = pc.utf8_trim_whitespace(array)  # str.strip()'s whitespace too (tested)
    sizes: list[int] = pc.binary_length(array).to_pylist()
    # Split at ASCII whitespace (twice as fast as at Unicode's), then look for another blank in
    # the distinct words alone (a third of the text's bytes in seed-shaped reviews): any such
    # blank in a text stays inside one of its words, so none there means none anywhere.
    count = functools.partial(_by_record, as_json=by_record == "json") if by_record else _by_chunk
    words = pc.ascii_split_whitespace(array)
    counted = count(words, len(texts))
    if pc.any(pc.match_substring_regex(counted.words, _NOT_ASCII_BLANK)).as_py():
        words = pc.utf8_split_whitespace(array)
        counted = count(words, len(texts))
    lengths: list[int] = pc.list_value_length(words).to_pylist()
    totals = [n if size else 0 for n, size in zip(lengths, sizes, strict=True)]
    values, counts = counted.words, counted.counts
    if 0 in sizes:  # an empty text's one empty word (no other word is empty)
        real = pc.not_equal(values, "")
        values, counts = values.filter(real), counts.filter(real)
        for at, size in enumerate(sizes):
            if not size:
                if counted.tallies is not None:
                    counted.tallies[at] = {}
                if counted.tally_json is not None:
                    counted.tally_json[at] = (0, b"{}")
    # The summary's columns are large_string throughout (packs, parts, merges).
    return ChunkWords(
        totals,
        values.cast(pa.large_string()),
        counts,
        counted.tallies,
        counted.tally_json,
    )


class _Counted(NamedTuple):
    words: pa.Array  # distinct, in first-occurrence order
    counts: pa.Array
    tallies: list[dict[str, int]] | None = None
    tally_json: list[tuple[int, bytes]] | None = None


def _by_chunk(words: pa.ListArray, texts: int) -> _Counted:
    counted = pc.value_counts(pc.list_flatten(words))
    return _Counted(counted.field(0), counted.field(1))


def _by_record(words: pa.ListArray, texts: int, *, as_json: bool = False) -> _Counted:
    """Every (text, word) pair counted at once, as one int64 key per word occurrence: the
    text's number times the number of distinct words, plus the word's. The pairs come in
    first-occurrence order, which is text by text, so each text's are one run. as_json: each
    text's tally written as JSON by Arrow, without a Python object per word."""
    encoded = pc.dictionary_encode(pc.list_flatten(words))  # numbered by first occurrence
    unique = encoded.dictionary
    distinct = len(unique)
    text_of = numbers(pc.list_parent_indices(words)).astype(np.int64)
    keys = text_of * distinct + numbers(encoded.indices)
    pairs = pc.value_counts(int64_array(keys))
    pair_keys = numbers(pairs.field(0))
    pair_counts = numbers(pairs.field(1))
    word_of = pair_keys % distinct
    ends = np.searchsorted(pair_keys // distinct, np.arange(1, texts + 1)).tolist()
    sums = np.bincount(word_of, weights=pair_counts, minlength=distinct)  # exact below 2**53
    if as_json and not pc.any(pc.match_substring_regex(unique, _CONTROL)).as_py():
        objects = _json_objects(unique, word_of, pair_counts, ends)
        sizes = np.diff(ends, prepend=0).tolist()
        return _Counted(unique, int64_array(sums), tally_json=list(zip(sizes, objects)))
    names = unique.take(int64_array(word_of)).to_pylist()
    counts = pair_counts.tolist()
    tallies = []
    start = 0
    for end in ends:
        tallies.append(dict(zip(names[start:end], counts[start:end], strict=True)))
        start = end
    return _Counted(unique, int64_array(sums), tallies)


# orjson writes a control character as an escape (\n, \u001f); a whitespace word may hold one
# (str.split() keeps U+0000-U+0008 and U+000E-U+001B inside words). Rare: the dicts then.
_CONTROL: Final = r"[\x00-\x1f]"


def _json_objects(
    unique: pa.Array, word_of: np.ndarray, pair_counts: np.ndarray, ends: list[int]
) -> list[bytes]:
    """Each text's `{"word":count,...}` as orjson.dumps writes a dict (no spaces; quotes and
    backslashes escaped, everything else as it is), built by Arrow: each distinct word quoted
    once."""

    def text(value: str) -> pa.Scalar:
        return pa.scalar(value, pa.large_string())

    quoted = pc.replace_substring(unique.cast(pa.large_string()), "\\", "\\\\")
    quoted = pc.replace_substring(quoted, '"', '\\"')
    keys = pc.binary_join_element_wise(text('"'), quoted, text('":'), text(""))
    counts = int64_array(pair_counts).cast(pa.large_string())
    members = pc.binary_join_element_wise(keys.take(int64_array(word_of)), counts, text(""))
    offsets = int64_array(np.concatenate([[0], ends]))
    joined = pc.binary_join(pa.LargeListArray.from_arrays(offsets, members), text(","))
    objects = pc.binary_join_element_wise(text("{"), joined, text("}"), text(""))
    written: list[bytes] = objects.cast(pa.large_binary()).to_pylist()
    return written
