import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from serve_app.service.guards import BearerAuth, BodyLimit, GuardConfig, load_api_keys


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


async def stream_size(request: Request) -> JSONResponse:
    size = 0
    async for piece in request.stream():
        size += len(piece)
    return JSONResponse({"size": size})


@pytest.fixture
def config() -> GuardConfig:
    config = GuardConfig()
    config.max_body_bytes = 100
    return config


class Client:
    """Requests through httpx's ASGI transport: the middleware as a server would run it."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                return await http.request(method, path, **kwargs)

        return asyncio.run(send())

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)


@pytest.fixture
def client(config: GuardConfig) -> Client:
    app = Starlette(
        routes=[
            Route("/v1/echo", echo, methods=["POST"]),
            Route("/v1/batch", stream_size, methods=["POST"]),
            Route("/healthz", echo, methods=["GET"]),
        ]
    )
    app.add_middleware(BodyLimit, config=config, exempt=frozenset({"/v1/batch"}))
    app.add_middleware(BearerAuth, config=config)
    return Client(app)


def test_bodies_within_the_limit_pass(client: Client) -> None:
    assert client.post("/v1/echo", content=b"x" * 100).json() == {"size": 100}


def test_a_declared_body_past_the_limit_gets_413(client: Client) -> None:
    response = client.post("/v1/echo", content=b"x" * 101)
    assert response.status_code == 413
    assert "limit of 100 bytes" in response.json()["detail"]


def test_a_chunked_body_with_no_length_past_the_limit_gets_413(client: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(1000):
            yield b"x" * 10

    response = client.post("/v1/echo", content=chunks())
    assert response.status_code == 413


def test_the_batch_route_is_exempt_from_the_real_time_limit(client: Client) -> None:
    assert client.post("/v1/batch", content=b"x" * 5000).json() == {"size": 5000}


def test_with_keys_configured_a_request_needs_a_valid_bearer_token(
    client: Client, config: GuardConfig
) -> None:
    config.keys = (b"k1", b"secret-2")
    assert client.post("/v1/echo", content=b"x").status_code == 401
    wrong = client.post("/v1/echo", content=b"x", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    ok = client.post("/v1/echo", content=b"x", headers={"Authorization": "Bearer secret-2"})
    assert ok.status_code == 200
    assert client.get("/healthz").status_code == 200  # health stays open


def test_without_keys_everything_is_open(client: Client) -> None:
    assert client.post("/v1/echo", content=b"x").status_code == 200


def test_keys_come_from_a_variable_and_a_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("file-key\n\n  other \n")
    assert load_api_keys(inline="a, b", file=str(keys_file)) == (b"a", b"b", b"file-key", b"other")
    assert load_api_keys(inline=None, file=None) == ()
