"""Group commit for real-time requests: one downstream call carries every request that arrived
while the previous calls were in flight.

`@serve.batch` waits up to a timeout for a batch to fill. Under a closed-loop load (N clients,
each waiting for its answer) few requests arrive within any short timeout, so batches stay
small and every request pays the wait. Group commit never waits: an idle batcher sends a
request at once, and a busy one sends whatever queued up meanwhile, so batches grow exactly
as load grows. Measured on 2 CPUs, 32 connections: see docs/performance.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitter(Generic[T, R]):
    def __init__(
        self,
        call: Callable[[list[T]], Awaitable[list[R]]],
        *,
        max_batch: int = 64,
        max_in_flight: int = 2,
    ) -> None:
        self._call = call
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight = 0

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._in_flight < self.max_in_flight:
            self._launch()
        return await future

    def _launch(self) -> None:
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        self._in_flight += 1
        asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            live = [(item, fut) for item, fut in batch if not fut.done()]
            if live:
                try:
                    results = await self._call([item for item, _ in live])
                    if len(results) != len(live):
                        raise RuntimeError(f"{len(results)} results for {len(live)} requests")
                except Exception as exc:
                    for _, fut in live:
                        if not fut.done():
                            fut.set_exception(exc)
                else:
                    for (_, fut), result in zip(live, results, strict=True):
                        if not fut.done():
                            fut.set_result(result)
        finally:
            self._in_flight -= 1
            if self._queue:
                self._launch()
