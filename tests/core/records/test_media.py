import pytest

import serve_app.core.records as records
from serve_app.core.records import UnsupportedMediaType, UploadError, parser_for
from serve_app.core.records.csvtable import CsvParser
from serve_app.core.records.formdata import FormDataParser
from serve_app.core.records.gzipped import GzipParser
from serve_app.core.records.jsonarray import JsonParser
from serve_app.core.records.ndjson import NdjsonParser


@pytest.mark.parametrize(
    ("content_type", "parser_type"),
    [
        ("application/x-ndjson", NdjsonParser),
        ("application/jsonl", NdjsonParser),
        ("application/x-jsonlines; charset=utf-8", NdjsonParser),
        ("Application/JSON; charset=UTF-8", JsonParser),
        ("application/json;charset=us-ascii", JsonParser),
        ("text/csv; header=present", CsvParser),
        ('multipart/form-data; boundary="quoted boundary"', FormDataParser),
    ],
)
def test_the_parser_follows_the_media_type(content_type: str, parser_type: type) -> None:
    assert isinstance(parser_for(content_type), parser_type)


def test_gzip_content_encoding_wraps_any_parser() -> None:
    assert isinstance(parser_for("text/csv", content_encoding="GZIP"), GzipParser)
    assert isinstance(parser_for("text/csv", content_encoding=""), CsvParser)


@pytest.mark.parametrize(
    "content_type", ["", "text/plain", "application/xml", "application/json-seq"]
)
def test_an_unknown_media_type_is_unsupported(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="unsupported content type"):
        parser_for(content_type)


def test_only_utf8_is_supported() -> None:
    with pytest.raises(UnsupportedMediaType, match="charset 'latin-1' is not supported"):
        parser_for("text/csv; charset=latin-1")


def test_errors_are_value_errors() -> None:
    assert issubclass(UnsupportedMediaType, ValueError)
    assert issubclass(UploadError, ValueError)
    with pytest.raises(UploadError):
        parser_for("multipart/form-data; charset=utf-8")


def test_the_public_api() -> None:
    assert set(records.__all__) == {
        "ParseOptions",
        "Record",
        "RecordParser",
        "UnsupportedMediaType",
        "UploadError",
        "framer_for",
        "parser_for",
    }
