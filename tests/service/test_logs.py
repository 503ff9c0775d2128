import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from serve_app.service.logs import (
    LOGGER_NAME,
    JsonFormatter,
    RequestLog,
    fields_of,
    log_error,
    log_event,
)


async def echo(request: Request) -> JSONResponse:
    fields_of(request.scope)["records"] = 3
    return JSONResponse({"size": len(await request.body())})


async def boom(request: Request) -> JSONResponse:
    raise RuntimeError("the cause")


async def stream(request: Request) -> StreamingResponse:
    async def lines() -> Any:
        yield b"a\n"
        yield b"bc\n"

    return StreamingResponse(lines())


def app(observed: list[tuple[str, str, int, float]]) -> Starlette:
    routes = [
        Route("/echo", echo, methods=["POST"]),
        Route("/boom", boom),
        Route("/stream", stream),
        Route("/livez", lambda r: JSONResponse({})),
    ]
    # As the ingress adds it: a user middleware, inside Starlette's ServerErrorMiddleware.
    log = Middleware(
        RequestLog,
        observe=lambda *args: observed.append(args),
        quiet_paths=frozenset({"/livez"}),
    )
    return Starlette(routes=routes, middleware=[log])


def call(asgi: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=asgi, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.request(method, path, **kwargs)

    return asyncio.run(send())


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def caplog() -> Iterator[Keep]:
    # On our logger itself: once Serve has configured "ray.serve" (propagate=False), nothing
    # reaches the root logger where pytest's caplog listens.
    logger = logging.getLogger(LOGGER_NAME)
    keep, level = Keep(), logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.DEBUG)
    yield keep
    logger.removeHandler(keep)
    logger.setLevel(level)


def lines(caplog: Keep, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == event]


def test_one_request_line_with_id_status_latency_and_sizes(
    caplog: Keep,
) -> None:
    observed: list[tuple[str, str, int, float]] = []
    response = call(app(observed), "POST", "/echo", content=b"12345")
    assert response.status_code == 200
    [line] = lines(caplog, "request")
    request_id = response.headers["x-request-id"]
    assert line.request_id == request_id  # type: ignore[attr-defined]
    assert (line.method, line.route, line.status) == ("POST", "/echo", 200)  # type: ignore[attr-defined]
    assert line.bytes_in == 5 and line.bytes_out == len(response.content)  # type: ignore[attr-defined]
    assert line.records == 3  # type: ignore[attr-defined]
    assert line.latency_ms >= 0 and line.levelno == logging.INFO  # type: ignore[attr-defined]
    [(route, method, status, seconds)] = observed
    assert (route, method, status) == ("/echo", "POST", 200) and seconds >= 0


def test_a_client_request_id_is_kept_and_not_doubled(caplog: Keep) -> None:
    # Serve's RequestIdMiddleware, in front in production, returns the header itself.
    response = call(app([]), "POST", "/echo", content=b"", headers={"X-Request-ID": "abc-1"})
    assert "x-request-id" not in response.headers
    assert lines(caplog, "request")[0].request_id == "abc-1"  # type: ignore[attr-defined]


def test_an_exception_becomes_a_json_500_with_the_id_and_its_cause_is_logged(
    caplog: Keep,
) -> None:
    observed: list[tuple[str, str, int, float]] = []
    response = call(app(observed), "GET", "/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    assert "request id" in body["detail"]
    [failure] = lines(caplog, "request_failed")
    assert failure.error_type == "RuntimeError" and failure.error == "the cause"  # type: ignore[attr-defined]
    assert failure.exc_info is not None
    assert lines(caplog, "request")[0].status == 500  # type: ignore[attr-defined]
    assert observed[0][2] == 500


def test_streamed_bytes_are_all_counted(caplog: Keep) -> None:
    call(app([]), "GET", "/stream")
    assert lines(caplog, "request")[0].bytes_out == 5  # type: ignore[attr-defined]


def test_probes_are_logged_below_the_default_level(caplog: Keep) -> None:
    call(app([]), "GET", "/livez")
    assert lines(caplog, "request")[0].levelno == logging.DEBUG


def test_json_formatter_writes_one_object_with_every_field(caplog: Keep) -> None:
    formatter = JsonFormatter()
    log_event("batch_finished", request_id="r1", records=2, failed=1, word="物流")
    try:
        raise ValueError("bad gzip")
    except ValueError as exc:
        log_error("batch_stopped", exc, request_id="r2")
    assert {r.filename for r in caplog.records} == {"test_logs.py"}  # the caller, not logs.py
    finished, stopped = (json.loads(formatter.format(r)) for r in caplog.records)
    assert finished["event"] == finished["message"] == "batch_finished"
    assert (finished["request_id"], finished["records"], finished["failed"]) == ("r1", 2, 1)
    assert finished["word"] == "物流" and finished["levelname"] == "INFO"
    assert stopped["error_type"] == "ValueError" and stopped["error"] == "bad gzip"
    assert "Traceback" in stopped["exc_text"] and stopped["levelname"] == "ERROR"


def test_a_handler_whose_stream_closed_does_not_stop_the_flush() -> None:
    # Seen at the end of a test run: the flusher thread died on pytest's closed capture.
    import io

    from serve_app.service.logs import flush_serve_handlers

    serve_logger = logging.getLogger("ray.serve")
    closed, kept = io.StringIO(), Keep()
    broken = logging.StreamHandler(closed)
    serve_logger.addHandler(broken)
    serve_logger.addHandler(kept)
    closed.close()
    try:
        flush_serve_handlers()  # raised ValueError before
    finally:
        serve_logger.removeHandler(broken)
        serve_logger.removeHandler(kept)
