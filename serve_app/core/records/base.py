import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson


@dataclass(frozen=True, slots=True)
class Record:
    index: int  # position in the whole upload, across files, in input order
    source: str | None  # file name for multipart parts, else None
    id: Any  # value of the id field when present (a JSON scalar), else None
    text: str | None  # None when error is set
    error: str | None  # what is wrong with this record, for a person to read
    size: int  # bytes of the raw record, to size chunks by bytes


@dataclass(frozen=True, slots=True)
class ParseOptions:
    text_field: str = "text"
    id_field: str = "id"
    max_record_bytes: int = 10 * 1024 * 1024
    max_decompressed_bytes: int = 1024**3  # per gzip file: the gzip-bomb guard


class UnsupportedMediaType(ValueError):
    pass


class UploadError(ValueError):
    """The whole upload (or, inside multipart, the whole file) is unusable."""


class RecordParser(Protocol):
    def feed(self, data: bytes) -> list[Record]: ...

    def close(self) -> list[Record]: ...


class BufferedRecordParser(RecordParser, Protocol):
    """What every parser here is: it can say how many body bytes it holds (the memory bound)."""

    @property
    def buffered_bytes(self) -> int: ...


class BadJson(ValueError):
    def __init__(self, message: str, *, syntax: bool) -> None:
        super().__init__(message)
        self.syntax = syntax  # False: the bytes are well-formed JSON text, the content is not


_MISSING: Final = object()
_SCALARS: Final = frozenset({str, int, float, bool})
_JSON_TYPES: Final = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def second_opinion(raw: bytes | bytearray, refused: orjson.JSONDecodeError) -> Any:
    """Parse what orjson refused, to say precisely why, or to accept what it is too strict for.

    orjson refuses lone surrogate escapes ("\\ud800") for the whole document; the json module
    accepts them, so a record whose only fault is elsewhere than its text still goes through.
    """
    try:
        decoded = raw.decode()
    except UnicodeDecodeError as exc:
        raise BadJson(f"invalid UTF-8 at byte {exc.start}", syntax=False) from None
    try:
        return json.loads(decoded, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise BadJson(f"invalid JSON: {refused.msg} at byte {refused.pos}", syntax=True) from None


def _lone_surrogate(value: str) -> str | None:
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        return f"U+{ord(value[exc.start]):04X}"
    return None


class RecordMaker:
    """Numbers records and checks their fields; one per file, sharing the upload's counter."""

    __slots__ = ("options", "source", "_indices", "_text_field", "_id_field")

    def __init__(
        self,
        options: ParseOptions,
        source: str | None = None,
        indices: Iterator[int] | None = None,
    ) -> None:
        self.options = options
        self.source = source
        self._indices = itertools.count() if indices is None else indices
        self._text_field = options.text_field
        self._id_field = options.id_field

    def for_source(self, source: str) -> "RecordMaker":
        return RecordMaker(self.options, source, self._indices)

    def ok(self, ident: Any, text: str, size: int) -> Record:
        return Record(next(self._indices), self.source, ident, text, None, size)

    def error(self, message: str, size: int, ident: Any = None) -> Record:
        return Record(next(self._indices), self.source, ident, None, message, size)

    def too_large(self, size: int, where: str, *, truncated: bool = False) -> Record:
        limit = self.options.max_record_bytes
        end = " (the upload ended inside it)" if truncated else ""
        return self.error(f"{where}: record is {size} bytes, limit is {limit}{end}", size)

    def valid(self, obj: Any, size: int) -> Record | None:
        """The hot path: a Record when obj is a good record, else None (then call `invalid`)."""
        if type(obj) is dict:
            text = obj.get(self._text_field, _MISSING)
            ident = obj.get(self._id_field)
            if type(text) is str and (ident is None or type(ident) in _SCALARS):
                return Record(next(self._indices), self.source, ident, text, None, size)
        return None

    def invalid(self, obj: Any, size: int, where: str) -> Record:
        if type(obj) is not dict:
            return self.error(f"{where}: expected a JSON object, got {json_type(obj)}", size)
        ident = obj.get(self._id_field)
        if ident is not None and type(ident) not in _SCALARS:
            message = f'field "{self._id_field}" is not a scalar (got {json_type(ident)})'
            return self.error(f"{where}: {message}", size)
        text = obj.get(self._text_field, _MISSING)
        if text is _MISSING:
            return self.error(f'{where}: missing field "{self._text_field}"', size, ident)
        message = f'field "{self._text_field}" is not a string (got {json_type(text)})'
        return self.error(f"{where}: {message}", size, ident)

    def from_object(self, obj: Any, size: int, where: str) -> Record:
        """Like valid/invalid, for objects that did not come from orjson (may hold surrogates)."""
        if type(obj) is dict:
            ident = obj.get(self._id_field)
            if type(ident) is str and (bad := _lone_surrogate(ident)):
                message = f'field "{self._id_field}" contains a lone surrogate ({bad})'
                return self.error(f"{where}: {message}", size)
            text = obj.get(self._text_field)
            if type(text) is str and (bad := _lone_surrogate(text)):
                return self.error(f"{where}: text contains a lone surrogate ({bad})", size, ident)
        return self.valid(obj, size) or self.invalid(obj, size, where)

    def from_refused(
        self, raw: bytes | bytearray, refused: orjson.JSONDecodeError, where: str
    ) -> Record:
        """A record for bytes that orjson refused: an error record, or a good one json accepts."""
        try:
            obj = second_opinion(raw, refused)
        except BadJson as exc:
            return self.error(f"{where}: {exc}", len(raw))
        return self.from_object(obj, len(raw), where)
