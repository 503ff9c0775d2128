import asyncio

import pytest

from serve_app.service.microbatch import GroupCommitter


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_an_idle_batcher_sends_at_once_and_a_busy_one_groups_what_queued() -> None:
    calls: list[list[int]] = []
    gate = asyncio.Event()

    async def call(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            await gate.wait()
        return [i * 10 for i in items]

    async def scenario() -> list[int]:
        batcher = GroupCommitter(call, max_batch=100, max_in_flight=1)
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0)
        rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 6)]
        await asyncio.sleep(0)
        gate.set()
        return [await t for t in [first, *rest]]

    assert run(scenario()) == [0, 10, 20, 30, 40, 50]
    assert calls == [[0], [1, 2, 3, 4, 5]]


def test_batches_never_exceed_max_batch_and_results_match_their_requests() -> None:
    sizes: list[int] = []

    async def call(items: list[int]) -> list[int]:
        sizes.append(len(items))
        await asyncio.sleep(0.001)
        return [-i for i in items]

    async def scenario() -> list[int]:
        batcher = GroupCommitter(call, max_batch=7, max_in_flight=2)
        return list(await asyncio.gather(*(batcher.submit(i) for i in range(100))))

    assert run(scenario()) == [-i for i in range(100)]
    assert max(sizes) <= 7 and sum(sizes) == 100


def test_a_failed_call_fails_its_requests_only_and_the_batcher_goes_on() -> None:
    async def call(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky")
        return items

    async def scenario() -> tuple[object, int]:
        batcher = GroupCommitter(call, max_batch=1, max_in_flight=1)
        bad = await asyncio.gather(batcher.submit(13), return_exceptions=True)
        return bad[0], await batcher.submit(14)

    error, good = run(scenario())
    assert isinstance(error, ValueError) and good == 14


def test_a_cancelled_request_is_not_sent() -> None:
    seen: list[list[int]] = []
    gate = asyncio.Event()

    async def call(items: list[int]) -> list[int]:
        seen.append(items)
        if items == [1]:
            await gate.wait()
        return items

    async def scenario() -> int:
        batcher = GroupCommitter(call, max_batch=10, max_in_flight=1)
        first = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0)
        doomed = asyncio.create_task(batcher.submit(2))
        kept = asyncio.create_task(batcher.submit(3))
        await asyncio.sleep(0)
        doomed.cancel()
        gate.set()
        await first
        with pytest.raises(asyncio.CancelledError):
            await doomed
        return await kept

    assert run(scenario()) == 3
    assert seen == [[1], [3]]


def test_a_wrong_number_of_results_is_an_error_not_a_mismatch() -> None:
    async def call(items: list[int]) -> list[int]:
        return items[:-1]

    async def scenario() -> None:
        batcher = GroupCommitter(call, max_batch=10, max_in_flight=1)
        await batcher.submit(1)

    with pytest.raises(RuntimeError, match="0 results for 1 requests"):
        run(scenario())
