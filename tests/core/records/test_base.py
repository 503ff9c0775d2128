import dataclasses
from typing import Any

import orjson
import pytest

from serve_app.core.records.base import ParseOptions, Record, RecordMaker


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        ({}, 'here: missing field "text"'),
        ({"text": None}, 'here: field "text" is not a string (got null)'),
        ({"text": True}, 'here: field "text" is not a string (got boolean)'),
        ({"text": 1.5}, 'here: field "text" is not a string (got number)'),
        ({"text": ["a"]}, 'here: field "text" is not a string (got array)'),
        ({"text": {"a": 1}}, 'here: field "text" is not a string (got object)'),
        ({"text": "a", "id": {}}, 'here: field "id" is not a scalar (got object)'),
        ([], "here: expected a JSON object, got array"),
        ("text", "here: expected a JSON object, got string"),
    ],
)
def test_what_is_wrong_with_a_record(obj: Any, error: str) -> None:
    maker = RecordMaker(ParseOptions())
    assert maker.valid(obj, 1) is None
    assert maker.invalid(obj, 1, "here").error == error


def test_records_are_numbered_across_files() -> None:
    maker = RecordMaker(ParseOptions())
    a = maker.for_source("a.jsonl")
    b = maker.for_source("b.jsonl")
    made = [a.ok(1, "x", 3), b.error("bad", 0), a.valid({"text": "y", "id": None}, 5)]
    assert [(r.index if r else None, r.source if r else None) for r in made] == [
        (0, "a.jsonl"),
        (1, "b.jsonl"),
        (2, "a.jsonl"),
    ]


def test_lone_surrogates_that_orjson_refuses_are_reported_precisely() -> None:
    maker = RecordMaker(ParseOptions())
    for raw, error, ident in [
        (b'{"id": 1, "text": "\\ud800x"}', "here: text contains a lone surrogate (U+D800)", 1),
        (
            b'{"id": "\\udfff", "text": "x"}',
            'here: field "id" contains a lone surrogate (U+DFFF)',
            None,
        ),
    ]:
        with pytest.raises(orjson.JSONDecodeError) as refused:
            orjson.loads(raw)
        record = maker.from_refused(raw, refused.value, "here")
        assert (record.error, record.id) == (error, ident)
    # A surrogate outside the fields read does not spoil the record.
    raw = b'{"text": "fine", "note": "\\ud800"}'
    with pytest.raises(orjson.JSONDecodeError) as refused:
        orjson.loads(raw)
    assert maker.from_refused(raw, refused.value, "here").text == "fine"


def test_nan_is_not_json() -> None:
    raw = b'{"text": NaN}'
    with pytest.raises(orjson.JSONDecodeError) as refused:
        orjson.loads(raw)
    error = RecordMaker(ParseOptions()).from_refused(raw, refused.value, "here").error
    assert error == "here: invalid JSON: unexpected character, expected a JSON value at byte 9"


def test_records_are_frozen() -> None:
    record = Record(0, None, None, "x", None, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.text = "y"  # type: ignore[misc]
