"""JSON framing: a top-level array is cut after its top-level commas; anything else is one frame.

A document smaller than a frame is not scanned at all: it goes whole, as does an object (up to
the record limit, past which the sequential parser drops it in the ingress).

The scan tracks only strings and bracket depth, with the regexes `JsonParser` scans with, so a
cut lands where the sequential parser would be between two values. Whether the values are good
JSON is left to the parser on a replica: after a syntax error it parses nothing more of the
document (`JsonParser.failed`), and the frames that follow are dropped.
"""

from __future__ import annotations

from typing import Final

from serve_app.core.records.base import ParseOptions
from serve_app.core.records.formats import Format
from serve_app.core.records.framing import Frame, _DocumentFramer, _match_end
from serve_app.core.records.jsonarray import (
    _BOM,
    _GAP,
    _INSIDE,
    _SPACE,
    _STRING_REST,
    JsonParser,
)
from serve_app.core.records.jsonarray import _CLOSES as _CLOSES
from serve_app.core.records.jsonarray import _OPENS as _OPENS

_QUOTE, _OPEN_OBJECT, _OPEN_ARRAY, _CLOSE_OBJECT, _CLOSE_ARRAY, _COMMA = b'"{[}],'
_START, _ARRAY, _OBJECT, _DONE = range(4)
_TRAILING: Final = "invalid JSON: unexpected data after the end of the JSON document"


class JsonFramer(_DocumentFramer):
    kind: Format = "json"

    def __init__(self, doc: int, source: str | None, options: ParseOptions, piece: int) -> None:
        super().__init__(doc, source, options, piece)
        self._offset = 0  # document offset of _buf[0]
        self._pos = 0  # next byte of _buf to scan
        self._state = _START
        self._depth = 0
        self._in_string = False
        self._comma = 0  # document offset just after the last top-level ','
        self._cuts: list[int] = []  # document offsets to cut frames at, a piece or more apart
        self._quiet = False  # after the end: nothing more to say (a reported error, or a bad end)

    def feed(self, data: bytes) -> list[Frame]:
        if self._fallback is not None:
            out = self._records(self._fallback.feed(data))
            if isinstance(self._fallback, JsonParser) and (at := self._fallback.between_values()):
                self._resume(*at)  # past the value over the limit: back to framing
            return out
        if self._state == _DONE:
            return self._trailing(data)
        self._buf += data
        if self._state == _START:
            self._begin()
        if self._state == _ARRAY and len(self._buf) >= self._piece:
            return self._cut()
        if len(self._buf) > self._limit:
            # Not cut, and larger than a record may be: the parser drops the bytes of the
            # value over the limit (or of a gap of that many blanks) as it finds its end.
            parser = JsonParser(self._maker(), offset=self._offset, in_array=not self._first)
            return self._fall_back(parser)
        return []  # a document smaller than a piece, or an object, goes whole

    def _cut(self) -> list[Frame]:
        self._scan()
        out: list[Frame] = []
        for cut in self._cuts:
            self._emit(cut, out)
        self._cuts = []
        if self._state == _DONE:
            end = self._pos
            tail = bytes(self._buf[end:])
            out.append(self._frame(bytes(self._buf[:end]), self._offset, last=True))
            self._offset += end
            self._buf = bytearray()
            return out + self._trailing(tail)
        if self._offset + len(self._buf) - max(self._comma, self._offset) > self._limit:
            self._emit(self._comma, out)
            parser = JsonParser(self._maker(), offset=self._offset, in_array=not self._first)
            out += self._fall_back(parser)
        return out

    def close(self) -> list[Frame]:
        if self._fallback is not None:
            return self._records(self._fallback.close())
        if self._state in (_START, _DONE):
            return []  # blank, or complete: nothing left to say
        frame = self._frame(bytes(self._buf), self._offset, last=True)
        self._buf = bytearray()
        self._state = _DONE
        self._quiet = True
        return [frame]

    def flush(self) -> list[Frame]:
        if self._fallback is not None or self._state != _ARRAY:
            return []
        out = self._cut()
        if self._state == _ARRAY:
            self._emit(self._comma, out)
        return out

    def _resume(self, offset: int, held: bytes) -> None:
        self._fallback = None
        self._buf = bytearray(held)
        self._offset = self._comma = offset
        self._pos = 0
        self._state = _ARRAY
        self._depth = 1
        self._in_string = False
        self._first = False

    def _emit(self, cut: int, out: list[Frame]) -> None:
        """A frame of the buffer up to document offset `cut`."""
        shift = cut - self._offset
        if shift <= 0:
            return
        out.append(self._frame(bytes(self._buf[:shift]), self._offset))
        del self._buf[:shift]
        self._offset = cut
        self._pos -= shift

    def _trailing(self, data: bytes) -> list[Frame]:
        out: list[Frame] = []
        at = _match_end(_SPACE, data, 0)
        if not self._quiet and at < len(data):
            self._quiet = True
            message = f"byte {self._offset + at}: {_TRAILING}; the rest of the JSON was not parsed"
            out = self._records([self._maker().error(message, 0)])
        self._offset += len(data)
        return out

    def _begin(self) -> None:
        buf = self._buf
        pos = _match_end(_SPACE, buf, self._pos)
        if self._offset == 0 and buf[:1] == _BOM[:1]:
            if len(buf) < 3 and _BOM.startswith(buf):
                return  # wait for the rest of the byte order mark
            if buf.startswith(_BOM):
                pos = _match_end(_SPACE, buf, 3)
        if pos == len(buf):
            if buf[:1] != _BOM[:1]:
                # Blanks before the document are nothing: keep none of them.
                self._offset += len(buf)
                self._buf = bytearray()
                self._pos = 0
            else:
                self._pos = pos
            return
        c = buf[pos]
        if c == _OPEN_ARRAY or c == _OPEN_OBJECT:
            self._state = _ARRAY if c == _OPEN_ARRAY else _OBJECT
            self._depth = 1
            self._pos = pos + 1
            return
        # Not a document this service reads: the parser raises the error that says so.
        JsonParser(self._maker(), offset=self._offset).feed(bytes(buf))
        raise AssertionError("JsonParser accepted a document that starts with neither { nor [")

    def _scan(self) -> None:
        buf = self._buf
        n = len(buf)
        pos = self._pos
        depth = self._depth
        base = 1 if self._state == _ARRAY else 0
        while pos < n:
            if self._in_string:
                pos = _match_end(_STRING_REST, buf, pos)
                if pos == n or buf[pos] != _QUOTE:
                    break  # the string goes on in the next piece
                self._in_string = False
                pos += 1
            elif depth > base:
                pos = _match_end(_INSIDE, buf, pos)
                if pos == n:
                    break
                c = buf[pos]
                pos += 1
                if c == _QUOTE:
                    self._in_string = True
                elif c == _OPEN_OBJECT or c == _OPEN_ARRAY:
                    run = _match_end(_OPENS, buf, pos)
                    depth += 1 + run - pos
                    pos = run
                else:
                    run = min(_match_end(_CLOSES, buf, pos) - pos, depth - base - 1)
                    depth -= 1 + run
                    pos += run
                    if depth == 0:
                        self._state = _DONE
                        break
            else:
                pos = _match_end(_GAP, buf, pos)
                if pos == n:
                    break
                c = buf[pos]
                pos += 1
                if c == _QUOTE:
                    self._in_string = True
                elif c == _OPEN_OBJECT or c == _OPEN_ARRAY:
                    depth += 1
                elif c == _COMMA:
                    self._comma = self._offset + pos
                    last_cut = self._cuts[-1] if self._cuts else self._offset
                    if self._comma - last_cut >= self._piece:
                        self._cuts.append(self._comma)
                else:
                    # ']' ends the array; '}' here is a syntax error that ends the parsing.
                    self._state = _DONE
                    self._quiet = c == _CLOSE_OBJECT
                    break
        self._pos = pos
        self._depth = depth
