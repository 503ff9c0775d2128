"""Custom Prometheus metrics, exported through Ray's metrics agent beside Serve's own.

Serve adds the deployment, replica and application tags; we add what the text work is:
texts and characters processed, chunk sizes, per-record errors and time in the core.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from ray.serve import metrics

_SIZE_BUCKETS = [1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0]
_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0]


class DeploymentMetrics:
    """What one TextCleaner or WordCounter replica reports."""

    def __init__(self) -> None:
        # Serve tags every sample with its deployment and replica; that says which stage.
        self.texts = metrics.Counter("cleanserve_texts_processed", "Texts processed by the core.")
        self.chars = metrics.Counter(
            "cleanserve_chars_processed", "Characters processed by the core."
        )
        self.call_size = metrics.Histogram(
            "cleanserve_texts_per_call",
            "Texts carried by one handle call (batched requests or a bulk chunk).",
            boundaries=_SIZE_BUCKETS,
        )
        self.core_seconds = metrics.Histogram(
            "cleanserve_core_seconds",
            "Time spent in the pure cleaning/tokenizing core per call.",
            boundaries=_SECONDS_BUCKETS,
        )

    @contextmanager
    def timed(self, texts: int, chars: int) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.core_seconds.observe(time.perf_counter() - start)
        # Ray's counters refuse an increment of 0 (an empty text is a valid request).
        if texts:
            self.texts.inc(texts)
        if chars:
            self.chars.inc(chars)
        self.call_size.observe(texts)


class IngressMetrics:
    """What the ingress reports about bulk uploads and about calls it sends again."""

    def __init__(self) -> None:
        self.records = metrics.Counter(
            "cleanserve_batch_records", "Bulk records answered, by outcome.", tag_keys=("outcome",)
        )
        self.chunk_records = metrics.Histogram(
            "cleanserve_batch_chunk_records",
            "Records per bulk chunk sent to the workers.",
            boundaries=_SIZE_BUCKETS,
        )
        self.retries = metrics.Counter(
            "cleanserve_batch_chunk_retries", "Bulk chunks sent again after a replica failure."
        )
        self.realtime_retries = metrics.Counter(
            "cleanserve_realtime_retries",
            "Real-time groups sent again after a replica failure.",
        )


_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
_LATENCY_BUCKETS += [30.0, 60.0, 300.0]  # /v1/batch streams run for minutes


class RouteLatency:
    """Per-route latency at the ingress, by route and status class.

    Serve's own ray_serve_http_request_latency_ms has one route in HAProxy mode (the
    application's prefix, "/"), so it cannot tell /v1/analyze from /v1/batch. Created empty
    at import (the middleware is declared with the app), started by the ingress replica.
    """

    def __init__(self) -> None:
        self._histogram: metrics.Histogram | None = None
        self._routes: frozenset[str] = frozenset()

    def start(self, routes: frozenset[str]) -> None:
        # Known routes only: a tag per scanned path would grow the series without bound.
        self._routes = routes
        self._histogram = metrics.Histogram(
            "cleanserve_request_seconds",
            "Time from request to the last byte of the answer, at the ingress.",
            boundaries=_LATENCY_BUCKETS,
            # Ray annotates tag_keys as Tuple[str], a 1-tuple; any number of keys works.
            tag_keys=("route", "method", "status"),  # type: ignore[arg-type]
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        if self._histogram is None:
            return
        self._histogram.observe(
            seconds,
            tags={
                "route": route if route in self._routes else "other",
                "method": method,
                "status": f"{status // 100}xx",
            },
        )
