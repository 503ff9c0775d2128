"""TextCleaner and WordCounter: thin Serve deployments over the pure core.

Every method takes a list of texts, so one handle call can carry many requests (the ingress
batches real-time requests and sends bulk records in chunks): Serve's per-call overhead is
what dominates on a small machine, not the text work. Options come either as one value for
the whole list or as one value per text.

Real-time methods are `async def`: a batch of short texts takes well under a millisecond, and
running it on the replica's event loop saves Serve's hop to a worker thread and back (measured:
README, "Performance"). Bulk methods (`*_chunk`) stay synchronous: a ~1 MB chunk takes tens to
hundreds of milliseconds, and in Serve's worker thread it shares the GIL with real-time calls
instead of holding up the event loop they arrive on.

`/v1/analyze` is served by `WordCounter.analyze` alone (cleaning, then counting, in one call):
on 2 CPUs a hop costs more than the text work of a whole batch, and one hop instead of two
is the largest single gain measured for /v1/analyze (README, "Performance"). Bulk chunks,
where a hop's cost is spread over a megabyte, still go TextCleaner -> WordCounter, so each
stage scales on its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
from ray import serve

from serve_app.core import cleaning, counting
from serve_app.core.summary import Summary
from serve_app.service.logs import start_log_flusher
from serve_app.service.metrics import DeploymentMetrics

T = TypeVar("T")


def _per_text(options: T | Sequence[T], n: int) -> Sequence[T]:
    if isinstance(options, list | tuple):
        if len(options) != n:
            raise ValueError(f"got {len(options)} option sets for {n} texts")
        return options
    return [options] * n  # type: ignore[list-item]


def _clean_all(
    texts: list[str], options: cleaning.CleanOptions | Sequence[cleaning.CleanOptions]
) -> list[str]:
    per_text = _per_text(options, len(texts))
    return [cleaning.clean(text, opts) for text, opts in zip(texts, per_text, strict=True)]


def _node_id() -> str:
    import ray

    # Outside Ray (unit tests) there is no node, and asking the runtime context would start
    # a local Ray instance.
    if ray.is_initialized():
        return ray.get_runtime_context().get_node_id()
    return os.uname().nodename


@serve.deployment
class TextCleaner:
    def __init__(self) -> None:
        self._metrics = DeploymentMetrics()
        start_log_flusher()

    def reconfigure(self, config: dict[str, Any]) -> None:
        # No tunables yet beyond what the options carry; kept so serve_config.yaml's
        # user_config can grow without a code change to the wiring.
        self._config = dict(config)

    async def clean(
        self, texts: list[str], options: cleaning.CleanOptions | Sequence[cleaning.CleanOptions]
    ) -> list[str]:
        """Clean a batch of real-time texts."""
        with self._metrics.timed(len(texts), sum(map(len, texts))):
            return _clean_all(texts, options)

    def clean_chunk(self, texts: list[str], options: cleaning.CleanOptions) -> list[str]:
        """Clean one bulk chunk."""
        with self._metrics.timed(len(texts), sum(map(len, texts))):
            return _clean_all(texts, options)

    def check_health(self) -> None:
        # A wedged replica cannot run even this: Serve restarts it.
        if cleaning.clean(" ok ") != "ok":
            raise RuntimeError("cleaning core answers wrongly")


@serve.deployment
class WordCounter:
    def __init__(self) -> None:
        # Load the dictionary segmenter now, once per replica, not on the first request.
        counting.warm_up()
        self._metrics = DeploymentMetrics()
        start_log_flusher()
        self._node_id = _node_id()

    def reconfigure(self, config: dict[str, Any]) -> None:
        self._config = dict(config)

    async def count(
        self, texts: list[str], options: counting.CountOptions | Sequence[counting.CountOptions]
    ) -> list[dict[str, Any]]:
        per_text = _per_text(options, len(texts))
        with self._metrics.timed(len(texts), sum(map(len, texts))):
            return [
                _counts_dict(counting.count(text, opts))
                for text, opts in zip(texts, per_text, strict=True)
            ]

    async def analyze(
        self,
        texts: list[str],
        clean_options: cleaning.CleanOptions | Sequence[cleaning.CleanOptions],
        count_options: counting.CountOptions | Sequence[counting.CountOptions],
    ) -> list[dict[str, Any]]:
        """Clean, then count, a batch of real-time texts: the full analysis, text included."""
        per_text = _per_text(count_options, len(texts))
        with self._metrics.timed(len(texts), sum(map(len, texts))):
            cleaned = _clean_all(texts, clean_options)
            return [
                {"text": text, "char_count": len(text), **_counts_dict(counting.count(text, opts))}
                for text, opts in zip(cleaned, per_text, strict=True)
            ]

    def analyze_chunk(
        self,
        cleaned: list[str],
        options: counting.CountOptions,
        *,
        include: frozenset[str] | None,
    ) -> tuple[list[bytes] | None, dict[str, Any], str]:
        """Analyze one bulk chunk: per-record results as JSON objects (only the `include`d
        fields; None for none) and the chunk's partial summary, reduced from the full
        (untruncated) counts."""
        summary = Summary()
        results: list[bytes] | None = [] if include is None or include else None
        with self._metrics.timed(len(cleaned), sum(map(len, cleaned))):
            for text, (counts, full) in zip(
                cleaned, counting.count_with_full(cleaned, options), strict=True
            ):
                char_count = len(text)
                summary.add_result(
                    char_count=char_count, word_count=counts.word_count, word_counts=full
                )
                if results is not None:
                    row = {"text": text, "char_count": char_count, **_counts_dict(counts)}
                    if include is not None:
                        row = {k: v for k, v in row.items() if k in include}
                    results.append(orjson.dumps(row))
        return results, summary.to_state(), self._node_id

    def check_health(self) -> None:
        if counting.count("ok ok").word_count != 2:
            raise RuntimeError("counting core answers wrongly")


def _counts_dict(counts: counting.WordCounts) -> dict[str, Any]:
    return {
        "word_count": counts.word_count,
        "unique_words": counts.unique_words,
        "word_counts": counts.word_counts,
    }
