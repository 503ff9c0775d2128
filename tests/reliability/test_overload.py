"""Past capacity, clients get a fast 503 with Retry-After instead of an unbounded wait.

With HAProxy in front (direct ingress), the ingress replica itself refuses a request once
max_queued_requests are already waiting for one of its max_ongoing_requests slots:
Serve answers `backpressure_config.status_code` with `Retry-After: retry_after_s` and the
text/plain body "Request dropped due to backpressure", before any of our code runs.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter

import httpx
import pytest

from tests.reliability import conftest as settings
from tests.reliability.conftest import Guarded

pytestmark = pytest.mark.reliability

BURST = 300
TEXT = "the quick brown fox jumps over the lazy dog 物流很快 包装很好 " * 300  # ~20 KB


async def _burst(guarded: Guarded) -> list[tuple[int, str | None, float]]:
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=guarded.url, headers=guarded.headers, timeout=120, limits=limits
    ) as http:

        async def one(i: int) -> tuple[int, str | None, float]:
            started = time.monotonic()
            response = await http.post("/v1/analyze", json={"text": f"{i} {TEXT}"})
            return (
                response.status_code,
                response.headers.get("retry-after"),
                time.monotonic() - started,
            )

        return await asyncio.gather(*(one(i) for i in range(BURST)))


def test_a_burst_past_capacity_gets_503_with_retry_after_and_the_rest_succeed(
    guarded: Guarded,
) -> None:
    guarded.deploy()  # the file's settings (another test may have redeployed)
    results = asyncio.run(_burst(guarded))
    statuses = Counter(status for status, _, _ in results)
    rejected = [(retry, seconds) for status, retry, seconds in results if status == 503]
    served = [seconds for status, _, seconds in results if status == 200]
    print(
        f"\nburst of {BURST} concurrent /v1/analyze (~20 KB) against an ingress with "
        f"max_ongoing_requests={settings.INGRESS_MAX_ONGOING}, "
        f"max_queued_requests={settings.INGRESS_MAX_QUEUED}: {dict(statuses)}; "
        f"503 answered in median {statistics.median([s for _, s in rejected] or [0.0]):.2f} s,"
        f" 200 in median {statistics.median(served or [0.0]):.2f} s"
    )
    assert set(statuses) <= {200, 503}, statuses
    assert rejected and served, statuses
    assert all(retry == "1" for retry, _ in rejected)  # backpressure_config.retry_after_s
    with httpx.Client(base_url=guarded.url, headers=guarded.headers, timeout=60) as http:
        assert http.get("/healthz").status_code == 200
