"""multipart/form-data framing: each file of the field "files" is its own document.

Like `formdata.FormDataParser`, but each file gets a framer instead of a parser. A file that
cannot be read (unknown type, bad gzip, a JSON document that is neither object nor array)
becomes one error record and the other files go on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from serve_app.core.records.base import ParseOptions, UploadError
from serve_app.core.records.formats import BY_EXTENSION, Format
from serve_app.core.records.framing import (
    CsvFramer,
    Frame,
    Framer,
    GzipFramer,
    NdjsonFramer,
    placeholder_maker,
)
from serve_app.core.records.jsonframing import JsonFramer
from serve_app.core.records.multipart import MultipartFiles

_EXTENSIONS: Final = ", ".join(BY_EXTENSION)
# Body bytes per multipart write: a gzip file inside inflates at most ~1000x this between two
# yields to the event loop.
_WRITE_STEP: Final = 64 * 1024


def format_framer(
    kind: Format, doc: int, source: str | None, options: ParseOptions, piece: int
) -> Framer:
    if kind == "ndjson":
        return NdjsonFramer(doc, source, options, piece)
    if kind == "json":
        return JsonFramer(doc, source, options, piece)
    return CsvFramer(doc, source, options, piece)


def file_framer(filename: str, doc: int, options: ParseOptions, piece: int) -> Framer | None:
    """A framer chosen by the file's extension (`x.jsonl.gz` too), or None if unknown."""
    name = filename.lower()
    gzipped = name.endswith(".gz")
    name = name.removesuffix(".gz")
    kind = next((k for ext, k in BY_EXTENSION.items() if name.endswith(ext)), None)
    if kind is None:
        return None
    framer = format_framer(kind, doc, filename, options, piece)
    return GzipFramer(framer, options.max_decompressed_bytes) if gzipped else framer


class _File:
    __slots__ = ("doc", "framer", "source", "options")

    def __init__(self, doc: int, source: str, framer: Framer | None, options: ParseOptions):
        self.doc = doc
        self.source = source
        self.framer = framer  # None once the file has failed: the rest of it is skipped
        self.options = options

    def feed(self, data: bytes, out: list[Frame]) -> None:
        if self.framer is not None:
            try:
                out += self.framer.feed(data)
            except UploadError as exc:
                self._fail(exc, out)

    def close(self, out: list[Frame]) -> None:
        if self.framer is not None:
            try:
                out += self.framer.close()
            except UploadError as exc:
                self._fail(exc, out)

    def error(self, message: str, out: list[Frame]) -> None:
        record = placeholder_maker(self.options, self.source).error(message, 0)
        out.append(Frame(self.doc, self.source, None, records=(record,)))

    def _fail(self, exc: UploadError, out: list[Frame]) -> None:
        self.error(f"{exc}; the rest of this file was skipped", out)
        self.framer = None


class FormDataFramer(MultipartFiles[Frame]):
    _file: _File | None

    def __init__(self, boundary: bytes, options: ParseOptions, piece: int) -> None:
        super().__init__(boundary)
        self._options = options
        self._piece = piece

    def feed(self, data: bytes) -> list[Frame]:
        return [frame for step in self.steps(data) for frame in step]

    def steps(self, data: bytes) -> Iterator[list[Frame]]:
        for at in range(0, len(data), _WRITE_STEP):
            self._write(data[at : at + _WRITE_STEP])
            out, self._out = self._out, []
            yield out

    def flush(self) -> list[Frame]:
        out, self._out = self._out, []
        if self._file is not None and self._file.framer is not None:
            out += self._file.framer.flush()
        return out

    def close(self) -> list[Frame]:
        out, self._out = self._out, []
        if self._file is not None and not self._ended:
            message = "the upload ended inside this file (no closing multipart boundary)"
            self._file.error(message, out)
            self._file = None
        self._check_some_file()
        return out

    def _open(self, filename: str, doc: int) -> None:
        framer = file_framer(filename, doc, self._options, self._piece)
        self._file = _File(doc, filename, framer, self._options)
        if framer is None:
            message = f"unsupported file type: use {_EXTENSIONS}, optionally gzipped (.gz)"
            self._file.error(message, self._out)
