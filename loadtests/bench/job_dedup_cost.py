"""What dedup.duplicates costs a job, in CPU seconds per MB of input, in this one process: the
job's work unit without it (`jobs.process_group`), and with it its first pass
(`job_dedup.group_signatures`), the driver's check of the signatures in input order, and the
second pass with the duplicates known. Best of 2 (the first also loads dictionaries).

    python -m loadtests.bench.job_dedup_cost DIR --corpus seed --files 40 --mode seed
    python -m loadtests.bench.job_dedup_cost DIR --corpus short --records 25000 --mode standard

`seed`: seed-shaped review files (`loadtests.bench.corpus`); `short`: one NDJSON file of short
generated reviews, a tenth of them repeats of earlier ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from loadtests.bench import corpus
from serve_app.core import cleaning, counting
from serve_app.core.analysis.dedup import DedupOptions
from serve_app.core.pipeline import BulkOptions
from serve_app.ops.loadtest.textgen import ReviewGenerator
from serve_app.service import job_dedup, jobs
from serve_app.service.storage import InputFile, Storage, StorageConfig

MODES = {
    "seed": BulkOptions(
        clean=cleaning.CleanOptions(preset="minimal"),
        count=counting.CountOptions(tokenizer="whitespace", lowercase=False),
    ),
    "standard": BulkOptions(),
}


def short_reviews(directory: Path, records: int, seed: int = 1) -> list[Path]:
    gen, rng = ReviewGenerator(seed), random.Random(seed)
    seen: list[str] = []
    lines = []
    for _ in range(records):
        text = rng.choice(seen) if seen and rng.random() < 0.1 else gen.short()
        seen.append(text)
        lines.append(orjson.dumps({"text": text}))
    path = directory / "reviews.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return [path]


def best_cpu(work: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(2):
        started = time.process_time()
        result = work()
        best = min(best, time.process_time() - started)
    return best, result


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.job_dedup_cost")
    parser.add_argument("directory", type=Path, help="an empty directory for the corpus")
    parser.add_argument("--corpus", choices=("seed", "short"), default="seed")
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--records", type=int, default=25_000)
    parser.add_argument("--mode", choices=sorted(MODES), default="seed")
    args = parser.parse_args(argv)
    source = args.directory / "in"
    source.mkdir(parents=True)
    if args.corpus == "seed":
        paths = corpus.write(corpus.CorpusSpec(files=args.files, seed=9), source).paths
    else:
        paths = short_reviews(source, args.records)
    files = [InputFile(str(p), p.stat().st_size) for p in paths]
    mb = sum(f.size for f in files) / 1e6
    storage = Storage(StorageConfig(roots=(str(args.directory),)))
    out = args.directory / "out"
    out.mkdir()

    def spec(duplicates: bool) -> jobs.JobSpec:
        options = dataclasses.replace(MODES[args.mode], dedup=DedupOptions(duplicates=duplicates))
        return jobs.JobSpec(
            id="cost", files=tuple(files), output=str(out), storage=storage.config, options=options
        )

    without, _ = best_cpu(lambda: jobs.process_group(storage, spec(False), 0, files))
    first, blob = best_cpu(lambda: job_dedup.group_signatures(storage, spec(True), 0, files))

    def check() -> job_dedup.DuplicateResolver:
        resolver = job_dedup.DuplicateResolver(1, 0.8)
        resolver.add(0, blob)
        return resolver

    driver, resolver = best_cpu(check)
    known = jobs.decode_duplicates(resolver.encoded(0, spec(True).files))
    second, _ = best_cpu(lambda: jobs.process_group(storage, spec(True), 0, files, known))
    records = sum(1 for _ in job_dedup.unpack(blob))
    print(
        f"{args.corpus} corpus, {args.mode} mode: {mb:.1f} MB, {records} records, "
        f"{len(known)} duplicates; CPU-s/MB without {without / mb:.3f}; with: first pass "
        f"{first / mb:.3f}, driver {driver / mb:.3f} ({driver / max(records, 1) * 1e6:.0f} "
        f"us/record), second pass {second / mb:.3f}; with/without: workers "
        f"{(first + second) / without:.2f}x, all {(first + second + driver) / without:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
