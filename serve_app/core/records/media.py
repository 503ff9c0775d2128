from typing import Final

from python_multipart.multipart import parse_options_header

from serve_app.core.records.base import (
    BufferedRecordParser,
    ParseOptions,
    RecordMaker,
    UnsupportedMediaType,
    UploadError,
)
from serve_app.core.records.formats import Format, format_parser
from serve_app.core.records.formdata import FormDataParser
from serve_app.core.records.formframing import FormDataFramer, format_framer
from serve_app.core.records.framing import Framer, GzipFramer
from serve_app.core.records.gzipped import GzipParser

BY_MEDIA_TYPE: Final[dict[str, Format]] = {
    "application/x-ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/x-jsonlines": "ndjson",
    "application/json": "json",
    "text/csv": "csv",
}
MULTIPART = "multipart/form-data"
_CHARSETS: Final = frozenset({"utf-8", "utf8", "us-ascii"})
_GZIP: Final = frozenset({"gzip", "x-gzip"})


def _media(content_type: str, content_encoding: str | None) -> tuple[str, dict[bytes, bytes], bool]:
    """The media type, its parameters and whether the body is gzipped; raises
    UnsupportedMediaType for what cannot be read."""
    media, params = parse_options_header(content_type)
    charset = params.get(b"charset", b"utf-8").decode("latin-1").lower()
    if charset not in _CHARSETS:
        raise UnsupportedMediaType(f"charset {charset!r} is not supported: send UTF-8")
    encoding = (content_encoding or "identity").strip().lower()
    if encoding not in _GZIP and encoding != "identity":
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported: use gzip")
    media_type = media.decode("latin-1")
    if media_type != MULTIPART and media_type not in BY_MEDIA_TYPE:
        known = ", ".join([*BY_MEDIA_TYPE, MULTIPART])
        raise UnsupportedMediaType(f"unsupported content type {media_type!r}: use one of {known}")
    return media_type, params, encoding in _GZIP


def framer_for(
    content_type: str,
    options: ParseOptions = ParseOptions(),
    *,
    content_encoding: str | None = None,
    piece_bytes: int = 1 << 20,
) -> Framer:
    """A framer for a body of this Content-Type (and Content-Encoding: gzip or none), cutting
    frames of about `piece_bytes`. Raises as parser_for does."""
    media_type, params, gzipped = _media(content_type, content_encoding)
    framer: Framer
    if media_type == MULTIPART:
        boundary = params.get(b"boundary")
        if not boundary:
            raise UploadError("multipart/form-data without a boundary parameter")
        framer = FormDataFramer(boundary, options, piece_bytes)
    else:
        framer = format_framer(BY_MEDIA_TYPE[media_type], 0, None, options, piece_bytes)
    return GzipFramer(framer, options.max_decompressed_bytes) if gzipped else framer


def parser_for(
    content_type: str,
    options: ParseOptions = ParseOptions(),
    *,
    content_encoding: str | None = None,
) -> BufferedRecordParser:
    """A parser for a body of this Content-Type (and Content-Encoding: gzip or none).

    Raises UnsupportedMediaType for a type, charset or encoding it cannot read, and UploadError
    for a multipart type without a boundary.
    """
    media_type, params, gzipped = _media(content_type, content_encoding)
    maker = RecordMaker(options)
    parser: BufferedRecordParser
    if media_type == MULTIPART:
        boundary = params.get(b"boundary")
        if not boundary:
            raise UploadError("multipart/form-data without a boundary parameter")
        parser = FormDataParser(boundary, maker)
    else:
        parser = format_parser(BY_MEDIA_TYPE[media_type], maker)
    return GzipParser(parser, options.max_decompressed_bytes) if gzipped else parser
