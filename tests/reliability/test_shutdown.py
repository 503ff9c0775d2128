"""Stopping the service under load: `serve shutdown`, then SIGTERM to `cleanserve up`, each
while real-time clients loop and a slow /v1/batch upload streams.

What holds, and is checked: nothing hangs (every client and the stopped process end within
STOP_BOUND_S); no answer is wrong; requests sent after the stop are refused at once (a closed
port or a 404), never left waiting; the batch stream's lines are whole and in input order;
`cleanserve up` leaves no process behind. The counts are printed (pytest -s) for the README.

SIGTERM: `cleanserve up` deletes the application first (its replicas drain while HAProxy
still forwards), so in-flight real-time requests get an answer (a 504 JSON error once their
stage is gone), and the ingress notices that Serve is stopping it (service/stopping.py) and
ends the open batch stream with the line {"error": "the service is stopping; retry the rest",
"request_id": ...} and a `batch_stopped` log line: both checked.

`serve shutdown` cannot get that line out: the controller stops HAProxy before it tells the
replicas to stop (the ingress sees its request cancelled first), so the few requests in
flight and the open batch stream are cut between two lines, without a summary or error line.

One service of its own (it is stopped twice): after `serve shutdown` the application is
deployed again on the same cluster, which is faster than a second cluster.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import pytest
import yaml

from serve_app.ops.launcher import DEFAULT_CONFIG, LaunchOptions, load_config, session_processes
from serve_app.service.batch_stream import STOPPING_MESSAGE
from tests.reliability import serve_admin
from tests.reliability.load import BackgroundLoad
from tests.service.test_operations import log_lines, serve_logs
from tests.support import Service, start_service

pytestmark = pytest.mark.reliability

CONCURRENCY = 4
STOP_BOUND_S = 150
# How a real-time client sees the stop: refused or closed connections, HAProxy's 404/500 once
# the application is gone, the ingress's 504 when its stage went first; a read cut short for
# the few requests in flight when the proxies stop (see above).
CLEAN_STOPS = {
    "ConnectError",
    "ReadError",
    "RemoteProtocolError",
    "404",
    "500",
    "503",
    "504",
}  # Serve's drain (60 s for the ingress) and Ray's shutdown, on 2 busy CPUs


@dataclass
class BatchOutcome:
    lines: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    ended_s: float | None = None
    ended_at: float = 0.0  # time.monotonic() when the stream ended

    @property
    def last(self) -> dict[str, Any]:
        return self.lines[-1] if self.lines else {}


class SlowBatch:
    """A /v1/batch upload of ~100 records/s, ~0.5 MB/s, that runs until stopped (or 120 s):
    each pause closes a chunk (the pipeline's linger), so results come back 25 records at a time,
    four times a second."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.request_id = f"shutdown-{uuid.uuid4().hex}"
        self.outcome = BatchOutcome()
        self.started = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SlowBatch:
        self._thread.start()
        assert self.started.wait(60), "the batch stream never started"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=STOP_BOUND_S)
        assert not self._thread.is_alive(), "the batch stream hung"

    async def _records(self) -> AsyncIterator[bytes]:
        deadline = time.monotonic() + 120
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            yield orjson.dumps({"id": n, "text": f"record {n} " + "物流很快 great " * 300}) + b"\n"
            n += 1
            if n % 25 == 0:
                await asyncio.sleep(0.25)

    def _run(self) -> None:
        began = time.monotonic()
        try:
            asyncio.run(self._stream())
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.outcome.error = type(exc).__name__
        finally:
            self.outcome.ended_at = time.monotonic()
            self.outcome.ended_s = self.outcome.ended_at - began
            self.started.set()

    async def _stream(self) -> None:
        # aiohttp sends the body in a task of its own, so results are read while the upload
        # goes on (httpx would send the whole body first), as `cleanserve batch` does.
        timeout = aiohttp.ClientTimeout(total=STOP_BOUND_S, sock_connect=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(
                f"{self.url}/v1/batch",
                data=self._records(),
                headers={"content-type": "application/x-ndjson", "x-request-id": self.request_id},
            ) as response:
                assert response.status == 200
                buffer = b""
                async for piece in response.content.iter_any():
                    *lines, buffer = (buffer + piece).split(b"\n")
                    for line in lines:
                        self.outcome.lines.append(orjson.loads(line))
                        self.started.set()
                if buffer:
                    self.outcome.lines.append({"partial line": buffer.decode(errors="replace")})


def _serve_shutdown(service: Service) -> subprocess.CompletedProcess[str]:
    serve_cli = Path(sys.executable).with_name("serve")
    return subprocess.run(
        [str(serve_cli), "shutdown", "--address", service.dashboard_url, "--yes"],
        capture_output=True,
        text=True,
        timeout=STOP_BOUND_S,
        env={**os.environ, "RAY_AUTH_MODE": "token"},
    )


def _check(name: str, load: BackgroundLoad, batch: SlowBatch, sent_before: int) -> None:
    stats = load.stats()
    errors = Counter(stats.errors)
    print(
        f"\n{name}: real-time {stats.sent} sent ({sent_before} before the stop), {stats.ok} ok, "
        f"errors {dict(errors)}; batch {len(batch.outcome.lines)} lines, last "
        f"{list(batch.outcome.last)[:1]}, client error {batch.outcome.error}, "
        f"ended after {batch.outcome.ended_s:.1f} s"
    )
    # Answers stay correct: a stop never turns into a wrong result.
    assert "wrong answer" not in errors
    # A stop is seen as an HTTP status or a refused/closed connection, never as a timeout.
    assert not {kind for kind in errors if "Timeout" in kind}, errors
    # Sent after the stop: refused at once, or answered by HAProxy/the ingress with a status.
    assert set(errors) <= CLEAN_STOPS, errors
    outcome = batch.outcome
    assert outcome.lines, "the batch stream answered nothing"
    assert "partial line" not in outcome.last, "the stream was cut inside a line"
    indices = [line["index"] for line in outcome.lines if "index" in line]
    assert indices == list(range(len(indices))), "records came back out of order or lost"
    # Ends with the summary or an error line, or cut between lines (the gap documented above).
    assert "summary" in outcome.last or "error" in outcome.last or outcome.error, outcome


# serve_config.yaml's, shortened: the ingress drains for at most this long, so the SIGTERM case
# takes half a minute of CI time instead of a minute and a half; the behaviour is the same.
INGRESS_DRAIN_S = 20


@pytest.fixture(scope="module")
def stoppable_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    for deployment in config["applications"][0]["deployments"]:
        if deployment["name"] == "Ingress":
            deployment["graceful_shutdown_timeout_s"] = INGRESS_DRAIN_S
    path = tmp_path_factory.mktemp("shutdown-config") / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stoppable(
    tmp_path_factory: pytest.TempPathFactory, stoppable_config: Path
) -> Iterator[Service]:
    with start_service(tmp_path_factory.mktemp("shutdown"), config=stoppable_config) as service:
        yield service


def test_serve_shutdown_under_load_and_during_a_batch_stream(stoppable: Service) -> None:
    with BackgroundLoad(stoppable.url, concurrency=CONCURRENCY) as load:
        with SlowBatch(stoppable.url) as batch:
            time.sleep(3)
            sent_before = load.stats().sent
            assert sent_before > 0
            stop_at = time.monotonic()
            result = _serve_shutdown(stoppable)
            assert result.returncode == 0, result.stderr
            time.sleep(2)  # clients keep sending to the stopped application
    print(f"\nthe batch stream ended {batch.outcome.ended_at - stop_at:.1f} s after serve shutdown")
    _check("serve shutdown", load, batch, sent_before)
    # Nothing answers for the application any more, and quickly.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{stoppable.url}/livez", timeout=10).raise_for_status()


def test_sigterm_to_cleanserve_up_under_load_and_during_a_batch_stream(
    stoppable: Service, stoppable_config: Path
) -> None:
    # The same cluster, its application deployed again after the previous test's shutdown.
    port = int(stoppable.url.rsplit(":", 1)[1])
    config = load_config(LaunchOptions(config=stoppable_config, port=port))
    serve_admin.redeploy(stoppable.dashboard_url, config)
    serve_admin.wait_until(
        lambda: serve_admin.healthy(stoppable.url), timeout_s=180, what="the application back"
    )
    up = stoppable.sid
    assert up is not None
    with BackgroundLoad(stoppable.url, concurrency=CONCURRENCY) as load:
        with SlowBatch(stoppable.url) as batch:
            time.sleep(3)
            sent_before = load.stats().sent
            os.kill(up, signal.SIGTERM)
            started = time.monotonic()
            while _alive(up) and time.monotonic() - started < STOP_BOUND_S:
                time.sleep(0.5)
            stopped_s = time.monotonic() - started
    print(
        f"\ncleanserve up ended {stopped_s:.1f} s after SIGTERM; the batch stream "
        f"{batch.outcome.ended_at - started:.1f} s after it"
    )
    assert not _alive(up), f"cleanserve up still runs {STOP_BOUND_S} s after SIGTERM"
    assert "cleanserve stopped" in stoppable.log.read_text(errors="replace")
    _check("SIGTERM", load, batch, sent_before)
    # The application is deleted first and HAProxy forwards while the ingress drains: the
    # ingress notices it is being stopped and ends the stream with a line that says so.
    stop_line = {"error": STOPPING_MESSAGE, "request_id": batch.request_id}
    assert batch.outcome.last == stop_line, batch.outcome.last
    assert batch.outcome.error is None
    ingress_lines = list(log_lines(serve_logs(stoppable), "Ingress"))
    # Serve's own flag was found (stopping.replica_flag), not the slower serve.status() poll.
    assert not [line for line in ingress_lines if line.get("event") == "shutdown_watch_fallback"]
    stopped = [
        line
        for line in ingress_lines
        if line.get("event") == "batch_stopped" and line.get("request_id") == batch.request_id
    ]
    assert len(stopped) == 1 and stopped[0]["error"] == STOPPING_MESSAGE, stopped
    assert stopped[0]["records"] == len(batch.outcome.lines) - 1
    left = [proc for proc in session_processes(up) if proc.status() != "zombie"]
    assert left == [], "cleanserve up left processes behind"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (ended, not yet reaped by its parent, the test runner) has ended.
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"
