"""Single-core throughput of the pure core, against the original script's pipeline, in one run.

    python -m loadtests.microbench [--mb 4] [--files 16] [--seed 0] [--repeat 3]

Two tables, each timed in CPU seconds of this process (best of --repeat, the operations taking
turns round by round), so that other work on a shared machine disturbs the figures as little as
it can; MB are of UTF-8 input.

1. Whole files, seed-shaped (`loadtests.bench.corpus`: one JSON file per review dump, 50-500 KB,
   held in memory): the original script's pipeline (`json.loads`, `replace`/`strip`, `split`,
   a dict loop, the Counter aggregate) against the core's seed-compatible and standard modes
   (`orjson.loads`, then `pipeline.analyze_records` on ~1 MB chunks, as the bulk paths run
   it), and each step of the standard mode alone. Ratios are to the original pipeline.
2. Short generated reviews (20-400 characters), one call per review, as the real-time API runs
   them. Ratios are to the seed script's per-text one-liner.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from loadtests.bench.corpus import CorpusSpec, encode, texts
from serve_app.core import cleaning, counting, segmentation
from serve_app.core.pipeline import BulkOptions, analyze_records
from serve_app.core.records import Record
from serve_app.core.summary import Summary
from serve_app.ops.loadtest.textgen import ReviewGenerator

CHUNK_BYTES = 1_000_000

SEED_CLEAN = cleaning.CleanOptions(preset="minimal")
SEED_COUNT = counting.CountOptions(tokenizer="whitespace", lowercase=False)
STANDARD_CLEAN = cleaning.CleanOptions()
STANDARD_COUNT = counting.CountOptions()


@dataclass(frozen=True)
class Result:
    name: str
    mb_per_s: float
    ratio: float


def short_reviews(megabytes: float, seed: int) -> list[str]:
    gen = ReviewGenerator(seed)
    reviews: list[str] = []
    size = 0
    while size < megabytes * 1e6:
        reviews.append(gen.short())
        size += len(reviews[-1].encode("utf-8"))
    return reviews


def seed_files(files: int, seed: int) -> list[bytes]:
    return [encode(text) for text in texts(CorpusSpec(files=files, seed=seed))]


# --- the original script, as loadtests.bench.seed_wordcount runs it, minus the disk -----------


def original_pipeline(files: Sequence[bytes]) -> dict[str, Any]:
    all_words: Counter[str] = Counter()
    total_chars = total_words = 0
    for data in files:
        text = json.loads(data)["text"].replace("\n", " ").strip()
        words = text.split()
        word_counts: dict[str, int] = {}
        for word in words:
            word_counts[word] = word_counts.get(word, 0) + 1
        total_chars += len(text)
        total_words += len(words)
        all_words.update(word_counts)
    return {
        "total_chars": total_chars,
        "total_words": total_words,
        "top": all_words.most_common(10),
    }


def seed_one_liner(text: str) -> dict[str, int]:
    cleaned = text.replace("\n", " ").strip()
    counts: dict[str, int] = {}
    for word in cleaned.split():
        counts[word] = counts.get(word, 0) + 1
    return counts


# --- the core ----------------------------------------------------------------------------------


def core_pipeline(
    files: Sequence[bytes], clean: cleaning.CleanOptions, count: counting.CountOptions
) -> dict[str, Any]:
    """Files parsed with orjson into records, analyzed in ~1 MB chunks as /v1/batch and the
    bulk jobs do (`pipeline.analyze_records`, summary only), the partial summaries merged, and
    the figures the original script gives (totals, top words) taken from the result."""
    options = BulkOptions(clean=clean, count=count, include=frozenset())
    summary = Summary()
    chunk: list[Record] = []
    size = 0
    for index, data in enumerate(files):
        chunk.append(Record(index, None, None, orjson.loads(data)["text"], None, len(data)))
        size += len(data)
        if size >= CHUNK_BYTES:
            summary.merge(analyze_records(chunk, options).summary)
            chunk, size = [], 0
    if chunk:
        summary.merge(analyze_records(chunk, options).summary)
    return summary.to_dict(10)


def best_cpu_seconds(works: Sequence[Callable[[], object]], repeat: int) -> list[float]:
    """Each work's best CPU time, the works taking turns round by round: a change in the
    machine's load falls on all of them alike, not on whichever ran during it. Each work starts
    with the tokenizer's remembered pieces forgotten, so that a round does not profit from the
    corpus having been seen in the round before (real input is new)."""
    best = [float("inf")] * len(works)
    for _ in range(repeat):
        for index, work in enumerate(works):
            segmentation.forget()
            start = time.process_time()
            work()
            best[index] = min(best[index], time.process_time() - start)
    return best


def file_results(files: Sequence[bytes], repeat: int) -> list[Result]:
    megabytes = sum(map(len, files)) / 1e6
    parsed = [orjson.loads(data)["text"] for data in files]
    cleaned = [cleaning.clean(text) for text in parsed]
    words = [counting.tokenize(text) for text in cleaned]

    def summarize() -> None:
        summary = Summary()
        for text, found in zip(cleaned, words, strict=True):
            summary.add_words(char_count=len(text), words=found)

    cases: list[tuple[str, Callable[[], object]]] = [
        ("original script pipeline (baseline)", lambda: original_pipeline(files)),
        ("core seed-compatible pipeline", lambda: core_pipeline(files, SEED_CLEAN, SEED_COUNT)),
        (
            "core standard pipeline",
            lambda: core_pipeline(files, STANDARD_CLEAN, STANDARD_COUNT),
        ),
        ("  step: orjson.loads", lambda: [orjson.loads(data) for data in files]),
        ("  step: clean, standard", lambda: [cleaning.clean(text) for text in parsed]),
        ("  step: tokenize, auto", lambda: [counting.tokenize(text) for text in cleaned]),
        ("  step: Summary.add_words", summarize),
    ]
    seconds = best_cpu_seconds([work for _, work in cases], repeat)
    speeds = [(name, megabytes / s) for (name, _), s in zip(cases, seconds, strict=True)]
    baseline = speeds[0][1]
    return [Result(name, speed, speed / baseline) for name, speed in speeds]


def short_results(reviews: Sequence[str], repeat: int) -> list[Result]:
    megabytes = sum(len(t.encode("utf-8")) for t in reviews) / 1e6
    unicode = counting.CountOptions(tokenizer="unicode")
    per_text: list[tuple[str, Callable[[str], object]]] = [
        ("seed one-liner (baseline)", seed_one_liner),
        ("clean, standard", lambda t: cleaning.clean(t, STANDARD_CLEAN)),
        ("count, unicode tokenizer", lambda t: counting.count(t, unicode)),
        ("count, auto (UAX #29 + jieba)", lambda t: counting.count(t, STANDARD_COUNT)),
        (
            "clean + count, standard + auto",
            lambda t: counting.count(cleaning.clean(t, STANDARD_CLEAN), STANDARD_COUNT),
        ),
        (
            "clean + count, seed-compatible",
            lambda t: counting.count(cleaning.clean(t, SEED_CLEAN), SEED_COUNT),
        ),
        *analytics_cases(),
    ]
    works = [functools.partial(_each, work, reviews) for _, work in per_text]
    seconds = best_cpu_seconds(works, repeat)
    speeds = [(name, megabytes / s) for (name, _), s in zip(per_text, seconds, strict=True)]
    baseline = speeds[0][1]
    return [Result(name, speed, speed / baseline) for name, speed in speeds]


def analytics_cases() -> list[tuple[str, Callable[[str], object]]]:
    """The review-analytics options (issue #18), each on top of the standard clean or the auto
    count, so its cost per MB is the difference from that row."""
    from serve_app.core.analysis import boilerplate, dedup, language, review, sentiment

    review.warm_up()
    simplified = cleaning.CleanOptions(to_simplified=True)
    pii = cleaning.CleanOptions(pii=("phone", "id_card", "email"))
    user_words = counting.CountOptions(
        user_words=("小米手机", "性价比", "iPhone 15", "物流很快", "五星好评"),
        extra_stopwords=("东西", "the"),
    )
    offsets = counting.CountOptions(offsets=True)
    index = dedup.DuplicateIndex()
    position = iter(range(1 << 62))
    return [
        ("clean, + to_simplified", lambda t: cleaning.clean(t, simplified)),
        ("clean, + pii (all three)", lambda t: cleaning.clean(t, pii)),
        ("count, auto + user words/stopwords", lambda t: counting.count(t, user_words)),
        ("count, auto + token offsets", lambda t: counting.token_offsets(t, offsets)),
        ("language", language.detect),
        ("sentiment", sentiment.analyze),
        ("boilerplate check", boilerplate.is_boilerplate),
        ("duplicate signature (replica side)", dedup.signature),
        (
            "duplicate signature + index check",
            lambda t: index.check(next(position), dedup.signature(t)),
        ),
    ]


def _each(work: Callable[[str], object], reviews: Sequence[str]) -> None:
    for text in reviews:
        work(text)


def table(results: Sequence[Result], baseline: str) -> str:
    lines = [
        f"| {'operation':<38} | {'MB/s':>7} | {'x ' + baseline:>10} |",
        f"| {'-' * 38} | {'-' * 6}: | {'-' * 9}: |",
    ]
    lines += [f"| {r.name:<38} | {r.mb_per_s:7.1f} | {r.ratio:10.2f} |" for r in results]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mb", type=float, default=4.0, help="MB of short reviews")
    parser.add_argument("--files", type=int, default=16, help="seed-shaped files (~0.27 MB each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    counting.warm_up()
    cleaning.clean("warm up")
    files = seed_files(args.files, 2024 + args.seed)
    size = sum(map(len, files)) / 1e6
    print(f"CPU seconds of one process, best of {args.repeat} turns; MB of UTF-8 input")
    print(f"\nseed-shaped files: {args.files} JSON files, {size:.1f} MB, whole-file work")
    print(table(file_results(files, args.repeat), "original"))
    print(f"\nshort reviews: {args.mb:g} MB, one call per review, seed {args.seed}")
    print(table(short_results(short_reviews(args.mb, args.seed), args.repeat), "seed"))


if __name__ == "__main__":
    main()
