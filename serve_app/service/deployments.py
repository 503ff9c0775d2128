"""TextCleaner and WordCounter: thin Serve deployments over the pure core.

Every method takes a list of texts, so one handle call can carry many requests (the ingress
batches real-time requests and sends bulk records in chunks): Serve's per-call overhead is
what dominates on a small machine, not the text work. Options come either as one value for
the whole list or as one value per text.

Real-time methods are `async def`: a batch of short texts takes well under a millisecond, and
running it on the replica's event loop saves Serve's hop to a worker thread and back
(docs/performance.md). Bulk methods (`*_chunk`) stay synchronous: a ~4 MB chunk takes tens to
hundreds of milliseconds, and in Serve's worker thread it shares the GIL with real-time calls
instead of holding up the event loop they arrive on.

`/v1/analyze` is served by `WordCounter.clean_and_count` alone (cleaning, then counting, in one
call): on 2 CPUs a hop costs more than the text work of a whole batch, and one hop instead of two
is the largest single gain measured for /v1/analyze (docs/performance.md). Bulk chunks go
in one hop too, `WordCounter.analyze_chunk`: raw bytes in, parsed, cleaned, counted and
encoded; two hops (`TextCleaner.clean_chunk`, then `WordCounter.count_chunk`, kept for
`loadtests.bench.hops`) were slower (docs/performance.md): the second hop moves every record
through the ingress and back, and the 2 WordCounter replicas already keep both CPUs busy.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Sequence
from typing import Any, TypeVar

from ray import serve

from serve_app.core import cleaning, counting, packed_summary, summary_parts, uploads
from serve_app.core.analysis import review
from serve_app.core.pipeline import BulkOptions
from serve_app.core.records import ParseOptions
from serve_app.core.records.framing import Frame
from serve_app.core.uploads import ChunkAnswer
from serve_app.core.userwords import Dictionary
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


def check_user_config(deployment: str, config: dict[str, Any]) -> None:
    """serve_config.yaml's user_config reaches `reconfigure`. Nothing is tunable there yet, so
    a key set in it would be ignored without a word: refuse it, and the deploy fails loudly."""
    if config:
        raise ValueError(f"{deployment}: user_config takes no keys yet, got {sorted(config)}")


@serve.deployment
class TextCleaner:
    def __init__(self) -> None:
        cleaning.warm_up()  # once per replica, not on the first request
        self._metrics = DeploymentMetrics()
        start_log_flusher()

    def reconfigure(self, config: dict[str, Any]) -> None:
        check_user_config("TextCleaner", config)

    async def clean(
        self, texts: list[str], options: cleaning.CleanOptions | Sequence[cleaning.CleanOptions]
    ) -> list[str]:
        """Clean a batch of real-time texts."""
        with self._metrics.timed(len(texts), sum(map(len, texts))):
            return _clean_all(texts, options)

    def clean_chunk(
        self, frames: list[Frame], parse: ParseOptions, options: cleaning.CleanOptions
    ) -> uploads.CleanedChunk:
        """Parse and clean one bulk chunk of raw frames: the first of two hops, which
        /v1/batch does not take (see the module docstring); kept for loadtests.bench.hops."""
        with self._metrics.timed(len(frames), sum(frame.nbytes for frame in frames)):
            return uploads.clean_chunk(frames, parse, options)

    def check_health(self) -> None:
        # A wedged replica cannot run even this: Serve restarts it.
        if cleaning.clean(" ok ") != "ok":
            raise RuntimeError("cleaning core answers wrongly")


@functools.lru_cache(maxsize=256)
def _with_dictionary(
    options: counting.CountOptions, dictionary: Dictionary
) -> counting.CountOptions:
    """The request's options plus the deployment's words (cached: one merge per distinct pair)."""
    if not dictionary.user_words and not dictionary.extra_stopwords:
        return options
    return dataclasses.replace(
        options,
        user_words=dictionary.user_words + options.user_words,
        extra_stopwords=dictionary.extra_stopwords + options.extra_stopwords,
    )


def _count_dict(text: str, options: counting.CountOptions) -> dict[str, Any]:
    counts = _counts_dict(counting.count(text, options))
    if options.offsets:
        counts["tokens"] = counting.token_offsets(text, options)
    return counts


@serve.deployment
class WordCounter:
    def __init__(self) -> None:
        # Load the dictionary segmenter and the cleaner's tables now, once per replica, not on
        # the first request (this replica cleans too: analyze, bulk chunks).
        counting.warm_up()
        cleaning.warm_up()
        self._metrics = DeploymentMetrics()
        start_log_flusher()
        self._node_id = _node_id()
        self._dictionary = Dictionary()
        self._analysis_ready = False

    def reconfigure(self, config: dict[str, Any]) -> None:
        """serve_config.yaml's user_config: `user_words` and `extra_stopwords`, added to every
        request's. `serve deploy` with a changed user_config calls this on every running replica
        (no restart); a wrong config raises here, with a message naming what is wrong."""
        self._dictionary = Dictionary.from_config(config)

    def dictionary(self) -> dict[str, list[str]]:
        """The words this replica adds to every request (for operators and tests)."""
        return {
            "user_words": list(self._dictionary.user_words),
            "extra_stopwords": list(self._dictionary.extra_stopwords),
        }

    def _options(self, options: counting.CountOptions) -> counting.CountOptions:
        return _with_dictionary(options, self._dictionary)

    def _analysis(self, options: review.AnalysisOptions | None) -> review.AnalysisOptions | None:
        if options is None or not options.any:
            return None
        if not self._analysis_ready:  # the models load on the first request that asks (~1 s)
            review.warm_up()
            self._analysis_ready = True
        return options

    async def count(
        self, texts: list[str], options: counting.CountOptions | Sequence[counting.CountOptions]
    ) -> list[dict[str, Any]]:
        per_text = _per_text(options, len(texts))
        with self._metrics.timed(len(texts), sum(map(len, texts))):
            return [
                _count_dict(text, self._options(opts))
                for text, opts in zip(texts, per_text, strict=True)
            ]

    async def clean_and_count(
        self,
        texts: list[str],
        clean_options: cleaning.CleanOptions | Sequence[cleaning.CleanOptions],
        count_options: counting.CountOptions | Sequence[counting.CountOptions],
        analysis_options: review.AnalysisOptions
        | Sequence[review.AnalysisOptions | None]
        | None = None,
    ) -> list[dict[str, Any]]:
        """Clean, then count, a batch of real-time texts: the full analysis, text included."""
        per_text = _per_text(count_options, len(texts))
        per_text_analysis = _per_text(analysis_options, len(texts))
        with self._metrics.timed(len(texts), sum(map(len, texts))):
            cleaned = _clean_all(texts, clean_options)
            results = []
            for text, opts, analysis in zip(cleaned, per_text, per_text_analysis, strict=True):
                result = {
                    "text": text,
                    "char_count": len(text),
                    **_count_dict(text, self._options(opts)),
                }
                if (wanted := self._analysis(analysis)) is not None:
                    result.update(review.analyze(text, wanted))
                results.append(result)
            return results

    def _bulk(self, options: BulkOptions) -> BulkOptions:
        """The deployment's words added; the analysis models loaded if the options ask."""
        self._analysis(options.analysis)
        return dataclasses.replace(options, count=self._options(options.count))

    def analyze_chunk(
        self, frames: list[Frame], parse: ParseOptions, options: BulkOptions
    ) -> ChunkAnswer:
        """Parse, clean and count one bulk chunk of raw frames (`core.uploads`): NDJSON lines
        ready to write and the chunk's partial summary."""
        started = time.perf_counter()
        answer = uploads.analyze_chunk(frames, parse, self._bulk(options))
        # How many texts and characters is known only once the frames are parsed.
        metrics = self._metrics
        metrics.core_seconds.observe(time.perf_counter() - started)
        totals = packed_summary.totals(answer.summary)
        if texts := totals.ok:
            metrics.texts.inc(texts)
        if chars := totals.total_chars:
            metrics.chars.inc(chars)
        metrics.call_size.observe(texts)
        return dataclasses.replace(answer, node_id=self._node_id)

    def count_chunk(self, chunk: uploads.CleanedChunk, options: BulkOptions) -> ChunkAnswer:
        """Count a chunk TextCleaner.clean_chunk cleaned: the second of two hops."""
        with self._metrics.timed(len(chunk.records), 0):
            answer = uploads.count_chunk(chunk, self._bulk(options))
        return dataclasses.replace(answer, node_id=self._node_id)

    def merge_summaries(
        self, items: list[summary_parts.Leaf | summary_parts.Split], parts: int
    ) -> summary_parts.Split:
        """Chunks' packed summaries (or ranges of them) merged in their order and split by
        word in `parts`: an upload's summary is merged here, by the replicas, not in the
        ingress (`service.summary_merges`)."""
        return summary_parts.merge_ranges(items, parts)

    def summary_head(
        self, items: list[summary_parts.Leaf | bytes], part: int, parts: int, top_n: int
    ) -> dict[str, Any]:
        """One part of an upload's last merge (`summary_parts.reduce`): its distinct words and
        top words, the totals in part 0; the ingress combines the parts."""
        return summary_parts.reduce(items, top_n, part=part, parts=parts)

    def check_health(self) -> None:
        if counting.count("ok ok").word_count != 2:
            raise RuntimeError("counting core answers wrongly")


def _counts_dict(counts: counting.WordCounts) -> dict[str, Any]:
    return {
        "word_count": counts.word_count,
        "unique_words": counts.unique_words,
        "word_counts": counts.word_counts,
    }
