"""multipart/form-data, read as a stream of files in the form field "files".

python_multipart's push parser calls back with each part's headers and bytes as they arrive.
`MultipartFiles` keeps what both readers of an upload share (headers, which part is a file,
the "no file" error); a subclass says what a file becomes (`_open`): records for the parser,
frames for the ingress's framer.
"""

from typing import Any, Generic, Protocol, TypeVar

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from serve_app.core.records.base import UploadError

FILES_FIELD = "files"

T = TypeVar("T")


class Part(Protocol[T]):
    def feed(self, data: bytes, out: list[T]) -> None: ...

    def close(self, out: list[T]) -> None: ...


class MultipartFiles(Generic[T]):
    _file: Any  # the open file's Part, or None between files

    def __init__(self, boundary: bytes) -> None:
        try:
            self._parser = MultipartParser(
                boundary,
                callbacks={
                    "on_part_begin": self._on_part_begin,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_part_data": self._on_part_data,
                    "on_part_end": self._on_part_end,
                    "on_end": self._on_end,
                },
            )
        except FormParserError as exc:
            raise UploadError(f"bad multipart boundary: {exc}") from None
        self._out: list[T] = []
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._file = None
        self._files = 0
        self._other_fields: list[str] = []
        self._started = False
        self._ended = False

    def _open(self, filename: str, index: int) -> None:
        """Set `self._file` for the upload's `index`-th file (appending any error to _out)."""
        raise NotImplementedError

    def _write(self, data: bytes) -> None:
        self._started = self._started or bool(data)
        try:
            self._parser.write(data)
        except FormParserError as exc:
            raise UploadError(f"malformed multipart body: {exc}") from None

    def _check_some_file(self) -> None:
        if self._started and not self._files:
            got = ", ".join(self._other_fields) or "none"
            raise UploadError(f'no file in the form field "{FILES_FIELD}" (fields found: {got})')

    def _on_part_begin(self) -> None:
        self._disposition = b""

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name = bytearray()
        self._header_value = bytearray()

    def _on_headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        name = params.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = params.get(b"filename")
        if name != FILES_FIELD or not raw_filename:
            if len(self._other_fields) < 10:  # only to name a few in an error message
                self._other_fields.append(repr(name))
            return
        # The header was read as latin-1 bytes; browsers send file names as UTF-8.
        index = self._files
        self._files += 1
        self._open(raw_filename.decode("utf-8", "replace"), index)

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.feed(data[start:end], self._out)

    def _on_part_end(self) -> None:
        if self._file is not None:
            self._file.close(self._out)
            self._file = None

    def _on_end(self) -> None:
        self._ended = True
