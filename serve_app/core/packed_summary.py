"""A partial `Summary` packed to be merged far from where it was counted (a job's groups).

The totals travel as JSON; the word counts as two Arrow columns (word, count) in
first-occurrence order, in one Arrow IPC stream. Unpacking makes no Python object per word,
and merging is one hash pass in C++ (`dictionary_encode` numbers the words in the order it
first meets them; `bincount` adds their counts), so merging packs in order equals merging the
summaries in order (`Summary.merge`), ties in `top_words` included. Measured against packing
`Summary.to_state()` as JSON and merging Counters: see the commit that added this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

from serve_app.core.summary import Summary, merge_columns, top_of

__all__ = ["merge", "pack", "to_dict", "totals", "unpack"]

_TOTALS_KEY = b"cleanserve.summary"
_SCHEMA = pa.schema([("word", pa.large_string()), ("count", pa.int64())])
# A pack crosses processes (replica -> ingress -> replica, level by level in an upload's merges;
# the object store in a job), and seed-mode words are long (a Chinese sentence is one word):
# zstd makes it ~7x smaller for ~1 ms per MB of input (400 seed files, 115 MB: 65 -> 9.4 MB of
# packs, 0.11 s to write and 0.05 s to read them all, one process).
_COMPRESSED = ipc.IpcWriteOptions(compression="zstd")


def pack(summary: Summary) -> bytes:
    words, counts = summary.word_columns()  # Arrow's own when it counted them: no Python word
    return _write(_totals(summary), words, counts)


def unpack(packed: bytes) -> Summary:
    totals, words, counts = _read(packed)
    summary = Summary.from_state(totals)
    summary.word_counts.update(dict(zip(words.to_pylist(), counts.to_pylist(), strict=True)))
    return summary


def totals(packed: bytes) -> Summary:
    """The packed summary without its word counts (records, characters, words, analytics):
    read from the stream's schema, so no word is read."""
    reader = ipc.open_stream(pa.py_buffer(packed))
    return Summary.from_state(orjson.loads(reader.schema.metadata[_TOTALS_KEY]))


def merge(parts: Sequence[bytes]) -> bytes:
    """The packs merged in their order (first-occurrence order of the words kept)."""
    totals = Summary()
    columns: list[tuple[pa.Array, pa.Array]] = []
    for part in parts:
        state, part_words, part_counts = _read(part)
        totals.merge(Summary.from_state(state))
        columns.append((part_words, part_counts))
    if not columns:
        return pack(totals)
    words, counts = merge_columns(columns)
    return _write(_totals(totals), words, counts)


def to_dict(packed: bytes, top_n: int = 10) -> dict[str, Any]:
    """`Summary.to_dict(top_n)` of the packed summary, without unpacking its words."""
    totals, words, counts = _read(packed)
    summary = Summary.from_state(totals).to_dict(top_n)
    summary["unique_words"] = len(words)
    summary["top_words"] = [[word, n] for word, n in top_of(words, counts, top_n)]
    return summary


def _totals(summary: Summary) -> dict[str, Any]:
    return summary.without_words().to_state()


def _write(totals: dict[str, Any], words: pa.Array, counts: pa.Array) -> bytes:
    schema = _SCHEMA.with_metadata({_TOTALS_KEY: orjson.dumps(totals)})
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, schema, options=_COMPRESSED) as writer:
        writer.write_batch(pa.record_batch([words, counts], schema=schema))
    return bytes(sink.getvalue().to_pybytes())


def _read(packed: bytes) -> tuple[dict[str, Any], pa.Array, pa.Array]:
    reader = ipc.open_stream(pa.py_buffer(packed))
    totals: dict[str, Any] = orjson.loads(reader.schema.metadata[_TOTALS_KEY])
    table = reader.read_all()
    return (
        totals,
        table.column("word").combine_chunks(),
        table.column("count").combine_chunks(),
    )
