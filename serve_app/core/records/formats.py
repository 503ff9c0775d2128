from typing import Final, Literal

from serve_app.core.records.base import BufferedRecordParser, RecordMaker
from serve_app.core.records.csvtable import CsvParser
from serve_app.core.records.gzipped import GzipParser
from serve_app.core.records.jsonarray import JsonParser
from serve_app.core.records.ndjson import NdjsonParser

Format = Literal["ndjson", "json", "csv"]

BY_EXTENSION: Final[dict[str, Format]] = {
    ".jsonl": "ndjson",
    ".ndjson": "ndjson",
    ".json": "json",
    ".csv": "csv",
}


def format_parser(kind: Format, maker: RecordMaker) -> BufferedRecordParser:
    if kind == "ndjson":
        return NdjsonParser(maker)
    if kind == "json":
        return JsonParser(maker)
    return CsvParser(maker)


def file_parser(filename: str, maker: RecordMaker) -> BufferedRecordParser | None:
    """A parser chosen by the file's extension (`x.jsonl.gz` too), or None if unknown."""
    name = filename.lower()
    gzipped = name.endswith(".gz")
    name = name.removesuffix(".gz")
    kind = next((k for ext, k in BY_EXTENSION.items() if name.endswith(ext)), None)
    if kind is None:
        return None
    parser = format_parser(kind, maker)
    if gzipped:
        return GzipParser(parser, maker.options.max_decompressed_bytes)
    return parser
