"""multipart/form-data: files in the form field "files", streamed without spooling.

python_multipart's push parser calls back with each part's bytes as they arrive; each file gets
its own record parser chosen by extension. A file that cannot be read (unknown type, bad gzip,
CSV without the text column, ...) becomes one error record and the other files go on.
"""

from serve_app.core.records.base import BufferedRecordParser, Record, RecordMaker, UploadError
from serve_app.core.records.formats import BY_EXTENSION, file_parser
from serve_app.core.records.multipart import MultipartFiles

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


class FormDataParser(MultipartFiles[Record]):
    _file: _File | None

    def __init__(self, boundary: bytes, maker: RecordMaker) -> None:
        super().__init__(boundary)
        self._maker = maker

    @property
    def buffered_bytes(self) -> int:
        if self._file is None or self._file.parser is None:
            return 0
        return self._file.parser.buffered_bytes

    def feed(self, data: bytes) -> list[Record]:
        self._write(data)
        out, self._out = self._out, []
        return out

    def close(self) -> list[Record]:
        out, self._out = self._out, []
        if self._file is not None and not self._ended:
            message = "the upload ended inside this file (no closing multipart boundary)"
            out.append(self._file.maker.error(message, 0))
            self._file = None
        self._check_some_file()
        return out

    def _open(self, filename: str, index: int) -> None:
        maker = self._maker.for_source(filename)
        parser = file_parser(filename, maker)
        if parser is None:
            message = f"unsupported file type: use {_EXTENSIONS}, optionally gzipped (.gz)"
            self._out.append(maker.error(message, 0))
        self._file = _File(maker, parser)
