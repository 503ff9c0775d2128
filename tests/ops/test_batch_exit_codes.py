"""`cleanserve batch`'s exit status for each way a stream can end, against a fake /v1/batch
(an aiohttp server on loopback that answers canned lines): no service needed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from serve_app.ops.cli import main
from serve_app.ops.exit_codes import ExitCode
from tests.support import free_port

RESULT = orjson.dumps({"index": 0, "source": "a.json", "text": "x", "word_count": 1})
FAILED = orjson.dumps({"index": 1, "source": "a.json", "error": "line 2: missing field"})
STOPPING = orjson.dumps({"error": "the service is stopping; retry the rest", "request_id": "req-7"})


def summary(records: int, failed: int) -> bytes:
    counts = {"records": records, "ok": records - failed, "failed": failed, "top_words": []}
    return orjson.dumps({"summary": counts, "nodes": {}})


class FakeBatch:
    """Serves one canned answer (set `lines`) to every POST /v1/batch, after reading the body."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.port = free_port()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for line in self.lines:
            await response.write(line + b"\n")
        await response.write_eof()
        return response

    def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/batch", self._answer)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> FakeBatch:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBatch]:
    with FakeBatch() as server:
        yield server


def batch(fake: FakeBatch, tmp_path: Path, lines: list[bytes]) -> int:
    fake.lines = lines
    (tmp_path / "a.json").write_text('[{"text": "x"}, {"id": 2}]')
    return main(
        ["batch", str(tmp_path / "a.json"), "--url", fake.url, "--out", str(tmp_path / "o")]
    )


def stderr(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().err.split())  # rich wraps long lines


def test_every_record_answered_exits_0(fake: FakeBatch, tmp_path: Path) -> None:
    assert batch(fake, tmp_path, [RESULT, summary(1, 0)]) == ExitCode.OK


def test_failed_records_exit_3_with_the_count(
    fake: FakeBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert batch(fake, tmp_path, [RESULT, FAILED, summary(2, 1)]) == ExitCode.RECORDS_FAILED
    assert "1 of 2 record(s) failed" in stderr(capsys)


def test_a_stream_ended_by_the_service_stopping_exits_1_and_says_run_it_again(
    fake: FakeBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert batch(fake, tmp_path, [RESULT, STOPPING]) == ExitCode.FAILED
    said = stderr(capsys)
    assert "the service is stopping; retry the rest" in said, said
    assert "after 1 record(s) (request id req-7)" in said and "Run the batch again" in said
    # What was answered before the stop is kept.
    assert (tmp_path / "o").read_bytes() == RESULT + b"\n"


def test_a_stream_cut_without_its_summary_exits_1(
    fake: FakeBatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert batch(fake, tmp_path, [RESULT]) == ExitCode.FAILED
    assert "ended without a summary line" in stderr(capsys)
