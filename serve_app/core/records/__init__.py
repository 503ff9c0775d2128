"""Incremental parsers: body bytes in, records (or per-record errors) out, in bounded memory;
and framers (`framer_for`, `framing`), which cut a body into frames of whole records without
parsing them, for the replicas to parse (`serve_app.core.uploads`).

parser = parser_for(request.headers["content-type"], ParseOptions(text_field="body"))
async for chunk in request.stream():
    for record in parser.feed(chunk):
        ...
for record in parser.close():
    ...
"""

from serve_app.core.records.base import (
    ParseOptions,
    Record,
    RecordParser,
    UnsupportedMediaType,
    UploadError,
)
from serve_app.core.records.media import framer_for, parser_for

__all__ = [
    "ParseOptions",
    "Record",
    "RecordParser",
    "UnsupportedMediaType",
    "UploadError",
    "framer_for",
    "parser_for",
]
