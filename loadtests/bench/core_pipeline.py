"""The pure core in one process, no Ray, no HTTP: the work unit a job's worker and a /v1/batch
replica run (`pipeline.analyze_records` over slices of records, every result row encoded to
NDJSON), here over the corpus's files one after another.

    python -m loadtests.bench.core_pipeline 'corpus/*.json' --mode standard|seed

Prints one JSON line: the summary and the seconds the work took (after imports and warm-up).
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from collections.abc import Sequence

from serve_app.core import cleaning, counting
from serve_app.core.pipeline import BulkOptions, analyze_records, to_ndjson
from serve_app.core.records.base import ParseOptions, Record, RecordMaker
from serve_app.core.records.jsonarray import JsonParser, whole_object
from serve_app.core.summary import Summary

MODES: dict[str, BulkOptions] = {
    "standard": BulkOptions(),
    "seed": BulkOptions(
        clean=cleaning.CleanOptions(preset="minimal"),
        count=counting.CountOptions(tokenizer="whitespace", lowercase=False),
    ),
}
SLICE_BYTES = 4 << 20  # as a job's worker with rows (serve_app.service.jobs.SLICE_BYTES)


def file_records(path: str, options: ParseOptions) -> list[Record]:
    maker = RecordMaker(options, source=path)
    with open(path, "rb") as handle:
        data = handle.read()
    whole = whole_object(data, maker)
    if whole is not None:
        return whole
    parser = JsonParser(maker)
    return parser.feed(data) + parser.close()


def run(paths: Sequence[str], options: BulkOptions) -> tuple[Summary, int]:
    summary = Summary()
    written = 0
    pending: list[Record] = []
    size = 0
    parse = ParseOptions()
    for n, path in enumerate(paths, 1):
        for record in file_records(path, parse):
            pending.append(record)
            size += record.size
        if size >= SLICE_BYTES or n == len(paths):
            analysis = analyze_records(pending, options)
            written += len(to_ndjson(analysis.rows))
            summary.merge(analysis.summary)
            pending, size = [], 0
    return summary, written


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.core_pipeline")
    parser.add_argument("pattern")
    parser.add_argument("--mode", choices=sorted(MODES), default="standard")
    args = parser.parse_args(argv)
    paths = sorted(glob.glob(args.pattern))
    options = MODES[args.mode]
    counting.warm_up()  # the dictionaries load once per process, as in a replica
    cleaning.clean("warm up", options.clean)
    started = time.perf_counter()
    summary, written = run(paths, options)
    figures = summary.to_dict()  # timed too: the seed script's time includes its top words
    elapsed = time.perf_counter() - started
    print(
        json.dumps({"elapsed_s": elapsed, "output_bytes": written, **figures}, ensure_ascii=False)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
