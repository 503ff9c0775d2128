import re
from typing import Final

import orjson

from serve_app.core.records.base import Record, RecordMaker

_BOM: Final = b"\xef\xbb\xbf"
_CONTENT: Final = re.compile(rb"[^\s]")  # the search skips blanks in C, a byte at a time


class NdjsonParser:
    """One JSON object per line; blank lines are not records, a bad line is one error record."""

    def __init__(self, maker: RecordMaker, *, line: int = 1) -> None:
        """`line`: the number of the first line fed, for a parser that starts mid-file."""
        self._maker = maker
        self._limit = maker.options.max_record_bytes
        self._head = bytearray()  # the partial last line
        self._head_size = 0  # its length, also while its bytes are being discarded
        self._discarding = False
        self._line = line - 1  # lines completed so far

    @property
    def buffered_bytes(self) -> int:
        return len(self._head)

    @property
    def next_line(self) -> int | None:
        """The number of the next line when nothing of it has been fed yet, else None."""
        return None if self._head_size or self._discarding else self._line + 1

    def feed(self, data: bytes) -> list[Record]:
        out: list[Record] = []
        if b"\n" not in data:
            self._hold(data)
            return out
        if b"\n\n" in data or data.count(b"\n") * 8 > len(data):
            # Blank lines, or lines too short to be records: skip the blank ones in C.
            return self._feed_sparse(data)
        return self._feed_lines(data)

    def _feed_lines(self, data: bytes) -> list[Record]:
        out: list[Record] = []
        lines = data.split(b"\n")
        tail = lines.pop()
        if self._discarding:
            self._line += 1
            out.append(self._maker.too_large(self._head_size + len(lines[0]), f"line {self._line}"))
            del lines[0]
            self._discarding = False
        elif self._head:
            self._head += lines[0]
            lines[0] = bytes(self._head)
        self._head = bytearray()
        self._head_size = 0
        self._parse(lines, out)
        self._hold(tail)
        return out

    def _feed_sparse(self, data: bytes) -> list[Record]:
        """feed() for data with blank lines: only lines with content cost Python time, so a
        gigabyte of blank lines costs a few scans in C, not a billion loop turns."""
        first_end = data.index(b"\n")
        last_end = data.rindex(b"\n")
        out = self._feed_lines(data[: first_end + 1])  # completes the line held from before
        done = self._line  # lines completed up to `at`
        at = first_end + 1
        while match := _CONTENT.search(data, at, last_end):
            start = data.rfind(b"\n", at, match.start()) + 1 or at
            end = data.index(b"\n", match.start())
            self._line = done + data.count(b"\n", at, start)
            self._parse([data[start:end]], out)
            done = self._line
            at = end + 1
        self._line = done + data.count(b"\n", at, last_end + 1)
        self._hold(data[last_end + 1 :])
        return out

    def close(self) -> list[Record]:
        out: list[Record] = []
        if self._discarding:
            self._line += 1
            where = f"line {self._line}"
            out.append(self._maker.too_large(self._head_size, where, truncated=True))
        elif self._head:
            # A last line without its newline is complete; if it was cut short, it is bad JSON.
            self._parse([bytes(self._head)], out)
        self._head = bytearray()
        self._head_size = 0
        self._discarding = False
        return out

    def _hold(self, piece: bytes) -> None:
        self._head_size += len(piece)
        if self._discarding:
            return
        if self._head_size > self._limit:
            self._discarding = True
            self._head = bytearray()
        else:
            self._head += piece

    def _parse(self, lines: list[bytes], out: list[Record]) -> None:
        maker = self._maker
        valid = maker.valid
        loads = orjson.loads
        limit = self._limit
        n = self._line
        if n == 0 and lines and lines[0].startswith(_BOM):
            lines[0] = lines[0][len(_BOM) :]
        for line in lines:
            n += 1
            size = len(line)
            if size > limit:
                out.append(maker.too_large(size, f"line {n}"))
                continue
            try:
                obj = loads(line)
            except orjson.JSONDecodeError as exc:
                # Checked only here: the blank line is rare, the good line is the hot path.
                if not line or line.isspace():
                    continue
                out.append(maker.from_refused(line, exc, f"line {n}"))
                continue
            out.append(valid(obj, size) or maker.invalid(obj, size, f"line {n}"))
        self._line = n
