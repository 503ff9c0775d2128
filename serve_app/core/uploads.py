"""The replica's side of an upload: frames of raw bytes in, NDJSON lines and a partial summary out.

The ingress only frames (`records.framing`); here each frame is parsed (orjson), its records
cleaned and counted by `pipeline.analyze_records`, and the lines encoded, so the ingress writes
bytes. The ingress does not know how many records a frame holds until it is parsed, so every
line starts with `{"index":0,` and `number_lines` gives the real indices, in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from serve_app.core.pipeline import BulkOptions, analyze_records, to_ndjson
from serve_app.core.records import ParseOptions, Record, UploadError
from serve_app.core.records.base import BufferedRecordParser
from serve_app.core.records.csvtable import CsvParser
from serve_app.core.records.framing import Frame, placeholder_maker
from serve_app.core.records.jsonarray import JsonParser
from serve_app.core.records.ndjson import NdjsonParser

_HEAD: Final = b'{"index":0,'
_NEXT_HEAD: Final = b"\n" + _HEAD


@dataclass(frozen=True, slots=True)
class ChunkAnswer:
    lines: bytes  # one NDJSON line per record, index 0 in each; b"" when only the summary counts
    summary: dict[str, Any]  # Summary.to_state() of the chunk's records
    failed_docs: tuple[int, ...] = ()  # documents that end here: drop their later frames
    upload_error: str | None = None  # the whole upload is unusable from here on
    node_id: str = ""


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
    records: list[Record] = []
    failed: list[int] = []
    upload_error = None
    for frame in frames:
        if frame.doc in failed:
            continue
        try:
            got, ends = read_frame(frame, parse)
        except UploadError as exc:
            upload_error = str(exc)
            break
        records += got
        if ends:
            failed.append(frame.doc)
    analysis = analyze_records(records, options)
    summary_only = options.include is not None and not options.include
    lines = b"" if summary_only else to_ndjson(analysis.rows)
    return ChunkAnswer(lines, analysis.summary.to_state(), tuple(failed), upload_error)


def number_lines(lines: bytes, first: int) -> tuple[bytes, int]:
    """The lines with indices first, first + 1, ..., and the index after the last."""
    if not lines:
        return lines, first
    tails = lines[len(_HEAD) :].split(_NEXT_HEAD)  # no raw newline inside a JSON line
    end = first + len(tails)
    heads = [b'{"index":%d,' % first, *(b'\n{"index":%d,' % i for i in range(first + 1, end))]
    return b"".join([part for pair in zip(heads, tails, strict=True) for part in pair]), end
