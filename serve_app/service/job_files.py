"""A job's files: records read from a file of any supported format, a piece at a time, and
rows written into a group's shard (NDJSON or Parquet), whole or not at all."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from typing import Any, Final

import orjson

from serve_app.core.pipeline import BulkOptions, to_ndjson
from serve_app.core.records.base import ParseOptions, Record, RecordMaker, UploadError
from serve_app.core.records.formats import Format, file_parser, format_parser
from serve_app.core.records.gzipped import GzipParser
from serve_app.core.records.jsonarray import JsonParser, whole_object
from serve_app.service.storage import Storage, atomic_output, is_uri

READ_BYTES: Final = 1 << 20


def shard_name(group: int, output_format: str) -> str:
    return f"part-{group:05d}.{'parquet' if output_format == 'parquet' else 'ndjson'}"


# -- reading a file ----------------------------------------------------------------------------


def _parser(uri: str, kind: str, maker: RecordMaker) -> Any:
    if kind == "auto":
        return file_parser(uri, maker)
    parser = format_parser(_FORMATS[kind], maker)
    if uri.lower().endswith(".gz"):
        return GzipParser(parser, maker.options.max_decompressed_bytes)
    return parser


_FORMATS: Final[dict[str, Format]] = {"ndjson": "ndjson", "json": "json", "csv": "csv"}


def is_parquet(uri: str, kind: str) -> bool:
    return kind == "parquet" or (kind == "auto" and uri.lower().endswith(".parquet"))


def file_records(stream: Any, uri: str, kind: str, options: ParseOptions) -> Iterator[Record]:
    """A file's records, read in pieces; `index` counts within the file, `source` is its URI.
    A file that cannot be read on (bad gzip, no text column) ends with one error record."""
    maker = RecordMaker(options, source=uri)
    if is_parquet(uri, kind):
        yield from _parquet_records(stream, maker, options)
        return
    parser = _parser(uri, kind, maker)
    pieces = iter(lambda: stream.read(READ_BYTES), b"")
    first = next(pieces, b"")
    if isinstance(parser, JsonParser) and len(first) < READ_BYTES and not next(pieces, b""):
        # A small .json file, read whole: one record object is parsed at once, no scanning.
        whole = whole_object(first, maker)
        if whole is not None:
            yield from whole
            return
        pieces = iter(())
    try:
        for piece in itertools.chain((first,), pieces):
            yield from parser.feed(piece)
        yield from parser.close()
    except UploadError as exc:
        yield maker.error(f"file: {exc}", 0)


def _parquet_records(stream: Any, maker: RecordMaker, options: ParseOptions) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(stream.read()))
    except Exception as exc:  # pyarrow says what is wrong; the job goes on
        yield maker.error(f"file: not a readable Parquet file: {exc}", 0)
        return
    if options.text_field not in table.column_names:
        yield maker.error(f'file: no column "{options.text_field}"', 0)
        return
    texts = table.column(options.text_field).to_pylist()
    has_id = options.id_field in table.column_names
    ids = table.column(options.id_field).to_pylist() if has_id else [None] * len(texts)
    for text, ident in zip(texts, ids, strict=True):
        size = len(text.encode()) if isinstance(text, str) else 0
        yield maker.valid({options.text_field: text, options.id_field: ident}, size) or (
            maker.invalid({options.text_field: text, options.id_field: ident}, size, "row")
        )


# -- writing a shard ---------------------------------------------------------------------------


def parquet_table(rows: list[dict[str, Any]], options: BulkOptions) -> Any:
    """Rows as an Arrow table with one fixed schema: `id` as JSON text (ids may be numbers or
    strings; a column has one type), `word_counts` as map<string, int64>; the analytics' and
    dedup's fields as columns when the options ask for them, null where a row has none (as
    NDJSON rows leave out `boilerplate` and `duplicate_of` when not flagged)."""
    import pyarrow as pa

    include = options.include
    fields = [("index", pa.int64()), ("source", pa.string()), ("id", pa.string())]
    result = [
        ("text", pa.string()),
        ("char_count", pa.int64()),
        ("word_count", pa.int64()),
        ("unique_words", pa.int64()),
        ("word_counts", pa.map_(pa.string(), pa.int64())),
    ]
    if options.analysis.language:
        result.append(("language", pa.string()))
    if options.analysis.sentiment:
        result.append(("sentiment", pa.struct([("label", pa.string()), ("score", pa.float64())])))
    fields += [(name, kind) for name, kind in result if include is None or name in include]
    if options.dedup.boilerplate:
        fields.append(("boilerplate", pa.bool_()))
    if options.dedup.duplicates:
        fields.append(("duplicate_of", pa.struct([("source", pa.string()), ("index", pa.int64())])))
    fields.append(("error", pa.string()))
    columns: dict[str, list[Any]] = {name: [] for name, _ in fields}
    for row in rows:
        for name, _ in fields:
            value = row.get(name)
            if name == "id" and value is not None:
                value = orjson.dumps(value).decode()
            elif name == "word_counts" and value is not None:
                value = list(value.items())
            columns[name].append(value)
    schema = pa.schema(fields)
    return pa.table(columns, schema=schema)


class ShardWriter:
    """Rows of one group into `part-NNNNN.*` under `output`, opened on the first row."""

    def __init__(
        self,
        storage: Storage,
        *,
        output: str,
        output_format: str,
        options: BulkOptions,
        group: int,
    ) -> None:
        self._storage = storage
        self._output = output
        self._format = output_format
        self._options = options
        self.name = shard_name(group, output_format)
        self._out: Any = None
        self._parquet: Any = None

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self._out is None:
            fs, base = self._storage.filesystem(self._output)
            path = f"{base.rstrip('/')}/{self.name}"
            self._out = atomic_output(fs, path, local=not is_uri(self._output))
            self._out.__enter__()
        if self._format == "parquet":
            import pyarrow.parquet as pq

            table = parquet_table(rows, self._options)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._out.stream, table.schema)
            self._parquet.write_table(table)
        else:
            self._out.stream.write(to_ndjson(rows))

    def close(self, failed: BaseException | None = None) -> str:
        if self._out is None:
            return ""
        if self._parquet is not None:
            self._parquet.close()
        if failed is None:
            self._out.__exit__(None, None, None)
        else:
            self._out.__exit__(type(failed), failed, failed.__traceback__)
        return self.name
