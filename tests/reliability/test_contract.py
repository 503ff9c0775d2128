"""Schemathesis against /openapi.json: generated requests, valid and invalid, to every route;
no 5xx, and every answer has a documented status, media type and schema.

A bounded, reproducible run: a fixed number of examples per operation, derandomized.
/v1/batch is generated like the rest: its request body is documented per media type
(NDJSON and CSV as strings, JSON as an array or object, multipart with "files"), which is
enough for Schemathesis to send well-typed and broken uploads; its 200 is a stream of NDJSON
lines, documented without a schema, so only its status and media type are checked.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import orjson
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.reliability

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def openapi(service_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{service_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("openapi")


@schemathesis.serializer("application/x-ndjson", "text/csv")
def _text_body(ctx: Any, value: Any) -> bytes:
    # The /v1/batch examples for these media types are text; generated values may be any JSON.
    return value.encode() if isinstance(value, str) else orjson.dumps(value)


@schema.parametrize()
@hypothesis.settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)
def test_every_operation_keeps_its_contract(case: schemathesis.Case[Any], service_url: str) -> None:
    case.call_and_validate(base_url=service_url, checks=CHECKS, timeout=60)
