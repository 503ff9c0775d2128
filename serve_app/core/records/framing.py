"""Framing: cut an upload at record or file boundaries without decoding a single record.

The ingress frames; the replicas parse (`frames.read_frame`). A Frame is a run of whole
records of one document (the body, or one multipart file) with what a parser needs to start
there: the format, the file name, the number of its first line (NDJSON, CSV) or its byte
offset (JSON), the CSV header. Parsed frame by frame, a document gives exactly the records
the sequential parser gives (tests/core/records/test_framing.py checks it).

Finding boundaries costs regex scans in C: NDJSON at newlines, CSV at newlines outside
quotes, JSON at commas of the top-level array (a document that is not an array is one
frame). A record too large to frame (over `max_record_bytes`) is left to the sequential
parser, in the ingress, for the rest of its document: that parser drops its bytes and
turns it into one error record, in bounded memory; framing goes on once that record ends.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Protocol

from serve_app.core.records.base import (
    BufferedRecordParser,
    ParseOptions,
    Record,
    RecordMaker,
    UploadError,
)
from serve_app.core.records.csvtable import CsvParser
from serve_app.core.records.formats import Format
from serve_app.core.records.ndjson import NdjsonParser

# Output per inflate step: what a gzip bomb can make us allocate, and work between yields.
_INFLATE_STEP: Final = 256 * 1024
_BLANK: Final = re.compile(rb"\s*+")
# Whole CSV records: newlines outside double quotes end them ("" inside quotes is two quotes).
_CSV_RECORDS: Final = re.compile(rb'(?:(?:[^"\n]++|"[^"]*+")*+\n)*+')
_QUOTE_OR_NEWLINE: Final = re.compile(rb'["\n]')
_CSV_BLANK_LINES: Final = re.compile(rb"(?:\r?\n)*+")


@dataclass(frozen=True, slots=True)
class Frame:
    doc: int  # which document of the upload: 0 for a body, one per multipart file
    source: str | None  # the file name inside multipart, else None
    kind: Format | None  # None: `records` were made in the ingress (errors, oversize records)
    data: bytes = b""
    start: int = 0  # NDJSON, CSV: number of data's first line; JSON: byte offset of data
    first: bool = True  # data starts the document (CSV: holds the header; JSON: its start)
    last: bool = False  # data ends the document: the parser's close() runs after it
    header: bytes | None = None  # CSV, when not first: the file's header record
    records: tuple[Record, ...] = ()

    @property
    def nbytes(self) -> int:
        return len(self.data) + sum(record.size for record in self.records)


def placeholder_maker(options: ParseOptions, source: str | None) -> RecordMaker:
    """Records made before their place in the upload is known: every index is 0, and the
    ingress numbers the lines as it writes them out in order."""
    return RecordMaker(options, source, itertools.repeat(0))


class Framer(Protocol):
    def feed(self, data: bytes) -> list[Frame]: ...

    def close(self) -> list[Frame]: ...

    def steps(self, data: bytes) -> Iterator[list[Frame]]:
        """feed() in bounded steps, for callers that must stay responsive (gzip bombs)."""
        ...

    def flush(self) -> list[Frame]:
        """Frames of every whole record buffered, however few: the upload has stalled."""
        ...


class _DocumentFramer:
    """Shared by the three formats: frame bookkeeping, and the fall-back to the sequential
    parser once a record is too large to frame."""

    kind: Format

    def __init__(self, doc: int, source: str | None, options: ParseOptions, piece: int) -> None:
        self._doc = doc
        self._source = source
        self._options = options
        self._limit = options.max_record_bytes
        self._piece = piece  # cut once this many bytes are buffered
        self._buf = bytearray()
        self._first = True
        self._fallback: BufferedRecordParser | None = None

    def feed(self, data: bytes) -> list[Frame]:
        raise NotImplementedError

    def flush(self) -> list[Frame]:
        out: list[Frame] = []
        if self._fallback is None and (end := self._whole_records_end()):
            self._emit(end, out)
        return out

    def _whole_records_end(self) -> int:
        return 0

    def _emit(self, end: int, out: list[Frame]) -> None:
        raise NotImplementedError

    def steps(self, data: bytes) -> Iterator[list[Frame]]:
        yield self.feed(data)

    def _frame(self, data: bytes, start: int, *, last: bool = False) -> Frame:
        frame = Frame(
            self._doc,
            self._source,
            self.kind,
            data,
            start,
            first=self._first,
            last=last,
            header=None if self._first else self._header(),
        )
        self._first = False
        return frame

    def _header(self) -> bytes | None:
        return None

    def _records(self, records: list[Record]) -> list[Frame]:
        if not records:
            return []
        return [Frame(self._doc, self._source, None, records=tuple(records))]

    def _fall_back(self, parser: BufferedRecordParser) -> list[Frame]:
        """Parse here, starting with what is buffered, until the record over the limit ends."""
        self._fallback = parser
        data, self._buf = bytes(self._buf), bytearray()
        return self._records(parser.feed(data))

    def _maker(self) -> RecordMaker:
        return placeholder_maker(self._options, self._source)


class NdjsonFramer(_DocumentFramer):
    kind: Format = "ndjson"

    def __init__(self, doc: int, source: str | None, options: ParseOptions, piece: int) -> None:
        super().__init__(doc, source, options, piece)
        self._line = 1  # number of the line at _buf[0]

    def feed(self, data: bytes) -> list[Frame]:
        if isinstance(self._fallback, NdjsonParser):
            out = self._records(self._fallback.feed(data))
            if (line := self._fallback.next_line) is not None:
                # The long line has ended: back to framing.
                self._line = line
                self._fallback = None
            return out
        self._buf += data
        out = []
        while len(self._buf) >= self._piece:
            end = self._buf.find(b"\n", self._piece - 1) + 1
            if not end:
                break
            self._emit(end, out)
        if len(self._buf) > self._limit:
            if end := self._buf.rfind(b"\n") + 1:
                self._emit(end, out)
            if len(self._buf) > self._limit:
                # One line over the limit: the parser drops its bytes as they come.
                out += self._fall_back(NdjsonParser(self._maker(), line=self._line))
        return out

    def close(self) -> list[Frame]:
        if self._fallback is not None:
            return self._records(self._fallback.close())
        out: list[Frame] = []
        if self._buf:
            out.append(self._frame(bytes(self._buf), self._line, last=True))
            self._buf = bytearray()
        return out

    def _whole_records_end(self) -> int:
        return self._buf.rfind(b"\n") + 1

    def _emit(self, end: int, out: list[Frame]) -> None:
        lines = self._buf.count(b"\n", 0, end)
        if _BLANK.fullmatch(self._buf, 0, end) is None:
            out.append(self._frame(bytes(self._buf[:end]), self._line))
        del self._buf[:end]
        self._line += lines


class CsvFramer(_DocumentFramer):
    kind: Format = "csv"

    def __init__(self, doc: int, source: str | None, options: ParseOptions, piece: int) -> None:
        super().__init__(doc, source, options, piece)
        self._line = 1  # number of the line at _buf[0]
        self._header_record: bytes | None = None
        # Where the search for the end of the first record got to, and whether an odd number
        # of quotes came before: a long record is scanned once, not once per feed.
        self._scanned = 0
        self._odd = False

    def feed(self, data: bytes) -> list[Frame]:
        if isinstance(self._fallback, CsvParser):
            out = self._records(self._fallback.feed(data))
            at = self._fallback.between_records()
            if at is not None and self._header_record is not None:
                # Past the record over the limit: back to framing.
                self._line, held = at
                self._buf = bytearray(held)
                self._fallback = None
                self._first = False
                self._scanned = 0
                self._odd = False
            return out
        self._buf += data
        out = []
        if self._header_record is None and not self._read_header():
            if len(self._buf) > self._limit:
                # The parser says what is wrong: a header over the limit.
                return self._fall_back(CsvParser(self._maker(), line=self._line))
            return out
        while len(self._buf) >= self._piece:
            # Whole records up to about a piece, or the one record that is longer.
            end = _match_end(_CSV_RECORDS, self._buf, 0, self._piece) or self._first_record_end()
            if not end:
                break
            self._emit(end, out)
        if len(self._buf) > self._limit:
            if end := _match_end(_CSV_RECORDS, self._buf, 0):
                self._emit(end, out)
            if len(self._buf) > self._limit:
                # A record over the limit, or an unterminated quote: the parser drops its
                # bytes while it looks for the record's end.
                header = None if self._first else self._header_record
                parser = CsvParser(self._maker(), line=self._line, header=header)
                out += self._fall_back(parser)
        return out

    def close(self) -> list[Frame]:
        if self._fallback is not None:
            return self._records(self._fallback.close())
        out: list[Frame] = []
        if self._buf or not self._first:
            out.append(self._frame(bytes(self._buf), self._line, last=True))
            self._buf = bytearray()
        return out

    def _header(self) -> bytes | None:
        return self._header_record

    def _whole_records_end(self) -> int:
        return 0 if self._header_record is None else _match_end(_CSV_RECORDS, self._buf, 0)

    def _read_header(self) -> bool:
        """Find the header record (the first that is not blank); False: not all here yet."""
        buf = self._buf
        if blank_end := _match_end(_CSV_BLANK_LINES, buf, 0):
            # Blank lines before the header are not records: count them, keep nothing.
            self._line += buf.count(b"\n", 0, blank_end)
            del buf[:blank_end]
            self._scanned = 0
        end = self._first_record_end()
        if not end:
            return False
        self._header_record = bytes(buf[: end - 1])
        return True

    def _first_record_end(self) -> int:
        """Where the record at the start of the buffer ends (after its newline), or 0."""
        buf = self._buf
        odd = self._odd
        for found in _QUOTE_OR_NEWLINE.finditer(buf, self._scanned):
            if found[0] == b'"':
                odd = not odd
            elif not odd:
                self._scanned = 0
                self._odd = False
                return found.end()
        self._scanned = len(buf)
        self._odd = odd
        return 0

    def _emit(self, end: int, out: list[Frame]) -> None:
        lines = self._buf.count(b"\n", 0, end)
        out.append(self._frame(bytes(self._buf[:end]), self._line))
        del self._buf[:end]
        self._line += lines
        self._scanned = 0
        self._odd = False


class GzipFramer:
    """Inflates gzip (one or more members) into another framer, a bounded step at a time."""

    def __init__(self, inner: Framer, max_decompressed_bytes: int) -> None:
        self._inner = inner
        self._limit = max_decompressed_bytes
        self._inflate = zlib.decompressobj(wbits=31)
        self._in_member = False
        self._total = 0

    def feed(self, data: bytes) -> list[Frame]:
        return [frame for step in self.steps(data) for frame in step]

    def steps(self, data: bytes) -> Iterator[list[Frame]]:
        more_output = False  # the last call filled _INFLATE_STEP: zlib may hold more
        while data or more_output:
            if data:
                self._in_member = True
            try:
                piece = self._inflate.decompress(data, _INFLATE_STEP)
            except zlib.error as exc:
                raise UploadError(f"invalid gzip data: {exc}") from None
            self._total += len(piece)
            if self._total > self._limit:
                raise UploadError(f"decompressed data is over the limit of {self._limit} bytes")
            yield self._inner.feed(piece) if piece else []
            if self._inflate.eof:
                # Another member may follow (`cat a.gz b.gz` is valid gzip).
                data = self._inflate.unused_data
                self._inflate = zlib.decompressobj(wbits=31)
                self._in_member = False
                more_output = False
            else:
                data = self._inflate.unconsumed_tail
                more_output = len(piece) == _INFLATE_STEP

    def flush(self) -> list[Frame]:
        return self._inner.flush()

    def close(self) -> list[Frame]:
        if self._in_member:
            raise UploadError("gzip data is truncated")
        return self._inner.close()


def _match_end(
    pattern: re.Pattern[bytes], data: bytes | bytearray, pos: int, endpos: int | None = None
) -> int:
    match = pattern.match(data, pos) if endpos is None else pattern.match(data, pos, endpos)
    assert match is not None  # every pattern here can match the empty string
    return match.end()
