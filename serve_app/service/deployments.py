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

import dataclasses
import functools
import os
from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
from ray import serve

from serve_app.core import cleaning, counting
from serve_app.core.analysis import boilerplate, dedup, review
from serve_app.core.summary import Summary
from serve_app.core.userwords import Dictionary
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
        # Load the dictionary segmenter now, once per replica, not on the first request.
        counting.warm_up()
        self._metrics = DeploymentMetrics()
        self._node_id = _node_id()
        self._dictionary = Dictionary()
        self._analysis_ready = False

    def reconfigure(self, config: dict[str, Any]) -> None:
        """serve_config.yaml's user_config: `user_words` and `extra_stopwords`, added to every
        request's. `serve deploy` with a changed user_config calls this on every running replica
        (no restart); a wrong config raises here, with a message naming what is wrong."""
        self._dictionary = Dictionary.from_config(config)
        self._config = dict(config)

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

    async def analyze(
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

    def analyze_chunk(
        self,
        cleaned: list[str],
        options: counting.CountOptions,
        *,
        include: frozenset[str] | None,
        analysis: review.AnalysisOptions | None = None,
        flags: dedup.DedupOptions | None = None,
    ) -> tuple[Any, ...]:
        """Analyze one bulk chunk: per-record results as JSON objects (only the `include`d
        fields; None for none) and the chunk's partial summary, reduced from the full
        (untruncated) counts.

        With `flags`, boilerplate is flagged (and left out of the counts) here; duplicates need
        the whole upload, so a fourth element carries each text's signature (and, to leave
        duplicates out of the counts, its words) to the ingress, which sees records in order."""
        summary = Summary()
        results: list[bytes] | None = [] if include is None or include else None
        wanted = self._analysis(analysis)
        flags = flags if flags is not None and flags.any else None
        signatures: list[tuple[bytes, bytes | None]] = []
        record_words: list[tuple[int, dict[str, int]] | None] = []
        with self._metrics.timed(len(cleaned), sum(map(len, cleaned))):
            for text, (counts, full) in zip(
                cleaned, counting.count_with_full(cleaned, self._options(options)), strict=True
            ):
                char_count = len(text)
                default_review = False
                if flags is not None and flags.boilerplate:
                    default_review = boilerplate.is_boilerplate(text)
                    summary.add_flags(boilerplate=default_review)
                if default_review and flags is not None and flags.exclude_from_counts:
                    summary.add_result(char_count=char_count, word_count=0, word_counts={})
                else:
                    summary.add_result(
                        char_count=char_count, word_count=counts.word_count, word_counts=full
                    )
                if flags is not None and flags.duplicates:
                    sig = dedup.signature(text)
                    signatures.append((sig.exact, sig.minhash))
                    if flags.exclude_from_counts:
                        # already left out when boilerplate: the ingress must not do it twice
                        record_words.append(
                            None if default_review else (counts.word_count, dict(full))
                        )
                extra = review.analyze(text, wanted) if wanted is not None else {}
                if extra:
                    summary.add_analysis(extra)
                if results is not None:
                    row = {"text": text, "char_count": char_count, **_counts_dict(counts), **extra}
                    if include is not None:
                        row = {k: v for k, v in row.items() if k in include}
                    if default_review:
                        row["boilerplate"] = True
                    results.append(orjson.dumps(row))
        if flags is not None and flags.duplicates:
            marks = {"signatures": signatures, "words": record_words or None}
            return results, summary.to_state(), self._node_id, marks
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
