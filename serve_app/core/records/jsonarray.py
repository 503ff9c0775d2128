"""A top-level JSON array of objects, streamed element by element, or one JSON object.

A byte scanner finds where each top-level value ends (tracking depth and strings with regexes,
so long strings cost C time, not a Python loop per byte); orjson parses each value alone.

A syntax error inside the array cannot be skipped reliably (a broken string or bracket shifts
everything after it), so it becomes one error record and the rest of the JSON is not parsed.
A well-formed value that is not a good record (not an object, no text, bad UTF-8) is an error
record and parsing goes on.
"""

import re
from typing import Final

import orjson

from serve_app.core.records.base import BadJson, Record, RecordMaker, UploadError, second_opinion

# Each regex skips in C to the next byte the scanner must look at.
_GAP: Final = re.compile(rb'(?:[^"\[\]{},]++|"(?:[^"\\]++|\\.)*+")*+', re.S)  # between values
_INSIDE: Final = re.compile(rb'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+', re.S)  # in a value
_OBJECT_END: Final = re.compile(rb"\}[ \t\r\n]*+[,\]]")  # a guess, found fast
_STRING_REST: Final = re.compile(rb'(?:[^"\\]++|\\.)*+', re.S)  # in a string cut by a chunk
_SPACE: Final = re.compile(rb"[ \t\r\n]*+")
_OPENS: Final = re.compile(rb"[\[{]*+")
_CLOSES: Final = re.compile(rb"[\]}]*+")
_BLANKS: Final = b" \t\r\n"
_BOM: Final = b"\xef\xbb\xbf"
_QUOTE, _OPEN_OBJECT, _OPEN_ARRAY, _CLOSE_OBJECT, _CLOSE_ARRAY, _COMMA = b'"{[}],'

_START, _ARRAY, _OBJECT, _DONE, _FAILED = range(5)

_UNEXPECTED_START: Final = {
    ord('"'): "a string",
    ord("t"): "a boolean",
    ord("f"): "a boolean",
    ord("n"): "null",
    **{c: "a number" for c in b"-0123456789"},
}


def whole_object(data: bytes, maker: RecordMaker) -> list[Record] | None:
    """A document read whole that is one good record object (the shape of one review per
    file): its record, as `JsonParser` gives it, without scanning. None for anything else
    (an array, bad JSON, a bad record, too large): then let the parser say what it is."""
    if data.startswith(_BOM):
        data = data[3:]
    body = data.strip(_BLANKS)
    if not body.startswith(b"{") or len(body) > maker.options.max_record_bytes:
        return None
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    record = maker.valid(obj, len(body))
    return None if record is None else [record]


class JsonParser:
    def __init__(self, maker: RecordMaker, *, offset: int = 0, in_array: bool = False) -> None:
        """For a parser that starts mid-document: `offset`, where the first byte fed is in the
        document, and `in_array`, whether that is just after a ',' in the top-level array."""
        self._maker = maker
        self._limit = maker.options.max_record_bytes
        self._buf = bytearray()
        self._offset = 0  # upload offset of _buf[0]
        self._pos = 0  # next byte of _buf to scan
        self._state = _START
        self._depth = 0  # the top-level array is depth 1
        self._in_string = False
        self._start = 0  # upload offset where the current value, or the gap before it, starts
        self._after_value = False  # in the array, a value just ended: ',' or ']' comes next
        self._discarding = False  # the current value is over the limit; its bytes are dropped
        self._values = 0
        self._guess_from = 0  # upload offset to resume the fast path's search from
        self._tail_tried = -1  # upload offset of the object last tried up to the buffer's end
        self._offset = self._start = self._guess_from = offset
        if in_array:
            self._state = _ARRAY
            self._depth = 1
            self._values = 1  # a ',' came before: a value did

    @property
    def buffered_bytes(self) -> int:
        return len(self._buf)

    def between_values(self) -> tuple[int, bytes] | None:
        """Just after a ',' of the top-level array, with nothing of the next value scanned
        but blanks: where the next value's gap starts in the document, and the bytes held
        from there on. None at any other point."""
        if (
            self._state != _ARRAY
            or self._depth != 1
            or self._in_string
            or self._discarding
            or self._after_value
            or not self._values
            or not self._blank(self._pos)
        ):
            return None
        return self._start, bytes(self._buf[self._start - self._offset :])

    @property
    def failed(self) -> bool:
        """A syntax error ended parsing: the rest of the document is not records."""
        return self._state == _FAILED

    def feed(self, data: bytes) -> list[Record]:
        out: list[Record] = []
        if self._state >= _DONE:
            self._trailing(data, out)
            return out
        self._buf += data
        self._scan(out)
        if self._state >= _DONE:
            tail = self._buf[self._pos :]
            self._offset += self._pos
            self._buf = bytearray()
            self._pos = 0
            self._trailing(tail, out)
        else:
            self._trim()
        return out

    def close(self) -> list[Record]:
        out: list[Record] = []
        if self._state in (_ARRAY, _OBJECT):
            end = self._offset + len(self._buf)
            if self._discarding:
                size = end - self._start
                out.append(self._maker.too_large(size, f"byte {self._start}", truncated=True))
            elif self._in_value() or not self._blank(len(self._buf)):
                start, _ = self._strip(self._start - self._offset, len(self._buf))
                message = f"byte {start}: truncated JSON: the upload ended inside this value"
                out.append(self._maker.error(message, end - start))
            else:
                message = f"byte {end}: truncated JSON: the upload ended before the closing ']'"
                out.append(self._maker.error(message, 0))
        self._state = _DONE
        self._buf = bytearray()
        self._pos = 0
        return out

    def _scan(self, out: list[Record]) -> None:
        buf = self._buf
        n = len(buf)
        pos = self._pos
        depth = self._depth
        base = 1 if self._state == _ARRAY else 0
        while pos < n:
            if self._in_string:
                pos = _match_end(_STRING_REST, buf, pos)
                if pos == n or buf[pos] != _QUOTE:
                    break  # the string goes on in the next chunk (pos may be at a backslash)
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
                    # A run of brackets in one regex step: deep nesting costs C time per byte.
                    run = _match_end(_OPENS, buf, pos)
                    depth += 1 + run - pos
                    pos = run
                else:
                    run = min(_match_end(_CLOSES, buf, pos) - pos, depth - base - 1)
                    depth -= 1 + run
                    pos += run
                    if depth == base:
                        self._value(pos, out)
                        if self._state != _ARRAY:
                            if self._state == _OBJECT:
                                self._state = _DONE
                            break
                        self._after_value = True
                        self._start = self._offset + pos
            elif self._state == _ARRAY:
                pos = _match_end(_GAP, buf, pos)
                if pos == n:
                    break
                c = buf[pos]
                if c == _QUOTE:
                    self._in_string = True
                    pos += 1
                elif c == _OPEN_OBJECT or c == _OPEN_ARRAY:
                    if self._after_value or not self._blank(pos):
                        self._fail(pos, "expected ',' or ']' before this value", out)
                        break
                    self._start = self._offset + pos
                    end = self._whole_object(pos, out) if c == _OPEN_OBJECT else 0
                    if end > 0:
                        pos = end
                    elif end < 0:
                        break  # wait at the '{' for the rest of the object
                    else:
                        depth += 1
                        pos += 1
                elif c == _COMMA or c == _CLOSE_ARRAY:
                    if self._after_value:
                        if not self._blank(pos):
                            at = _match_end(_SPACE, buf, self._start - self._offset)
                            self._fail(at, "expected ',' or ']' after a value", out)
                            break
                    elif not self._blank(pos):
                        self._value(pos, out)  # a scalar, which is an error record
                    elif c == _COMMA or self._values:
                        self._fail(pos, "expected a value", out)
                        break
                    if self._state == _FAILED:
                        break
                    self._after_value = False
                    pos += 1
                    self._start = self._offset + pos
                    if c == _CLOSE_ARRAY:
                        self._state = _DONE
                        break
                else:
                    self._fail(pos, "unexpected '}'", out)
                    break
            else:
                pos = self._begin(buf, pos)
                if self._state == _START:
                    break  # only blanks so far
                base = 1 if self._state == _ARRAY else 0
                depth = 1
        self._pos = pos
        self._depth = depth

    def _begin(self, buf: bytearray, pos: int) -> int:
        pos = _match_end(_SPACE, buf, pos)
        if self._offset + pos == 0 and buf[:1] == _BOM[:1]:
            if len(buf) < 3 and _BOM.startswith(buf):
                return pos  # wait for the rest of the byte order mark
            if buf.startswith(_BOM):
                pos = _match_end(_SPACE, buf, 3)
        if pos == len(buf):
            return pos
        c = buf[pos]
        if c == _OPEN_ARRAY:
            self._state = _ARRAY
            self._start = self._offset + pos + 1
        elif c == _OPEN_OBJECT:
            self._state = _OBJECT
            self._start = self._offset + pos
        else:
            got = _UNEXPECTED_START.get(c, "invalid JSON")
            raise UploadError(f"top-level JSON must be an object or an array, got {got}")
        return pos + 1

    def _whole_object(self, pos: int, out: list[Record]) -> int:
        """The fast path: guess where the object at pos ends and let orjson check the guess.

        If buf[pos:end] parses, it is the whole object (a JSON value ends where its braces
        balance): return where scanning goes on. If it does not (a "}," in a string, a nested
        object, bad bytes), return 0 and the scanner takes over. Return -1 to wait for bytes.
        """
        buf = self._buf
        search_from = max(pos + 1, self._guess_from - self._offset)
        guess = _OBJECT_END.search(buf, search_from)
        if guess is None:
            if len(buf) - pos > self._limit:
                return 0  # the scanner drops the bytes of an object over the limit
            # Next time, search only the new bytes (from a '}' that may still match).
            brace = buf.rfind(b"}", search_from)
            self._guess_from = self._offset + (brace if brace >= 0 else len(buf))
            if brace < 0 or not self._blank_from(brace + 1) or self._tail_tried == self._start:
                return -1
            # Maybe the last object, its ',' or ']' not sent yet; worth one parse per object.
            self._tail_tried = self._start
            end = brace + 1
        else:
            end = guess.start() + 1
        if end - pos > self._limit:
            return 0
        try:
            obj = orjson.loads(buf[pos:end])
        except orjson.JSONDecodeError:
            return 0 if guess else -1
        self._values += 1
        maker = self._maker
        size = end - pos
        out.append(maker.valid(obj, size) or maker.invalid(obj, size, f"byte {self._start}"))
        if guess and buf[guess.end() - 1] == _COMMA:
            end = guess.end()  # the comma is taken too: the next value's gap starts after it
            self._after_value = False
        else:
            self._after_value = True
        self._start = self._offset + end
        return end

    def _value(self, end: int, out: list[Record]) -> None:
        """Turn the bytes from self._start to buffer position `end` into a record."""
        maker = self._maker
        self._values += 1
        start = self._start
        if self._discarding:
            self._discarding = False
            out.append(maker.too_large(self._offset + end - start, f"byte {start}"))
            return
        if self._buf[start - self._offset] not in b"{[":
            # A scalar: where its gap was cut into chunks must not change its size or offset.
            start, end = self._strip(start - self._offset, end)
        size = self._offset + end - start
        where = f"byte {start}"
        if size > self._limit:
            out.append(maker.too_large(size, where))
            return
        raw = self._buf[start - self._offset : end]
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            try:
                obj = second_opinion(raw, exc)
            except BadJson as bad:
                if bad.syntax:
                    self._fail_at(start + exc.pos, exc.msg, size, out)
                else:
                    out.append(maker.error(f"{where}: {bad}", size))
                return
            out.append(maker.from_object(obj, size, where))
            return
        out.append(maker.valid(obj, size) or maker.invalid(obj, size, where))

    def _strip(self, start: int, end: int) -> tuple[int, int]:
        """Upload offset of the first non-blank byte in buf[start:end], buffer end of the last."""
        raw = self._buf[start:end]
        start += len(raw) - len(raw.lstrip(_BLANKS))
        end -= len(raw) - len(raw.rstrip(_BLANKS))
        return self._offset + start, end

    def _in_value(self) -> bool:
        return self._depth > (1 if self._state == _ARRAY else 0)

    def _blank(self, end: int) -> bool:
        start = self._start - self._offset
        if self._discarding:
            return False
        return start >= end or _match_end(_SPACE, self._buf, start) >= end

    def _blank_from(self, start: int) -> bool:
        return _match_end(_SPACE, self._buf, start) == len(self._buf)

    def _fail(self, pos: int, what: str, out: list[Record]) -> None:
        self._fail_at(self._offset + pos, what, 0, out)

    def _fail_at(self, offset: int, what: str, size: int, out: list[Record]) -> None:
        message = f"byte {offset}: invalid JSON: {what}; the rest of the JSON was not parsed"
        out.append(self._maker.error(message, size))
        self._state = _FAILED

    def _trailing(self, data: bytes | bytearray, out: list[Record]) -> None:
        if self._state == _DONE:
            at = _match_end(_SPACE, data, 0)
            if at < len(data):
                what = "unexpected data after the end of the JSON document"
                self._fail_at(self._offset + at, what, 0, out)
        self._offset += len(data)

    def _trim(self) -> None:
        buf_start = self._start - self._offset
        if not self._in_value() and self._blank(self._pos):
            # Blank gap between values: nothing in it is needed later.
            self._start = self._offset + self._pos
            buf_start = self._pos
        elif not self._discarding:
            if not self._in_value():
                # A scalar's leading blanks are not part of it, however the gap was chunked.
                buf_start = _match_end(_SPACE, self._buf, buf_start)
                self._start = self._offset + buf_start
            if self._offset + len(self._buf) - self._start > self._limit:
                self._discarding = True
        keep_from = self._pos if self._discarding else min(self._pos, buf_start)
        if keep_from:
            del self._buf[:keep_from]
            self._offset += keep_from
            self._pos -= keep_from


def _match_end(pattern: re.Pattern[bytes], data: bytes | bytearray, pos: int) -> int:
    match = pattern.match(data, pos)
    assert match is not None  # every pattern here can match the empty string
    return match.end()
