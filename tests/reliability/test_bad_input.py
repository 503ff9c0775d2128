"""Bad input gets a 4xx whose JSON body says what is wrong, never a 5xx; the service keeps
serving. Complements tests/service/test_ingress.py (unknown options, wrong types, missing text,
malformed JSON, a lone surrogate in the text) and tests/service/test_batch_api.py (bad records mixed
in, CSV without the text column, bad query parameters, an image/png upload).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.reliability import conftest as limits
from tests.reliability.conftest import Guarded
from tests.reliability.uploads import duplex_post, gzip_bomb
from tests.support import multipart

pytestmark = pytest.mark.reliability

JSON = "application/json"
NDJSON = "application/x-ndjson"
DEEP = b"[" * 100_000 + b"]" * 100_000


def assert_serving(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200, response.text


@pytest.fixture
def checked_client(client: httpx.Client) -> Iterator[httpx.Client]:
    """The session service's client; /healthz must answer 200 after the test's requests."""
    yield client
    assert_serving(client)


def detail_text(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert body["detail"], body
    return orjson.dumps(body["detail"]).decode()


# -- real-time routes --------------------------------------------------------------------------

REALTIME_CASES = [
    # (id, path, body, Content-Type, status, words the detail must contain)
    ("two documents", "/v1/clean", b'{"text": "x"} {"text": "y"}', JSON, 422, "json"),
    ("raw NUL byte in a string", "/v1/clean", b'{"text": "a\x00b"}', JSON, 422, "json"),
    ("raw NUL byte after the JSON", "/v1/count", b'{"text": "a"}\x00', JSON, 422, "json"),
    ("invalid UTF-8 (Latin-1 e-acute)", "/v1/analyze", b'{"text": "caf\xe9"}', JSON, 422, "UTF-8"),
    ("UTF-8 cut inside a character", "/v1/clean", b'{"text": "\xe7\x89"}', JSON, 422, "UTF-8"),
    ("100k nested arrays", "/v1/analyze", DEEP, JSON, 422, "nested"),
    (
        "100k nested arrays as options",
        "/v1/clean",
        b'{"text": "x", "options": ' + DEEP + b"}",
        JSON,
        422,
        "nested",
    ),  # fmt: skip
    ("a JSON array body", "/v1/analyze", b'["text"]', JSON, 422, "body"),
    ("a JSON null body", "/v1/clean", b"null", JSON, 422, "body"),
    ("empty body", "/v1/count", b"", JSON, 422, "body"),
    ("text is null", "/v1/count", b'{"text": null}', JSON, 422, "text"),
    ("text is an object", "/v1/clean", b'{"text": {"a": 1}}', JSON, 422, "text"),
    ("options is a list", "/v1/clean", b'{"text": "x", "options": []}', JSON, 422, "options"),
    (
        "NaN where an int goes",
        "/v1/count",
        b'{"text": "x", "options": {"top_k": NaN}}',
        JSON,
        422,
        "top_k",
    ),  # fmt: skip
    (
        "a number in a string (strict)",
        "/v1/count",
        b'{"text": "x", "options": {"top_k": "5"}}',
        JSON,
        422,
        "top_k",
    ),  # fmt: skip
    (
        "stopwords as a string",
        "/v1/count",
        b'{"text": "x", "options": {"stopwords": "en"}}',
        JSON,
        422,
        "stopwords",
    ),  # fmt: skip
    (
        "huge max_repeat",
        "/v1/clean",
        b'{"text": "x", "options": {"max_repeat": 1e400}}',
        JSON,
        422,
        "max_repeat",
    ),  # fmt: skip
    (
        "lone surrogate in an option",
        "/v1/clean",
        b'{"text": "x", "options": {"urls": "\\ud800"}}',
        JSON,
        422,
        "urls",
    ),  # fmt: skip
    ("lone surrogate as a key", "/v1/analyze", b'{"text": "x", "\\udc00": 1}', JSON, 422, "body"),
    ("lone low surrogate", "/v1/count", b'{"text": "\\udfff x"}', JSON, 422, "surrogate"),
    (
        "surrogates in the wrong order",
        "/v1/analyze",
        b'{"text": "\\udc00\\ud800"}',
        JSON,
        422,
        "surrogate",
    ),  # fmt: skip
    ("text/plain", "/v1/analyze", b'{"text": "x"}', "text/plain", 415, "application/json"),
    (
        "a form",
        "/v1/clean",
        b"text=x",
        "application/x-www-form-urlencoded",
        415,
        "application/json",
    ),  # fmt: skip
    ("no Content-Type", "/v1/count", b'{"text": "x"}', None, 415, "application/json"),
]


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status", "says"),
    [pytest.param(*case[1:], id=case[0]) for case in REALTIME_CASES],
)
def test_bad_realtime_bodies_get_a_4xx_saying_what_is_wrong(
    checked_client: httpx.Client,
    path: str,
    body: bytes,
    content_type: str | None,
    status: int,
    says: str,
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    request = checked_client.build_request("POST", path, content=body, headers=headers)
    if content_type is None:
        request.headers.pop("content-type", None)
    response = checked_client.send(request)
    assert response.status_code == status, response.text
    assert says.lower() in detail_text(response).lower()


def test_an_escaped_nul_is_valid_json_and_cleaning_removes_it(
    checked_client: httpx.Client,
) -> None:
    # "\u0000" is valid JSON (a raw NUL byte is not, above). Cleaning drops control
    # characters; /v1/count counts the text as given, where NUL separates words; the minimal
    # (seed) preset keeps it, and the JSON answer escapes it again.
    text = "a\u0000b c"
    cleaned = checked_client.post("/v1/clean", json={"text": text})
    assert cleaned.status_code == 200 and cleaned.json()["text"] == "ab c"
    counted = checked_client.post("/v1/count", json={"text": text})
    assert counted.status_code == 200 and counted.json()["word_counts"] == {"a": 1, "b": 1, "c": 1}
    kept = checked_client.post("/v1/analyze", json={"text": text, "clean": {"preset": "minimal"}})
    assert kept.status_code == 200 and kept.json()["text"] == text
    assert b"\\u0000" in kept.content


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_realtime_body_over_max_body_bytes_is_a_413(
    checked_client: httpx.Client, chunked: bool
) -> None:
    max_body_bytes = 4 * 1024 * 1024  # serve_config.yaml
    payload = b'{"text": "' + b"a" * max_body_bytes + b'"}'

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(payload), 256 * 1024):
            yield payload[start : start + 256 * 1024]

    response = checked_client.post(
        "/v1/analyze",
        content=pieces() if chunked else payload,
        headers={"content-type": JSON},
    )
    assert response.status_code == 413
    assert str(max_body_bytes) in detail_text(response)


# -- /v1/batch on the session service ------------------------------------------------------------


def ndjson_lines(response: httpx.Response) -> list[dict[str, object]]:
    assert response.status_code == 200, response.text
    return [orjson.loads(line) for line in response.content.splitlines() if line]


def test_a_100_mb_string_is_one_error_line_and_the_stream_completes(
    checked_client: httpx.Client,
) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"id": "before", "text": "kept"}\n{"id": "huge", "text": "'
        block = b"x" * (1024 * 1024)
        for _ in range(100):
            yield block
        yield b'"}\n{"id": "after", "text": "kept too"}\n'

    response = checked_client.post(
        "/v1/batch", content=body(), headers={"content-type": NDJSON}, params={"include": "text"}
    )
    lines = ndjson_lines(response)
    assert [line.get("id") for line in lines[:-1]] == ["before", None, "after"]
    assert "limit is 10485760" in str(lines[1]["error"])
    assert lines[-1]["summary"]["records"] == 3 and lines[-1]["summary"]["failed"] == 1  # type: ignore[index]


def test_deeply_nested_json_records_are_error_lines(checked_client: httpx.Client) -> None:
    # NDJSON lines stand alone: the lines after a nested one are read.
    body = b'{"text": "ok"}\n' + DEEP + b'\n{"text": "nested", "x": ' + DEEP + b'}\n{"text": "z"}'
    lines = ndjson_lines(
        checked_client.post("/v1/batch", content=body, headers={"content-type": NDJSON})
    )
    assert [("error" in line) for line in lines[:-1]] == [False, True, True, False]
    assert lines[-1]["summary"]["records"] == 4  # type: ignore[index]
    # In a JSON array the scanner gives up at its depth limit: one error line, then the summary.
    body = b'[{"text": "ok"}, ' + DEEP + b', {"text": "after"}]'
    lines = ndjson_lines(
        checked_client.post("/v1/batch", content=body, headers={"content-type": JSON})
    )
    assert lines[0].get("text") == "ok" and "error" in lines[1]
    assert "summary" in lines[-1]


def test_a_csv_file_without_the_text_column_fails_alone(checked_client: httpx.Client) -> None:
    body, content_type = multipart(
        [
            ("good.csv", b"text\nfine\n"),
            ("bad.csv", b"body,id\nx,1\n"),
            ("last.jsonl", b'{"text": "z"}'),
        ]
    )
    lines = ndjson_lines(
        checked_client.post("/v1/batch", content=body, headers={"content-type": content_type})
    )
    assert [(line["source"], "error" in line) for line in lines[:-1]] == [
        ("good.csv", False),
        ("bad.csv", True),
        ("last.jsonl", False),
    ]
    assert "text" in str(lines[1]["error"])


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({"content-type": "text/plain"}, "application/x-ndjson"),
        ({"content-type": "application/x-ndjson; charset=latin-1"}, "UTF-8"),
        ({"content-type": NDJSON, "content-encoding": "br"}, "gzip"),
    ],
    ids=["text/plain", "latin-1", "brotli"],
)
def test_an_upload_it_cannot_read_is_a_415(
    checked_client: httpx.Client, headers: dict[str, str], says: str
) -> None:
    response = checked_client.post("/v1/batch", content=b'{"text": "x"}\n', headers=headers)
    assert response.status_code == 415
    assert says in detail_text(response)


# -- limits of the guarded service -------------------------------------------------------------


def test_a_gzip_bomb_in_a_multipart_upload_fails_only_its_file(
    guarded_client: httpx.Client,
) -> None:
    bomb = gzip_bomb(1024**3)  # 1 GiB of zeros, about 1 MB compressed
    body, content_type = multipart(
        [
            ("before.jsonl", b'{"text": "one"}\n'),
            ("bomb.jsonl.gz", bomb),
            ("after.csv", b"text\ntwo\n"),
        ]
    )
    lines = ndjson_lines(
        guarded_client.post("/v1/batch", content=body, headers={"content-type": content_type})
    )
    assert [(line["source"], line.get("text")) for line in lines[:-1]] == [
        ("before.jsonl", "one"),
        ("bomb.jsonl.gz", None),
        ("after.csv", "two"),
    ]
    assert f"over the limit of {limits.MAX_DECOMPRESSED_BYTES} bytes" in str(lines[1]["error"])
    assert lines[-1]["summary"]["ok"] == 2  # type: ignore[index]
    assert_serving(guarded_client)


def test_a_gzip_bomb_as_the_whole_body_is_a_400(guarded_client: httpx.Client) -> None:
    response = guarded_client.post(
        "/v1/batch",
        content=gzip_bomb(1024**3),
        headers={"content-type": NDJSON, "content-encoding": "gzip"},
    )
    assert response.status_code == 400
    assert f"over the limit of {limits.MAX_DECOMPRESSED_BYTES} bytes" in detail_text(response)
    assert_serving(guarded_client)


def test_a_record_over_max_record_bytes_is_an_error_line(guarded_client: httpx.Client) -> None:
    # The limit is a builder argument in the guarded service's copy of serve_config.yaml.
    huge = b'{"text": "' + b"r" * limits.MAX_RECORD_BYTES + b'"}'
    body = huge + b'\n{"text": "next"}\n'
    lines = ndjson_lines(
        guarded_client.post(
            "/v1/batch", content=body, headers={"content-type": NDJSON}, params={"include": "text"}
        )
    )
    assert f"limit is {limits.MAX_RECORD_BYTES}" in str(lines[0]["error"])
    assert lines[1]["text"] == "next" and lines[-1]["summary"]["ok"] == 1  # type: ignore[index]


def test_an_upload_over_max_upload_bytes_before_any_result_is_a_413(
    guarded_client: httpx.Client,
) -> None:
    # One record that never ends: no result line can go out before the limit is passed.
    body = b'{"text": "' + b"y" * (limits.MAX_UPLOAD_BYTES + 1024 * 1024)
    response = guarded_client.post("/v1/batch", content=body, headers={"content-type": NDJSON})
    assert response.status_code == 413
    assert f"limit of {limits.MAX_UPLOAD_BYTES} bytes" in detail_text(response)
    assert_serving(guarded_client)


def test_an_upload_over_max_upload_bytes_after_results_ends_with_an_error_line(
    guarded: Guarded,
) -> None:
    record = orjson.dumps({"text": "word " * 200}) + b"\n"
    block = record * (256 * 1024 // len(record))
    blocks = limits.MAX_UPLOAD_BYTES // len(block) + 2
    result = duplex_post(
        guarded.url,
        "/v1/batch?include=char_count",
        headers={**guarded.headers, "Content-Type": NDJSON},
        first=b'{"id": "first", "text": "out before the limit"}\n',
        rest=(block for _ in range(blocks)),
    )
    assert result.status == 200  # the answer had started: the error can only be a line
    lines = [orjson.loads(line) for line in result.body.splitlines() if line]
    assert lines[0]["id"] == "first"
    assert lines[-1] == {
        "error": f"upload is larger than the limit of {limits.MAX_UPLOAD_BYTES} bytes"
    }
    assert not any("summary" in line for line in lines)  # no summary: the upload is incomplete
    with httpx.Client(base_url=guarded.url, headers=guarded.headers, timeout=60) as http:
        assert_serving(http)
