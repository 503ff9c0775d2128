"""A partial `Summary` packed to be merged far from where it was counted (an upload's chunks).

The totals travel as JSON; the word counts as two Arrow columns (word, count) in
first-occurrence order, in one Arrow IPC stream. Unpacking makes no Python object per word;
the packs are merged in order by `summary_parts` (one hash pass in C++: `dictionary_encode`
numbers the words in the order it first meets them, `bincount` adds their counts), which
equals merging the summaries in order (`Summary.merge`), ties in `top_words` included.
Measured against packing `Summary.to_state()` as JSON and merging Counters: see the commit
that added this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

from serve_app.core.summary import Summary, top_of

__all__ = ["pack", "read_columns", "to_dict", "totals", "unpack", "write_columns"]

_TOTALS_KEY = b"cleanserve.summary"
_SCHEMA = pa.schema([("word", pa.large_string()), ("count", pa.int64())])
# A pack crosses processes (replica -> ingress -> replica, level by level in an upload's merges;
# the object store in a job, where every worker that wrote or read it keeps its pages
# resident), and seed-mode words are long (a Chinese sentence is one word): zstd makes it ~7x
# smaller for ~1 ms per MB of input (400 seed files, 115 MB: 65 -> 9.4 MB of packs, 0.11 s to
# write and 0.05 s to read them all, one process; 4 packs of a job's groups: 28.7 -> 4.0 MB).
_COMPRESSED = ipc.IpcWriteOptions(compression="zstd")


def pack(summary: Summary) -> bytes:
    # Arrow's own columns when it counted the words: no Python object per word
    return write_columns(_SCHEMA, summary, summary.word_columns())


def unpack(packed: bytes) -> Summary:
    summary, (words, counts) = read_columns(packed)
    summary.word_counts.update(dict(zip(words.to_pylist(), counts.to_pylist(), strict=True)))
    return summary


def totals(packed: bytes) -> Summary:
    """The packed summary without its word counts (records, characters, words, analytics):
    read from the stream's schema, so no word is read."""
    return _totals_of(ipc.open_stream(pa.py_buffer(packed)).schema)


def to_dict(packed: bytes, top_n: int = 10) -> dict[str, Any]:
    """`Summary.to_dict(top_n)` of the packed summary, without unpacking its words."""
    totals, (words, counts) = read_columns(packed)
    summary = totals.to_dict(top_n)
    summary["unique_words"] = len(words)
    summary["top_words"] = [[word, n] for word, n in top_of(words, counts, top_n)]
    return summary


def write_columns(schema: pa.Schema, totals: Summary, columns: Sequence[pa.Array]) -> bytes:
    """Every pack's envelope (here and `summary_parts`'): the summary's totals (not its words)
    as JSON in the schema's metadata, and the columns, as one zstd Arrow IPC stream."""
    state = totals.without_words().to_state()
    schema = schema.with_metadata({_TOTALS_KEY: orjson.dumps(state)})
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, schema, options=_COMPRESSED) as writer:
        writer.write_batch(pa.record_batch(list(columns), schema=schema))
    return bytes(sink.getvalue().to_pybytes())


def read_columns(packed: bytes | pa.Buffer) -> tuple[Summary, list[pa.Array]]:
    """What `write_columns` wrote: the totals as a Summary without words, and the columns."""
    reader = ipc.open_stream(pa.py_buffer(packed))
    table = reader.read_all()
    return _totals_of(reader.schema), [column.combine_chunks() for column in table.columns]


def _totals_of(schema: pa.Schema) -> Summary:
    return Summary.from_state(orjson.loads(schema.metadata[_TOTALS_KEY]))
