"""ASGI middleware in front of the routes: bearer-token access and real-time body limits.

Both are plain ASGI so they act before a body is read: a 413 is sent while the client is
still uploading, and nothing past the limit is buffered.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve_app.service.logs import error_body, request_id_of

# Probes and the documentation need no key: a kubelet or a load balancer sends none.
OPEN_PATHS = frozenset(
    {"/healthz", "/livez", "/readyz", "/docs", "/openapi.json", "/docs/oauth2-redirect"}
)


def load_api_keys(*, inline: str | None, file: str | None) -> tuple[bytes, ...]:
    keys: list[str] = []
    if inline:
        keys += inline.split(",")
    if file:
        keys += Path(file).read_text(encoding="utf-8").splitlines()
    return tuple(k.strip().encode() for k in keys if k.strip())


class GuardSettings(Protocol):
    api_keys: str | None
    api_keys_file: str | None
    max_body_bytes: int


class GuardConfig:
    """Filled in by the ingress replica once its settings are known; read on every request.

    The middleware is declared with the FastAPI app at import time, before any settings exist.
    """

    def __init__(self) -> None:
        self.keys: tuple[bytes, ...] = ()
        self.max_body_bytes = 4 * 1024 * 1024

    def configure(self, settings: GuardSettings) -> None:
        self.keys = load_api_keys(inline=settings.api_keys, file=settings.api_keys_file)
        self.max_body_bytes = settings.max_body_bytes


async def _send_json(
    send: Send, status: int, body: Any, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BearerAuth:
    """401 unless `Authorization: Bearer <key>` matches a configured key (when any is)."""

    def __init__(self, app: ASGIApp, *, config: GuardConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keys = self.config.keys
        if scope["type"] != "http" or not keys or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        token = b""
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                token = value[7:].strip()
        # Compare against every key, always, so timing tells nothing about which one was close.
        matched = False
        for key in keys:
            matched |= hmac.compare_digest(token, key)
        if not matched:
            await _send_json(
                send,
                401,
                error_body(
                    "missing or invalid API key: send Authorization: Bearer <key>",
                    request_id_of(scope),
                ),
                [(b"www-authenticate", b"Bearer")],
            )
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for a real-time request whose body passes `max_bytes`, declared or streamed."""

    def __init__(self, app: ASGIApp, *, config: GuardConfig, exempt: frozenset[str]) -> None:
        self.app = app
        self.config = config
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        max_bytes = self.config.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > max_bytes:
                await _send_json(send, 413, error_body(self._detail(), request_id_of(scope)))
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    # Raised inside the app, so its exception middleware answers with the 413.
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, limited_receive, send)

    def _detail(self) -> str:
        return f"request body is larger than the limit of {self.config.max_body_bytes} bytes"
