"""A /v1/batch stream when the service is stopping: `stream_batch(stop=...)` ends it after the
lines already answered instead of waiting for a stage that will not come, and
`stopping.ShutdownWatch` tells it when (tests/reliability/test_shutdown.py: a real stop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from serve_app.core.records import ParseOptions, framer_for
from serve_app.core.records.framing import Frame
from serve_app.core.uploads import ChunkAnswer
from serve_app.service import stopping
from serve_app.service.batch_stream import (
    STOPPING_MESSAGE,
    BatchLimits,
    ServiceStopping,
    stream_batch,
)
from serve_app.service.stopping import ShutdownWatch
from tests.service.test_batch_stream import NDJSON, analyze, ndjson


def test_a_stop_ends_the_stream_after_the_lines_already_answered() -> None:
    stop = asyncio.Event()
    hung: list[asyncio.Task[object]] = []
    read = 0

    async def upload() -> AsyncIterator[bytes]:
        nonlocal read
        for i in range(1000):
            read += 1
            yield ndjson([{"text": f"record {i}"}])
            await asyncio.sleep(0.001)

    calls = 0

    async def submit(frames: list[Frame]) -> ChunkAnswer:
        nonlocal calls
        calls += 1
        if calls <= 2:
            return analyze(frames)
        # A stage being stopped: the call never answers (nor fails) while the ingress runs,
        # and the notice that this replica is stopping comes a moment later.
        hung.append(asyncio.current_task())  # type: ignore[arg-type]
        asyncio.get_running_loop().call_later(0.05, stop.set)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def run() -> tuple[list[bytes], int]:
        lines = stream_batch(
            upload(),
            framer_for(NDJSON, ParseOptions(), piece_bytes=1024),
            submit=submit,
            is_retryable=lambda exc: False,
            limits=BatchLimits(chunk_bytes=64, max_in_flight=2, attempt_timeout_s=None),
            stop=stop.wait,
        )
        out: list[bytes] = []
        with pytest.raises(ServiceStopping, match=STOPPING_MESSAGE):
            async for line in lines:
                out.append(line)
        before = read
        await asyncio.sleep(0.05)
        assert read == before, "the upload is still read after the stop"
        return out, len(hung)

    out, hung_calls = asyncio.run(run())
    text = b"".join(out)
    assert text and b'"summary"' not in text  # the answered lines, no summary
    assert len(out) == 2  # the two answered chunks, whole
    assert hung_calls >= 1 and all(task.cancelled() for task in hung)


def test_a_stop_before_the_first_line_raises_at_once() -> None:
    async def never(frames: list[Frame]) -> ChunkAnswer:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def already() -> None:
        return None

    async def run() -> None:
        lines = stream_batch(
            (piece async for piece in _one(ndjson([{"text": "a"}]))),
            framer_for(NDJSON, ParseOptions(), piece_bytes=1024),
            submit=never,
            is_retryable=lambda exc: False,
            limits=BatchLimits(attempt_timeout_s=None),
            stop=already,
        )
        with pytest.raises(ServiceStopping):
            await asyncio.wait_for(anext(lines), 5)

    asyncio.run(run())


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_the_watch_polls_only_while_a_stream_waits_and_wakes_every_stream() -> None:
    polls = 0
    stopping_now = False

    async def is_stopping() -> bool:
        nonlocal polls
        polls += 1
        return stopping_now

    async def run() -> None:
        nonlocal stopping_now
        watch = ShutdownWatch(is_stopping, poll_s=0.001)
        await asyncio.sleep(0.02)
        assert polls == 0  # an idle replica pays nothing
        first = asyncio.create_task(watch.wait())
        await asyncio.sleep(0.02)
        assert polls > 0 and not first.done()
        first.cancel()  # that stream finished
        await asyncio.sleep(0.01)
        idle = polls
        await asyncio.sleep(0.02)
        assert polls <= idle + 1, "still polling with nobody waiting"
        streams = [asyncio.create_task(watch.wait()) for _ in range(3)]
        await asyncio.sleep(0.01)
        stopping_now = True
        await asyncio.wait_for(asyncio.gather(*streams), 5)
        assert watch.stopping
        await asyncio.wait_for(watch.wait(), 1)  # and a stream opened after the stop

    asyncio.run(run())


def test_outside_a_replica_there_is_no_flag_and_the_watch_never_fires() -> None:
    assert stopping.replica_flag() is None

    async def run() -> None:
        watch = stopping.watch_this_replica()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(watch.wait(), 0.05)

    asyncio.run(run())


@pytest.mark.parametrize(
    ("apps", "deleting"),
    [({"cleanserve": "RUNNING"}, False), ({"cleanserve": "DELETING"}, True), ({}, True)],
)
def test_the_fallback_reads_the_applications_status(
    monkeypatch: pytest.MonkeyPatch, apps: dict[str, str], deleting: bool
) -> None:
    from ray.serve.schema import ApplicationStatusOverview, ServeStatus

    status = ServeStatus(
        applications={
            name: ApplicationStatusOverview(
                status=state, message="", last_deployed_time_s=0, deployments={}
            )
            for name, state in apps.items()
        }
    )
    monkeypatch.setattr(stopping.serve, "status", lambda: status)
    assert stopping.application_deleting("cleanserve") is deleting


def test_the_fallback_does_not_stop_streams_when_the_controller_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreachable() -> None:
        raise ConnectionError("controller restarting")

    monkeypatch.setattr(stopping.serve, "status", unreachable)
    assert stopping.application_deleting("cleanserve") is False


@pytest.mark.parametrize("deleting", [False, True])
def test_a_stopping_replica_ends_streams_only_when_its_application_goes(
    monkeypatch: pytest.MonkeyPatch, deleting: bool
) -> None:
    """A redeploy or downscale stops the replica but keeps the stages: the stream goes on."""

    class Context:
        app_name = "cleanserve"

    monkeypatch.setattr(stopping, "replica_flag", lambda: lambda: True)
    monkeypatch.setattr(stopping.serve, "get_replica_context", Context)
    monkeypatch.setattr(stopping, "application_deleting", lambda app: deleting)

    async def run() -> bool:
        watch = stopping.watch_this_replica(poll_s=0.01)
        try:
            await asyncio.wait_for(watch.wait(), 0.2)
        except TimeoutError:
            return False
        return True

    assert asyncio.run(run()) is deleting
