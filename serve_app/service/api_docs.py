"""The OpenAPI side of the contract that pydantic models cannot say: error answers (the
application's and those of Serve and HAProxy), the /v1/batch bodies with examples, and the bearer
scheme when API keys are configured. The ingress passes these to its routes."""

from typing import Any

from serve_app.schemas import ErrorBody
from serve_app.service.guards import OPEN_PATHS


def error_doc(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Answers that come from Serve or HAProxy, not from the application (README, "Operating it").
_PLAIN_TEXT = {"text/plain": {"schema": {"type": "string"}}}
SERVING_ERRORS: dict[int | str, dict[str, Any]] = {
    500: {
        **error_doc(
            "An internal error (JSON, with the request id to quote), or HAProxy's plain-text "
            '"Internal Server Error" when no ingress replica could answer.'
        ),
        "content": {"application/json": {}, **_PLAIN_TEXT},
    },
    503: {
        "description": 'Overloaded: Serve\'s plain-text "Request dropped due to backpressure", '
        "with Retry-After. Send again later.",
        "content": _PLAIN_TEXT,
    },
}
ERRORS: dict[int | str, dict[str, Any]] = {
    413: error_doc("Body larger than the configured limit."),
    415: error_doc("The body is not sent as application/json."),
    422: error_doc(
        "Invalid JSON (also: not UTF-8, nested too deeply), unknown option, wrong type or lone "
        "surrogate; `detail` lists each problem with its location."
    ),
    504: error_doc("The per-request time budget ran out."),
    **SERVING_ERRORS,
}
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: error_doc("A deployment did not answer within 5 s (the detail says which error).")
}
BATCH_EXAMPLES: dict[str, dict[str, Any]] = {
    "application/x-ndjson": {
        "summary": "One JSON object per line",
        "value": '{"id": "r1", "text": "物流很快，包装很好！"}\n'
        '{"id": "r2", "text": "<b>Great</b> value, would buy again"}\n'
        '{"id": "r3", "review": "no text field"}\n',
    },
    "text/csv": {
        "summary": "A header row; the text column is `text_field`",
        "value": 'id,text\nr1,"物流很快，包装很好！"\nr2,"Great value, would buy again"\n',
    },
    "application/json": {
        "summary": "An array of objects",
        "value": [
            {"id": "r1", "text": "物流很快，包装很好！"},
            {"id": "r2", "text": "Great value"},
        ],
    },
}
# What the service answers to the NDJSON example (a test keeps it true), without the last
# line's "nodes" (which machines did the work).
BATCH_RESULT_EXAMPLE = (
    '{"index":0,"source":null,"id":"r1","text":"物流很快，包装很好！","char_count":10,'
    '"word_count":5,"unique_words":5,"word_counts":{"物流":1,"很快":1,"包装":1,"很":1,"好":1}}\n'
    '{"index":1,"source":null,"id":"r2","text":"Great value, would buy again",'
    '"char_count":28,"word_count":5,"unique_words":5,'
    '"word_counts":{"great":1,"value":1,"would":1,"buy":1,"again":1}}\n'
    '{"index":2,"source":null,"error":"line 3: missing field \\"text\\"","id":"r3"}\n'
    '{"summary":{"records":3,"ok":2,"failed":1,"total_chars":38,"total_words":10,'
    '"unique_words":10,"top_words":[["物流",1],["很快",1],["包装",1],["很",1],["好",1],'
    '["great",1],["value",1],["would",1],["buy",1],["again",1]]}}\n'
)

BATCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/x-ndjson": {"example": BATCH_RESULT_EXAMPLE}},
        "description": "One JSON line per input record, in input order, then "
        '{"summary": {...}}. A record that cannot be read gets {"id", "error"} and '
        'counts as failed; an upload that breaks off midway ends with {"error": ...}, and '
        "one open while the service is being stopped ends after the records answered so far "
        'with {"error": "the service is stopping; retry the rest", "request_id": ...}: '
        "send the records after the last index again.",
    },
    400: error_doc("The upload cannot be read (bad gzip, no text column, ...)."),
    413: error_doc("The upload passed max_upload_bytes (or a record max_record_bytes)."),
    415: error_doc("A Content-Type the batch reader does not know."),
    422: error_doc("A bad query parameter (options, include, top_words)."),
    **SERVING_ERRORS,
    503: {
        "description": 'Overloaded: Serve\'s plain-text "Request dropped due to backpressure"; '
        'or the service is being stopped: JSON {"detail": "the service is stopping; retry the '
        'rest", "request_id": ...}. Both with Retry-After: send again later.',
        "content": {"application/json": {}, **_PLAIN_TEXT},
    },
}
BATCH_OPENAPI_EXTRA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-ndjson": {
                "schema": {"type": "string"},
                "examples": {"reviews": BATCH_EXAMPLES["application/x-ndjson"]},
            },
            "application/json": {
                "schema": {"type": ["array", "object"]},
                "examples": {"reviews": BATCH_EXAMPLES["application/json"]},
            },
            "text/csv": {
                "schema": {"type": "string"},
                "examples": {"reviews": BATCH_EXAMPLES["text/csv"]},
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        }
                    },
                }
            },
        },
    }
}


def with_bearer_scheme(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with a bearer security scheme on every route that needs a key."""
    spec.setdefault("components", {})["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "One of the configured API keys (CLEANSERVE_API_KEYS or "
            "CLEANSERVE_API_KEYS_FILE).",
        }
    }
    unauthorized = {
        "description": "Missing or unknown API key.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for path, operations in spec["paths"].items():
        if path in OPEN_PATHS:
            continue
        for operation in operations.values():
            operation["security"] = [{"bearer": []}]
            operation["responses"]["401"] = unauthorized
    return spec
