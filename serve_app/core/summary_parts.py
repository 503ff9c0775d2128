"""A partial `Summary` split by word into parts that are merged apart, so that no process ever
holds a whole job's word counts (they grow with the corpus: a seed-mode job of 1 GB counts
about 3.6 M distinct whitespace tokens, most of them Chinese sentences).

`split` puts each word in one of `parts` packs by a hash of its UTF-8 bytes (the same part in
every process), with its count and a key of its first occurrence, `origin << 32 | position`.
`reduce` merges the packs of one part in the order of their origins (one hash pass in C++, as
`packed_summary.merge`), keeping each word's first key, into the part's head: its distinct
words and top words with their keys. `combine` makes the whole summary from every part's head:
the top words of the parts ordered by (count descending, key) are the top words of one
sequential `Summary.merge` over the origins, ties included. The totals travel in part 0.

`reduce_packs` is the same reduction for packs that were not split (`packed_summary`'s, an
upload's merged chunk summaries): each call reads them all and keeps the words of its part,
so the parts of the last merge run at once (on the replicas Serve picks, sometimes one), and
its result is the head, not a pack of every word.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from serve_app.core.arrow_arrays import int64_array, numbers
from serve_app.core.packed_summary import read_columns, write_columns
from serve_app.core.summary import Summary

__all__ = ["combine", "part_numbers", "reduce", "reduce_packs", "split"]

_SCHEMA = pa.schema([("word", pa.large_string()), ("count", pa.int64()), ("key", pa.int64())])
# Bytes of a word that decide its part: its length and up to this many from each end. Cheap
# (a group's 90 k words in ~10 ms, where hashing every byte took 70) and enough to spread words.
_ENDS = 8
_FNV_PRIME = np.uint64(1099511628211)


def split(summary: Summary, *, parts: int, origin: int) -> list[bytes]:
    """`parts` packs of the summary's words (`origin`: this summary's place in the merge order,
    below 2**31); the totals in the first."""
    words, values = summary.word_columns()
    keys = np.arange(len(words), dtype=np.int64) + (origin << 32)
    # A pack waits in the object store until its part is reduced, the job's distinct words with
    # it (0.34 bytes per input byte in seed mode): packs are compressed (`write_columns`).
    empty = Summary()
    if parts == 1:
        return [write_columns(_SCHEMA, summary, [words, values, int64_array(keys)])]
    part_of = part_numbers(words, parts)
    order = np.argsort(part_of, kind="stable")  # each part keeps first-occurrence order
    ends = np.cumsum(np.bincount(part_of, minlength=parts))
    taken = int64_array(order)
    words, values, sorted_keys = words.take(taken), values.take(taken), keys[order]
    packs = []
    start = 0
    for part, end in enumerate(ends.tolist()):
        packs.append(
            write_columns(
                _SCHEMA,
                summary if part == 0 else empty,
                [
                    words.slice(start, end - start),
                    values.slice(start, end - start),
                    int64_array(sorted_keys[start:end]),
                ],
            )
        )
        start = end
    return packs


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


def reduce(packs: Sequence[bytes | pa.Buffer], top_n: int) -> dict[str, Any]:
    """The packs of one part, in the order of their origins, merged (one hash pass in C++):
    the part's totals, distinct words and `top_n` top words as [word, count, key]."""
    totals = Summary()
    words: list[pa.Array] = []
    counts: list[np.ndarray[Any, Any]] = []
    keys: list[np.ndarray[Any, Any]] = []
    for packed in packs:
        part_totals, (part_words, part_counts, part_keys) = read_columns(packed)
        totals.merge(part_totals)
        words.append(part_words)
        counts.append(numbers(part_counts))
        keys.append(numbers(part_keys))
    return _head(totals, words, counts, keys, top_n)


def reduce_packs(
    packs: Sequence[bytes | pa.Buffer], *, part: int, parts: int, top_n: int
) -> dict[str, Any]:
    """The head of part `part` of `parts` of whole (unsplit) packs, in their merge order: a
    word's key is its place in the packs' words one after the other. The totals in part 0."""
    if not 0 <= part < parts:
        raise ValueError(f"part {part} is not one of {parts}")
    totals = Summary()
    words: list[pa.Array] = []
    counts: list[np.ndarray[Any, Any]] = []
    keys: list[np.ndarray[Any, Any]] = []
    start = 0
    # Pack by pack: only the part's words are kept, and each pack's memory is freed (and
    # reused by the next) before the next is read; a fresh process pays for every new page.
    for packed in packs:
        pack_totals, (pack_words, pack_counts) = read_columns(packed)
        if part == 0:
            totals.merge(pack_totals)
        if parts == 1:
            words.append(pack_words)
            counts.append(numbers(pack_counts))
            keys.append(np.arange(start, start + len(pack_words), dtype=np.int64))
        else:
            mine = np.flatnonzero(part_numbers(pack_words, parts) == part)
            words.append(pack_words.take(int64_array(mine)))
            counts.append(numbers(pack_counts)[mine])
            keys.append(mine + start)
        start += len(pack_words)
        del pack_words, pack_counts
    return _head(totals, words, counts, keys, top_n)


def _head(
    totals: Summary,
    words: list[pa.Array],
    counts: list[np.ndarray[Any, Any]],
    keys: list[np.ndarray[Any, Any]],
    top_n: int,
) -> dict[str, Any]:
    """One part's head: its words (each with its count and key, pack by pack) merged by one
    hash pass over the packs' words as they are, not concatenated first (a copy of every
    word)."""
    head: dict[str, Any] = {
        "state": totals.without_words().to_state(),
        "unique_words": 0,
        "top": [],
    }
    if sum(map(len, words)) == 0:
        return head
    encoded = pc.dictionary_encode(pa.chunked_array(words, _SCHEMA.field("word").type))
    # One memo table over the chunks: every chunk carries the final dictionary.
    unique = encoded.chunk(encoded.num_chunks - 1).dictionary
    if any(len(chunk.dictionary) != len(unique) for chunk in encoded.chunks):
        raise RuntimeError("dictionary_encode gave chunks different dictionaries")
    indices = np.concatenate([numbers(chunk.indices) for chunk in encoded.chunks])
    sums = np.bincount(indices, weights=np.concatenate(counts), minlength=len(unique))
    # The dictionary numbers words as it first meets them, so a word's first occurrence is
    # where its number exceeds every number before it; its key there is its earliest.
    first = np.empty(len(indices), dtype=bool)
    first[:1] = True
    np.greater(indices[1:], np.maximum.accumulate(indices)[:-1], out=first[1:])
    head["unique_words"] = len(unique)
    k = min(top_n, len(unique))
    if k > 0:
        table = pa.table(
            {"count": int64_array(sums), "key": int64_array(np.concatenate(keys)[first])}
        )
        picked = pc.select_k_unstable(
            table, k, sort_keys=[("count", "descending"), ("key", "ascending")]
        )
        head["top"] = [
            list(row)
            for row in zip(
                unique.take(picked).to_pylist(),
                table.column("count").take(picked).to_pylist(),
                table.column("key").take(picked).to_pylist(),
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
