"""Structured logs: one JSON line per request at the ingress, per finished batch or job, and
per error with its cause, each carrying the request id.

Lines go through the `ray.serve.cleanserve` logger, a child of Serve's own: in a replica they
land in that replica's Serve log file (`logs/serve/replica_cleanserve_<deployment>_<id>.log`
in the Ray session directory), encoded as serve_config.yaml's `logging_config` says (JSON),
beside Serve's access lines, with the same `request_id`, `route`, `deployment` and `replica`
fields that Serve's context filter adds. The fields of an event travel as `extra` attributes,
which Serve's JSON formatter writes as top-level keys. Outside Serve (tests, the CLI)
`JsonFormatter` writes the same shape.

Serve itself reads `X-Request-ID` (or generates one) before our code runs, returns it in the
response header and hands it to every handle call the request makes, so a TextCleaner or
WordCounter line for that request carries it too. `RequestLog` only fills in an id when no
Serve runs in front (a test client), so the app behaves the same either way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOGGER_NAME = "ray.serve.cleanserve"
REQUEST_ID_HEADER = b"x-request-id"
logger = logging.getLogger(LOGGER_NAME)

# The attributes every LogRecord has; anything else on a record is an event field.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


_flusher_lock = threading.Lock()
_flusher: threading.Thread | None = None


def start_log_flusher(interval_s: float = 1.0) -> None:
    """Write buffered log lines out at least every `interval_s`, from a daemon thread (one per
    process; later calls do nothing).

    With RAY_SERVE_THROUGHPUT_OPTIMIZED, Serve buffers a replica's log lines in memory and
    writes them 1000 at a time (or at an ERROR): at low traffic a request's lines could wait
    hours, and a crash would lose them. Flushing on a timer keeps the batched writes under
    load and bounds the delay (and the loss) to about a second.
    """
    global _flusher
    with _flusher_lock:
        if _flusher is not None:
            return

        def flush_forever() -> None:
            while True:
                time.sleep(interval_s)
                flush_serve_handlers()

        _flusher = threading.Thread(target=flush_forever, name="log-flusher", daemon=True)
        _flusher.start()


def flush_serve_handlers() -> None:
    for handler in list(logging.getLogger(LOGGER_NAME.rsplit(".", 1)[0]).handlers):
        # A stream closed under us (interpreter exit, a test's capture) is no reason to stop
        # flushing the others, nor to end the flusher thread.
        with contextlib.suppress(OSError, ValueError):
            handler.flush()


def log_event(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """One structured line: `event` names what happened, `fields` say the rest.

    For the jobs code, e.g. `log_event("job_finished", job_id=..., records=..., failed=...)`.
    """
    # stacklevel: the line names its caller's file and line, not this helper's.
    logger.log(level, event, extra={"event": event, **fields}, stacklevel=2)


def log_error(event: str, exc: BaseException, **fields: Any) -> None:
    """An error line with its cause (exception type, message and traceback)."""
    logger.error(
        event,
        exc_info=exc,
        stacklevel=2,
        extra={"event": event, "error_type": type(exc).__name__, "error": str(exc), **fields},
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every event field."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "asctime": self.formatTime(record),
            "levelname": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((k, v) for k, v in vars(record).items() if k not in _STANDARD_ATTRS)
        if record.exc_info:
            line["exc_text"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def request_id_of(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            return bytes(value).decode("latin-1")
    return None


class RequestLog:
    """The outermost middleware: one `request` line per HTTP request, a request id for every
    response, and a JSON 500 (with the id) instead of a bare traceback page.

    `observe(route, method, status, seconds)` is called once per request too: the ingress's
    per-route latency histogram.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        observe: Callable[[str, str, int, float], None] | None = None,
        quiet_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.observe = observe
        self.quiet_paths = quiet_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        # Serve's RequestIdMiddleware has set the header (and will return it) when Serve runs
        # in front; otherwise the id is ours to make and to return.
        ours = request_id is None
        if request_id is None:
            request_id = uuid.uuid4().hex
            scope["headers"] = [*scope.get("headers", ()), (REQUEST_ID_HEADER, request_id.encode())]
        # The routes add what only they know (records of a batch) to this dict.
        fields: dict[str, Any] = {}
        scope.setdefault("state", {})["log_fields"] = fields
        status = 0
        bytes_in = 0
        bytes_out = 0

        async def counting_receive() -> Message:
            nonlocal bytes_in
            message = await receive()
            if message["type"] == "http.request":
                bytes_in += len(message.get("body", b""))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal status, bytes_out
            if message["type"] == "http.response.start":
                status = message["status"]
                if ours:
                    message = {
                        **message,
                        "headers": [
                            *message.get("headers", ()),
                            (REQUEST_ID_HEADER, request_id.encode()),
                        ],
                    }
            elif message["type"] == "http.response.body":
                bytes_out += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except Exception as exc:
            if status:
                # Too late for a status: the client sees the stream end early.
                log_error("response_failed", exc, request_id=request_id, route=scope["path"])
                raise
            status = 500
            log_error("request_failed", exc, request_id=request_id, route=scope["path"])
            await _send_error(
                tracking_send, 500, "internal error; quote the request id when reporting it",
                request_id,
            )  # fmt: skip
        finally:
            seconds = time.perf_counter() - started
            route = scope["path"]
            if self.observe is not None:
                self.observe(route, scope.get("method", ""), status or 499, seconds)
            # Probes come every few seconds: logged, but below the default level.
            log_event(
                "request",
                level=logging.DEBUG if route in self.quiet_paths else logging.INFO,
                request_id=request_id,
                method=scope.get("method", ""),
                route=route,
                # 499: the client went away before any answer (nginx's convention).
                status=status or 499,
                latency_ms=round(seconds * 1000, 3),
                bytes_in=bytes_in,
                bytes_out=bytes_out,
                **fields,
            )


def error_body(detail: Any, request_id: str | None) -> dict[str, Any]:
    return {"detail": detail, "request_id": request_id}


async def _send_error(send: Send, status: int, detail: Any, request_id: str | None) -> None:
    payload = json.dumps(error_body(detail, request_id)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def fields_of(scope: Scope) -> dict[str, Any]:
    """The per-request dict a route adds log fields to (see RequestLog)."""
    state: Mapping[str, Any] = scope.get("state", {})
    fields: dict[str, Any] = state.get("log_fields", {})
    return fields
