"""CPU cost of the ingress's request logging, against the same app without it, in one run.

    python -m loadtests.logcost [--requests 5000] [--repeat 3]

A tiny Starlette route called straight through ASGI (no server, no Ray), with and without
`RequestLog`; the log line goes through Ray's JSONFormatter (what Serve's JSON encoding uses)
to /dev/null. Prints CPU microseconds per request and the ratio, per round.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any

from ray._common.formatters import JSONFormatter
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from serve_app.service.logs import LOGGER_NAME, RequestLog

BODY = b'{"text": " Great value "}'


async def clean(request: Request) -> JSONResponse:
    return JSONResponse({"text": "Great value", "char_count": 11})


def apps() -> tuple[Starlette, Starlette]:
    routes = [Route("/v1/clean", clean, methods=["POST"])]
    logged = Middleware(RequestLog, observe=lambda *args: None)
    return Starlette(routes=routes), Starlette(routes=routes, middleware=[logged])


async def call(app: Any) -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/clean",
        "headers": [(b"x-request-id", b"3f9a0c1e"), (b"content-type", b"application/json")],
        "query_string": b"",
        "root_path": "",
    }
    messages = [{"type": "http.request", "body": BODY, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        pass

    await app(scope, receive, send)


async def cpu_us_per_request(app: Any, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        await call(app)
    return (time.process_time() - start) / n * 1e6


async def run(requests: int, repeat: int) -> None:
    plain, logged = apps()
    for app in (plain, logged):
        await cpu_us_per_request(app, 200)
    for _ in range(repeat):
        base = await cpu_us_per_request(plain, requests)
        with_log = await cpu_us_per_request(logged, requests)
        print(
            f"without RequestLog {base:6.1f} us/request   with {with_log:6.1f}   "
            f"+{with_log - base:5.1f} us ({with_log / base:.2f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds")
    args = parser.parse_args()
    handler = logging.FileHandler("/dev/null")
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    asyncio.run(run(args.requests, args.repeat))


if __name__ == "__main__":
    main()
