"""multipart/form-data: files in the form field "files", streamed without spooling.

python_multipart's push parser calls back with each part's bytes as they arrive; each file gets
its own record parser chosen by extension. A file that cannot be read (unknown type, bad gzip,
CSV without the text column, ...) becomes one error record and the other files go on.
"""

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from serve_app.core.records.base import BufferedRecordParser, Record, RecordMaker, UploadError
from serve_app.core.records.formats import BY_EXTENSION, file_parser

FILES_FIELD = "files"
_EXTENSIONS = ", ".join(BY_EXTENSION)


class _File:
    __slots__ = ("maker", "parser")

    def __init__(self, maker: RecordMaker, parser: BufferedRecordParser | None) -> None:
        self.maker = maker
        self.parser = parser  # None once the file has failed: the rest of it is skipped

    def feed(self, data: bytes, out: list[Record]) -> None:
        if self.parser is not None:
            try:
                out += self.parser.feed(data)
            except UploadError as exc:
                self._fail(exc, out)

    def close(self, out: list[Record]) -> None:
        if self.parser is not None:
            try:
                out += self.parser.close()
            except UploadError as exc:
                self._fail(exc, out)

    def _fail(self, exc: UploadError, out: list[Record]) -> None:
        out.append(self.maker.error(f"{exc}; the rest of this file was skipped", 0))
        self.parser = None


class FormDataParser:
    def __init__(self, boundary: bytes, maker: RecordMaker) -> None:
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
        self._maker = maker
        self._out: list[Record] = []
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._file: _File | None = None
        self._files = 0
        self._other_fields: list[str] = []
        self._started = False
        self._ended = False

    @property
    def buffered_bytes(self) -> int:
        if self._file is None or self._file.parser is None:
            return 0
        return self._file.parser.buffered_bytes

    def feed(self, data: bytes) -> list[Record]:
        self._started = self._started or bool(data)
        try:
            self._parser.write(data)
        except FormParserError as exc:
            raise UploadError(f"malformed multipart body: {exc}") from None
        out, self._out = self._out, []
        return out

    def close(self) -> list[Record]:
        out, self._out = self._out, []
        if self._file is not None and not self._ended:
            message = "the upload ended inside this file (no closing multipart boundary)"
            out.append(self._file.maker.error(message, 0))
            self._file = None
        if self._started and not self._files:
            got = ", ".join(self._other_fields) or "none"
            raise UploadError(f'no file in the form field "{FILES_FIELD}" (fields found: {got})')
        return out

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
        filename = raw_filename.decode("utf-8", "replace")
        self._files += 1
        maker = self._maker.for_source(filename)
        parser = file_parser(filename, maker)
        if parser is None:
            message = f"unsupported file type: use {_EXTENSIONS}, optionally gzipped (.gz)"
            self._out.append(maker.error(message, 0))
        self._file = _File(maker, parser)

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.feed(data[start:end], self._out)

    def _on_part_end(self) -> None:
        if self._file is not None:
            self._file.close(self._out)
            self._file = None

    def _on_end(self) -> None:
        self._ended = True
