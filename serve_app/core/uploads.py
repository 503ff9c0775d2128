"""The replica's side of an upload: frames of raw bytes in, NDJSON lines and a partial summary out.

The ingress only frames (`records.framing`); here each frame is parsed (orjson), its records
cleaned and counted by `pipeline.analyze_records`, and the lines encoded, so the ingress writes
bytes. The ingress does not know how many records a frame holds until it is parsed, so every
line starts with `{"index":0,` and `number_lines` gives the real indices, in input order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from serve_app.core import cleaning, packed_summary
from serve_app.core.analysis.dedup import SignatureState, Words
from serve_app.core.pipeline import BulkOptions, analyze_records, to_ndjson
from serve_app.core.records import ParseOptions, Record, UploadError
from serve_app.core.records.base import BufferedRecordParser
from serve_app.core.records.csvtable import CsvParser
from serve_app.core.records.framing import Frame, placeholder_maker
from serve_app.core.records.jsonarray import JsonParser, whole_object
from serve_app.core.records.ndjson import NdjsonParser

_HEAD: Final = b'{"index":0,'
_NEXT_HEAD: Final = b"\n" + _HEAD
_AS_IS: Final = cleaning.CleanOptions(preset="minimal")


@dataclass(frozen=True, slots=True)
class ChunkAnswer:
    lines: bytes  # one NDJSON line per record, index 0 in each; b"" when only the summary counts
    # The chunk's partial summary, packed (`packed_summary`): the ingress passes it on to be
    # merged by replicas and reads only its totals, so no word of it becomes a Python object
    # there (merging word dicts was most of the ingress's CPU in an upload).
    summary: bytes
    failed_docs: tuple[int, ...] = ()  # documents that end here: drop their later frames
    upload_error: str | None = None  # the whole upload is unusable from here on
    node_id: str = ""
    # Duplicates (BulkOptions.defer_duplicates): per record, for the ingress's index.
    signatures: list[SignatureState] | None = None
    words: list[Words] | None = None


def read_frame(frame: Frame, options: ParseOptions) -> tuple[list[Record], bool]:
    """The frame's records, and whether its document ends here (nothing after it counts).

    Raises UploadError for a body that is unusable; inside multipart that is one error record
    for the file.
    """
    if frame.kind is None:
        return list(frame.records), False
    maker = placeholder_maker(options, frame.source)
    parser: BufferedRecordParser
    if frame.kind == "ndjson":
        parser = NdjsonParser(maker, line=frame.start)
    elif frame.kind == "csv":
        parser = CsvParser(maker, line=frame.start, header=frame.header)
    else:
        if frame.first and frame.last and (whole := whole_object(frame.data, maker)) is not None:
            return whole, False  # a whole file of one record object (a review per file)
        parser = JsonParser(maker, offset=frame.start, in_array=not frame.first)
    try:
        records = parser.feed(frame.data)
        if frame.last:
            records += parser.close()
    except UploadError as exc:
        if frame.source is None:
            raise
        return [maker.error(f"{exc}; the rest of this file was skipped", 0)], True
    return records, isinstance(parser, JsonParser) and parser.failed


def analyze_chunk(
    frames: Sequence[Frame], parse: ParseOptions, options: BulkOptions
) -> ChunkAnswer:
    """Parse, clean and count a chunk of frames: the work of one call to a replica."""
    records, failed, upload_error = _read_frames(frames, parse)
    return _answer(records, options, failed, upload_error)


@dataclass(frozen=True, slots=True)
class CleanedChunk:
    """Half the work of a chunk, for the two-hop path (`clean_chunk`, then `count_chunk`)."""

    records: list[Record]  # texts cleaned
    failed_docs: tuple[int, ...]
    upload_error: str | None


def clean_chunk(
    frames: Sequence[Frame], parse: ParseOptions, options: cleaning.CleanOptions
) -> CleanedChunk:
    """Parse and clean a chunk of frames: the first of two hops."""
    records, failed, upload_error = _read_frames(frames, parse)
    good = [r for r in records if r.error is None and r.text is not None]
    cleaned = iter(cleaning.clean_many([r.text for r in good], options))  # type: ignore[misc]
    records = [
        dataclasses.replace(r, text=next(cleaned)) if r.error is None and r.text is not None else r
        for r in records
    ]
    return CleanedChunk(records, failed, upload_error)


def count_chunk(chunk: CleanedChunk, options: BulkOptions) -> ChunkAnswer:
    """Count a chunk that `clean_chunk` cleaned: the second of two hops. Clean text has no
    newline and no blank at either end, so the minimal preset leaves it as it is."""
    counting_only = dataclasses.replace(options, clean=_AS_IS)
    return _answer(chunk.records, counting_only, chunk.failed_docs, chunk.upload_error)


def _read_frames(
    frames: Sequence[Frame], parse: ParseOptions
) -> tuple[list[Record], tuple[int, ...], str | None]:
    records: list[Record] = []
    failed: list[int] = []
    for frame in frames:
        if frame.doc in failed:
            continue
        try:
            got, ends = read_frame(frame, parse)
        except UploadError as exc:
            return records, tuple(failed), str(exc)
        records += got
        if ends:
            failed.append(frame.doc)
    return records, tuple(failed), None


def _answer(
    records: list[Record],
    options: BulkOptions,
    failed: tuple[int, ...],
    upload_error: str | None,
) -> ChunkAnswer:
    analysis = analyze_records(records, options, json_counts=True)
    summary_only = options.include is not None and not options.include
    lines = b"" if summary_only else to_ndjson(analysis.rows)
    return ChunkAnswer(
        lines,
        packed_summary.pack(analysis.summary),
        failed,
        upload_error,
        signatures=analysis.signatures,
        words=analysis.words,
    )


# Below this many bytes, a chunk's first line says its lines are short (reviews): one split
# in C is cheaper than a find per line. Longer ones (a whole file's word counts per line) are
# cut as views, so the lines are copied once, by the join.
_SHORT_LINE: Final = 2048


def number_lines(lines: bytes, first: int) -> tuple[bytes, int]:
    """The lines with indices first, first + 1, ..., and the index after the last."""
    if not lines:
        return lines, first
    view = memoryview(lines)
    start = len(_HEAD)
    end = _next_head(lines, start)
    if 0 <= end < _SHORT_LINE:
        tails: list[bytes | memoryview] = list(lines.split(_NEXT_HEAD))
        tails[0] = view[start:end]
        stop = first + len(tails)
        heads = [b'{"index":%d,' % first, *(b'\n{"index":%d,' % i for i in range(first + 1, stop))]
        return b"".join([part for pair in zip(heads, tails, strict=True) for part in pair]), stop
    pieces: list[bytes | memoryview] = [b'{"index":%d,' % first]
    index = first
    while end >= 0:
        index += 1
        pieces += (view[start:end], b'\n{"index":%d,' % index)
        start = end + len(_NEXT_HEAD)
        end = _next_head(lines, start)
    pieces.append(view[start:])
    return b"".join(pieces), index + 1


def _next_head(lines: bytes, start: int) -> int:
    """`lines.find(_NEXT_HEAD, start)`, newline by newline. A replica's lines hold no raw
    newline (JSON escapes it), so every newline but the last is followed by a head, and a
    one-byte search runs at memchr's speed; the 12-byte head's last byte, ",", is everywhere in
    JSON, so searching for the head skips little: 0.30 against 0.04 ms per MB of seed-mode
    lines. A newline not followed by a head is passed over, as the search for both would."""
    end = lines.find(b"\n", start)
    while end >= 0 and not lines.startswith(_HEAD, end + 1):
        end = lines.find(b"\n", end + 1)
    return end
