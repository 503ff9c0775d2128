"""The ingress's real-time handle call: sent once more when its replica died, and counted."""

import asyncio

import pytest
import ray.exceptions

from serve_app.service.ingress import _call_downstream


def run(call, **kwargs):  # type: ignore[no-untyped-def]
    return asyncio.run(_call_downstream(call, timeout_s=5, **kwargs))


def test_a_call_whose_replica_died_is_sent_again_and_counted() -> None:
    calls, retries = 0, []

    async def dies_once() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ray.exceptions.ActorUnavailableError("replica gone", None)
        return "answer"

    assert run(dies_once, on_retry=lambda: retries.append(1)) == "answer"
    assert calls == 2 and retries == [1]


def test_a_call_that_fails_otherwise_is_neither_retried_nor_counted() -> None:
    retries = []

    async def wrong() -> str:
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        run(wrong, on_retry=lambda: retries.append(1))
    assert retries == []
