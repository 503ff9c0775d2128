"""The replica-side probes of memgrowth.py, run in this process, and its slope report."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest

from serve_app.ops.loadtest import memgrowth

held: list[bytes] = []


@pytest.fixture
def tracing() -> Iterator[None]:
    was_tracing = tracemalloc.is_tracing()
    yield
    held.clear()
    if not was_tracing:
        tracemalloc.stop()


def test_growth_names_the_line_that_keeps_memory(tracing: None) -> None:
    memgrowth.start_tracing()
    before = memgrowth.measure()
    held.extend(bytes(1000) + bytes([i % 256]) for i in range(3000))  # ~3 MB kept: a "leak"
    after = memgrowth.measure()
    [(where, mb, blocks), *_] = memgrowth.growth(top=3)
    assert where.startswith(__file__) and mb > 2.5 and blocks >= 3000
    assert after["python"] - before["python"] > 2.5
    assert after["heap_used"] - before["heap_used"] > 2.5  # glibc saw the same bytes


def test_trim_reports_rss_before_and_after() -> None:
    trimmed = memgrowth.trim()
    assert trimmed["rss_before"] > 0 and trimmed["rss_after"] > 0


def test_report_gives_each_measures_slope_per_thousand_requests_over_the_second_half() -> None:
    rows = [
        {
            "requests": 1000 * i,
            # Warm-up in the first half only, then a 2 MB per 1,000 requests climb.
            "replicas": {"WordCounter#a": {"rss": 100.0 + (50 if i > 0 else 0) + 2 * i}},
        }
        for i in range(10)
    ]
    slopes = memgrowth.report(rows)
    assert slopes == {"WordCounter#a": {"rss": pytest.approx(2.0)}}
