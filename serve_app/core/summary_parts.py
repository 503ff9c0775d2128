"""A partial `Summary` split by word into parts that are merged apart, so that no process ever
holds a whole job's word counts (they grow with the corpus: a seed-mode job of 1 GB counts
about 3.6 M distinct whitespace tokens, most of them Chinese sentences).

`split` puts each word in one of `parts` packs by a hash of its UTF-8 bytes (the same part in
every process), with its count and a key of its first occurrence, `origin << 32 | position`.
`reduce` merges the packs of one part in the order of their keys (one hash pass in C++),
keeping each word's first key, into the part's head: its distinct
words and top words with their keys. `combine` makes the whole summary from every part's head:
the top words of the parts ordered by (count descending, key) are the top words of one
sequential `Summary.merge` over the origins, ties included. The totals travel in part 0.

An upload's chunks come back whole (`packed_summary`'s packs: `Leaf`, with the chunk's place
as its origin); `merge_ranges` merges consecutive ones into a `Split` (a pack per part, the
words keyed), level by level while the upload runs, and at its end each part's `reduce` reads
that part's packs and the last chunks' words of that part alone, at once on the replicas.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from serve_app.core.arrow_arrays import int64_array, numbers
from serve_app.core.packed_summary import read_columns, write_columns
from serve_app.core.summary import Summary, merge_counts

__all__ = [
    "Leaf",
    "Split",
    "combine",
    "merge_ranges",
    "of_part",
    "part_numbers",
    "reduce",
    "split",
]

_SCHEMA = pa.schema([("word", pa.large_string()), ("count", pa.int64()), ("key", pa.int64())])
# Bytes of a word that decide its part: its length and up to this many from each end. Cheap
# (a group's 90 k words in ~10 ms, where hashing every byte took 70) and enough to spread words.
_ENDS = 8
_FNV_PRIME = np.uint64(1099511628211)


def split(summary: Summary, *, parts: int, origin: int) -> list[bytes]:
    """`parts` packs of the summary's words (`origin`: this summary's place in the merge order,
    below 2**31); the totals in the first."""
    words, values = summary.word_columns()
    # A pack waits in the object store until its part is reduced, the job's distinct words with
    # it (0.34 bytes per input byte in seed mode): packs are compressed (`write_columns`).
    empty = Summary()
    return [
        write_columns(
            _SCHEMA,
            summary if part == 0 else empty,
            [part_words, int64_array(part_counts), int64_array(part_keys)],
        )
        for part, (part_words, part_counts, part_keys) in enumerate(
            _by_part(words, numbers(values), _keys(len(words), origin), parts)
        )
    ]


def part_numbers(words: pa.Array, parts: int) -> np.ndarray[Any, np.dtype[np.intp]]:
    """Each word's part, from its length and the bytes at its two ends (FNV-1a, then mixed)."""
    size = len(words)
    if parts == 1 or size == 0:
        return np.zeros(size, dtype=np.intp)
    offsets = np.frombuffer(
        words.buffers()[1], dtype=np.int64, count=size + 1, offset=words.offset * 8
    )
    data_buffer = words.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer else np.zeros(1, np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    present = ends > starts  # an empty word hashes its length alone
    last = np.maximum(ends - 1, starts)
    top = max(len(data) - 1, 0)
    hashed = (ends - starts).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    for k in range(_ENDS):
        for at in (np.minimum(starts + k, last), np.maximum(last - k, starts)):
            byte = np.where(present, data[np.minimum(at, top)], 0).astype(np.uint64)
            hashed = (hashed ^ byte) * _FNV_PRIME
    hashed ^= hashed >> np.uint64(31)
    hashed *= np.uint64(0xBF58476D1CE4E5B9)
    hashed ^= hashed >> np.uint64(29)
    return (hashed % np.uint64(parts)).astype(np.intp)


@dataclass(frozen=True, slots=True)
class Leaf:
    """A chunk's whole pack (`packed_summary.pack`: no keys, its words in first-occurrence
    order) and its place among the chunks (`origin`, below 2**31): a word's key in it is
    `origin << 32 | position`, as `split` gives."""

    origin: int
    pack: bytes


@dataclass(frozen=True, slots=True)
class Split:
    """A range of chunks merged (`merge_ranges`): one pack per part, each word with its count
    and first key, in the order of their keys; the range's totals in the first."""

    packs: tuple[bytes, ...]


def merge_ranges(items: Sequence[Leaf | Split], parts: int) -> Split:
    """Consecutive chunks (leaves) or ranges (splits), in input order, merged into one range
    split in `parts`: an upload's summaries, level by level on the replicas
    (`service.summary_merges`), so that the last merge reads each part's words alone."""
    totals = Summary()
    columns: list[_Columns] = [([], [], []) for _ in range(parts)]
    for item in items:
        if isinstance(item, Split):
            if len(item.packs) != parts:
                raise ValueError(f"a range in {len(item.packs)} parts merged into {parts}")
            for part, packed in enumerate(item.packs):
                part_totals, words, counts, keys = _keyed_columns(packed)
                totals.merge(part_totals)
                _append(columns[part], words, counts, keys)
            continue
        leaf_totals, words, counts, keys = _leaf_columns(item)
        totals.merge(leaf_totals)
        for part, (part_words, part_counts, part_keys) in enumerate(
            _by_part(words, counts, keys, parts)
        ):
            _append(columns[part], part_words, part_counts, part_keys)
    empty = Summary()
    return Split(
        tuple(
            write_columns(_SCHEMA, totals if part == 0 else empty, list(_merged(*columns[part])))
            for part in range(parts)
        )
    )


def of_part(items: Sequence[Leaf | Split], part: int) -> list[Leaf | bytes]:
    """What `reduce` reads of an upload's chunks and ranges for one part: each chunk whole (it
    keeps the part's words), each range's pack of that part alone."""
    return [item if isinstance(item, Leaf) else item.packs[part] for item in items]


def reduce(
    items: Sequence[bytes | pa.Buffer | Leaf], top_n: int, *, part: int = 0, parts: int = 1
) -> dict[str, Any]:
    """The head of one part: its totals, distinct words and `top_n` top words as [word, count,
    key]. `items` in the order of their keys: that part's packs (`split`'s, or a `Split`'s
    pack of that part), and whole chunks (`Leaf`), of which only the part's words count (and
    their totals only in part 0). One hash pass in C++ over every word (`_merged`)."""
    if not 0 <= part < parts:
        raise ValueError(f"part {part} is not one of {parts}")
    totals = Summary()
    columns: _Columns = ([], [], [])
    # Item by item: only the part's words are kept, and each item's memory is freed (and
    # reused by the next) before the next is read; a fresh process pays for every new page.
    for item in items:
        if not isinstance(item, Leaf):
            part_totals, words, counts, keys = _keyed_columns(item)
            totals.merge(part_totals)
            _append(columns, words, counts, keys)
            continue
        leaf_totals, words, counts, keys = _leaf_columns(item)
        if part == 0:
            totals.merge(leaf_totals)
        if parts == 1:
            _append(columns, words, counts, keys)
        else:  # only this part's words: a mask, not `_by_part`'s sort of every word
            mine = np.flatnonzero(part_numbers(words, parts) == part)
            _append(columns, words.take(int64_array(mine)), counts[mine], keys[mine])
        del words, counts, keys
    return _head(totals, *columns, top_n)


def _keys(size: int, origin: int) -> np.ndarray[Any, Any]:
    """The keys of a summary's words in first-occurrence order: `origin << 32 | position`."""
    return np.arange(size, dtype=np.int64) + (origin << 32)


def _leaf_columns(
    leaf: Leaf,
) -> tuple[Summary, pa.Array, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A chunk's totals, words, counts and keys."""
    totals, (words, counts) = read_columns(leaf.pack)
    return totals, words, numbers(counts), _keys(len(words), leaf.origin)


def _keyed_columns(
    packed: bytes | pa.Buffer,
) -> tuple[Summary, pa.Array, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A keyed pack's (`split`'s, a `Split`'s) totals, words, counts and keys."""
    totals, (words, counts, keys) = read_columns(packed)
    return totals, words, numbers(counts), numbers(keys)


def _by_part(
    words: pa.Array, counts: np.ndarray[Any, Any], keys: np.ndarray[Any, Any], parts: int
) -> list[tuple[pa.Array, np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """The words with their counts and keys, grouped by part, each part in their order."""
    if parts == 1:
        return [(words, counts, keys)]
    part_of = part_numbers(words, parts)
    order = np.argsort(part_of, kind="stable")  # each part keeps its keys' order
    bounds = [0, *np.cumsum(np.bincount(part_of, minlength=parts)).tolist()]
    words, counts, keys = words.take(int64_array(order)), counts[order], keys[order]
    return [
        (words.slice(start, end - start), counts[start:end], keys[start:end])
        for start, end in itertools.pairwise(bounds)
    ]


_Columns = tuple[list[pa.Array], list[np.ndarray[Any, Any]], list[np.ndarray[Any, Any]]]


def _append(
    columns: _Columns, words: pa.Array, counts: np.ndarray[Any, Any], keys: np.ndarray[Any, Any]
) -> None:
    columns[0].append(words)
    columns[1].append(counts)
    columns[2].append(keys)


def _merged(
    words: list[pa.Array], counts: list[np.ndarray[Any, Any]], keys: list[np.ndarray[Any, Any]]
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Words given chunk by chunk, in the order of their keys, merged (`merge_counts`): each
    distinct word once, in first-occurrence order, with its summed count and its first (lowest)
    key."""
    word_type = _SCHEMA.field("word").type
    if sum(map(len, words)) == 0:
        none = int64_array(np.zeros(0, dtype=np.int64))
        return pa.array([], word_type), none, none
    unique, sums, indices = merge_counts(words, counts)
    # The dictionary numbers words as it first meets them, so a word's first occurrence is
    # where its number exceeds every number before it; its key there is its earliest.
    first = np.empty(len(indices), dtype=bool)
    first[:1] = True
    np.greater(indices[1:], np.maximum.accumulate(indices)[:-1], out=first[1:])
    return unique, sums, int64_array(np.concatenate(keys)[first])


def _head(
    totals: Summary,
    words: list[pa.Array],
    counts: list[np.ndarray[Any, Any]],
    keys: list[np.ndarray[Any, Any]],
    top_n: int,
) -> dict[str, Any]:
    """One part's head from its words, given chunk by chunk in the order of their keys."""
    unique, sums, first_keys = _merged(words, counts, keys)
    head: dict[str, Any] = {
        "state": totals.without_words().to_state(),
        "unique_words": len(unique),
        "top": [],
    }
    k = min(top_n, len(unique))
    if k > 0:
        table = pa.table({"count": sums, "key": first_keys})
        picked = pc.select_k_unstable(
            table, k, sort_keys=[("count", "descending"), ("key", "ascending")]
        )
        head["top"] = [
            list(row)
            for row in zip(
                unique.take(picked).to_pylist(),
                sums.take(picked).to_pylist(),
                first_keys.take(picked).to_pylist(),
                strict=True,
            )
        ]
    return head


def combine(heads: Sequence[dict[str, Any]], top_n: int = 10) -> dict[str, Any]:
    """`Summary.to_dict(top_n)` of the whole, from the head of every part."""
    totals = Summary()
    for part in heads:
        totals.merge(Summary.from_state(part["state"]))
    summary = totals.to_dict(top_n)
    summary["unique_words"] = sum(part["unique_words"] for part in heads)
    candidates = sorted(
        (entry for part in heads for entry in part["top"]), key=lambda e: (-e[1], e[2])
    )
    summary["top_words"] = [[word, count] for word, count, _ in candidates[: max(top_n, 0)]]
    return summary
