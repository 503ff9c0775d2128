"""CSV with a header row; quoted fields may hold commas and newlines.

Lines are split as bytes and grouped into records by counting quotes (a record ends at a newline
outside quotes), so each record is decoded on its own: bad UTF-8 costs one record, not the file.
The csv module then parses whole records, many per call.
"""

import csv
from typing import Final

from serve_app.core.records.base import Record, RecordMaker, UploadError

_BOM: Final = "\ufeff"
_Row = list[str] | str  # the fields, or what is wrong with the record


class CsvParser:
    def __init__(self, maker: RecordMaker, *, line: int = 1, header: bytes | None = None) -> None:
        """For a parser that starts mid-file: `line`, the number of the first line fed, and
        `header`, the file's header record (already read once)."""
        self._maker = maker
        self._limit = maker.options.max_record_bytes
        # The csv module refuses fields over 128 KiB by default; the limit is process-wide.
        if csv.field_size_limit() < self._limit:
            csv.field_size_limit(self._limit)
        self._head = bytearray()  # the partial last line
        self._head_quoted = False  # it has a quote (kept to not rescan a long partial line)
        self._lines: list[bytes] = []  # complete lines of a record still inside quotes
        self._size = 0  # bytes of that record so far, newlines included
        self._odd = False  # an odd number of quotes so far: inside a quoted field
        self._discarding = False
        self._line = 0  # lines completed so far
        self._first_line = 1  # where the current record starts
        self._header: list[str] | None = None
        self._text_column = 0
        self._id_column: int | None = None
        if header is not None:
            self._emit([(0, header)], [])
        self._line = line - 1

    def between_records(self) -> tuple[int, bytes] | None:
        """Past the header, with no record begun but the partial line held: the number of
        that line and its bytes. None at any other point."""
        if self._header is None or self._lines or self._discarding:
            return None
        return self._line + 1, bytes(self._head)

    @property
    def buffered_bytes(self) -> int:
        return len(self._head) + sum(map(len, self._lines))

    def feed(self, data: bytes) -> list[Record]:
        plain = not self._head_quoted and b'"' not in data
        lines = data.split(b"\n")
        tail = lines.pop()
        if lines and self._head:
            self._head += lines[0]
            lines[0] = bytes(self._head)
            self._head = bytearray()
        if lines:
            self._head_quoted = False
        ready: list[tuple[int, bytes | int]] = []
        if plain and not self._lines and not self._discarding:
            self._take_plain(lines, ready)
        else:
            for line in lines:
                self._take(line, ready)
        self._hold(tail)
        out: list[Record] = []
        self._emit(ready, out)
        return out

    def close(self) -> list[Record]:
        ready: list[tuple[int, bytes | int]] = []
        unterminated = bool(self._head)
        if self._head:
            self._take(bytes(self._head), ready)  # a last line without its newline
            self._head = bytearray()
        out: list[Record] = []
        self._emit(ready, out)
        if self._discarding or self._lines:
            where = f"line {self._first_line}"
            size = self._size - 1 if unterminated else self._size
            if self._discarding:
                out.append(self._maker.too_large(size, where, truncated=True))
            else:
                message = f"{where}: unterminated quoted field (the upload ended inside it)"
                out.append(self._maker.error(message, size))
            self._lines = []
            self._discarding = False
        return out

    def _take_plain(self, lines: list[bytes], ready: list[tuple[int, bytes | int]]) -> None:
        """The common case, no quotes in the chunk: every line is a record."""
        limit = self._limit
        n = self._line
        for line in lines:
            n += 1
            ready.append((n, line if len(line) <= limit else len(line)))
        self._line = n

    def _take(self, line: bytes, ready: list[tuple[int, bytes | int]]) -> None:
        self._line += 1
        odd = (line.count(b'"') & 1) == 1
        if not self._lines and not self._discarding and not odd:
            ready.append((self._line, line if len(line) <= self._limit else len(line)))
            return
        if not self._lines and not self._discarding:
            self._first_line = self._line
            self._size = 0
        self._size += len(line) + 1
        self._odd ^= odd
        if self._discarding:
            pass
        elif self._size - 1 > self._limit:
            self._discarding = True
            self._lines = []
        else:
            self._lines.append(line)
        if not self._odd:
            if self._discarding:
                ready.append((self._first_line, self._size - 1))
                self._discarding = False
            else:
                ready.append((self._first_line, b"\n".join(self._lines)))
                self._lines = []

    def _hold(self, piece: bytes) -> None:
        self._head += piece
        self._head_quoted = self._head_quoted or b'"' in piece
        pending = len(self._head) + (self._size if self._lines or self._discarding else 0)
        if pending > self._limit and self._head:
            # Too long already: count its quotes (to find where it ends), drop its bytes.
            if not self._lines and not self._discarding:
                self._first_line = self._line + 1
                self._size = 0
            self._discarding = True
            self._lines = []
            self._size += len(self._head)
            self._odd ^= (self._head.count(b'"') & 1) == 1
            self._head = bytearray()
            self._head_quoted = False

    def _emit(self, ready: list[tuple[int, bytes | int]], out: list[Record]) -> None:
        """Records for complete raw records; an int in place of bytes is an oversize record."""
        if self._header is None:
            ready = self._read_header(ready)
            if self._header is None:
                return
        maker = self._maker
        items: list[tuple[int, int, str | None]] = []  # line, size, what is wrong (None: parse)
        texts: list[str] = []
        for line_no, raw in ready:
            if isinstance(raw, int):
                items.append((line_no, raw, f"record is {raw} bytes, limit is {self._limit}"))
                continue
            try:
                texts.append(raw.decode())
            except UnicodeDecodeError as exc:
                items.append((line_no, len(raw), f"invalid UTF-8 at byte {exc.start}"))
                continue
            items.append((line_no, len(raw), None))
        rows = iter(_parse_rows(texts))
        width = len(self._header)
        text_column = self._text_column
        id_column = self._id_column
        for line_no, size, problem in items:
            if problem is not None:
                out.append(maker.error(f"line {line_no}: {problem}", size))
                continue
            row = next(rows)
            if isinstance(row, str):
                out.append(maker.error(f"line {line_no}: malformed CSV: {row}", size))
            elif not row:
                continue  # a blank line is not a record
            elif len(row) != width:
                message = f"line {line_no}: expected {width} fields, got {len(row)}"
                out.append(maker.error(message, size))
            else:
                ident = row[id_column] or None if id_column is not None else None
                out.append(maker.ok(ident, row[text_column], size))

    def _read_header(self, ready: list[tuple[int, bytes | int]]) -> list[tuple[int, bytes | int]]:
        for i, (_, raw) in enumerate(ready):
            if isinstance(raw, int):
                raise UploadError(f"CSV header is over {self._limit} bytes")
            try:
                text = raw.decode().removeprefix(_BOM)
            except UnicodeDecodeError as exc:
                raise UploadError(f"CSV header: invalid UTF-8 at byte {exc.start}") from None
            row = _parse_rows([text])[0]
            if isinstance(row, str):
                raise UploadError(f"CSV header: malformed CSV: {row}")
            if not row:
                continue
            options = self._maker.options
            if options.text_field not in row:
                shown = ", ".join(map(repr, row))
                if len(shown) > 300:
                    shown = shown[:300] + "..."
                raise UploadError(f'CSV has no "{options.text_field}" column; header: {shown}')
            self._header = row
            self._text_column = row.index(options.text_field)
            if options.id_field in row:
                self._id_column = row.index(options.id_field)
            return ready[i + 1 :]
        return []


def _parse_rows(texts: list[str]) -> list[_Row]:
    """One row per text (each text is one whole record), or what is wrong with it."""
    rows: list[_Row] = []
    reader = csv.reader(texts, strict=True)
    try:
        for row in reader:
            rows.append(row)
            if reader.line_num != len(rows):
                break  # quotes the line grouping did not expect: parse record by record
        else:
            return rows
    except csv.Error:
        pass
    rows = []
    for text in texts:
        try:
            parsed = list(csv.reader((text,), strict=True))
        except csv.Error as exc:
            rows.append(str(exc))
            continue
        rows.append(parsed[0] if len(parsed) == 1 else "more than one record on a line")
    return rows
