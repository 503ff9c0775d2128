"""Single-core throughput of the pure core, against the seed script's one-liner on the same text.

    python -m loadtests.microbench [--mb 8] [--seed 0] [--repeat 3]

Prints MB/s (UTF-8 input) per operation, best of --repeat, and the ratio to the seed's
`replace("\\n", " ").strip()` + `split()` + dict counting. No Ray, no HTTP: this is the ceiling
the service works under, per core.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

from serve_app.core import cleaning, counting
from serve_app.ops.loadtest.textgen import ReviewGenerator


def corpus(megabytes: float, seed: int) -> list[str]:
    gen = ReviewGenerator(seed)
    texts: list[str] = []
    size = 0
    while size < megabytes * 1e6:
        texts.append(gen.short())
        size += len(texts[-1].encode("utf-8"))
    return texts


def seed_one_liner(text: str) -> dict[str, int]:
    cleaned = text.replace("\n", " ").strip()
    counts: dict[str, int] = {}
    for word in cleaned.split():
        counts[word] = counts.get(word, 0) + 1
    return counts


@dataclass(frozen=True)
class Result:
    name: str
    mb_per_s: float
    ratio: float


def measure(texts: list[str], work: Callable[[str], object], repeat: int) -> float:
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for text in texts:
            work(text)
        best = min(best, time.perf_counter() - start)
    return megabytes / best


def run(megabytes: float, seed: int, repeat: int) -> list[Result]:
    texts = corpus(megabytes, seed)
    counting.warm_up()
    standard_clean = cleaning.CleanOptions()
    auto = counting.CountOptions()
    unicode = counting.CountOptions(tokenizer="unicode")
    cases: list[tuple[str, Callable[[str], object]]] = [
        ("seed one-liner (baseline)", seed_one_liner),
        ("clean, standard", lambda t: cleaning.clean(t, standard_clean)),
        ("count, unicode tokenizer", lambda t: counting.count(t, unicode)),
        ("count, auto (UAX #29 + jieba)", lambda t: counting.count(t, auto)),
        ("clean + count, standard + auto", lambda t: counting.count(cleaning.clean(t), auto)),
        (
            "clean + count, seed-compatible",
            lambda t: counting.count(
                cleaning.clean(t, cleaning.CleanOptions(preset="minimal")),
                counting.CountOptions(tokenizer="whitespace", lowercase=False),
            ),
        ),
    ]
    speeds = [(name, measure(texts, work, repeat)) for name, work in cases]
    baseline = speeds[0][1]
    return [Result(name, speed, speed / baseline) for name, speed in speeds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=8.0, help="corpus size in MB of UTF-8")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = run(args.mb, args.seed, args.repeat)
    print(f"corpus: {args.mb:g} MB of short mixed English/Chinese reviews, seed {args.seed}")
    print(f"| {'operation':<34} | {'MB/s':>7} | {'x seed':>7} |")
    print(f"| {'-' * 34} | {'-' * 7}:| {'-' * 7}:|")
    for r in results:
        print(f"| {r.name:<34} | {r.mb_per_s:7.1f} | {r.ratio:7.2f} |")


if __name__ == "__main__":
    main()
