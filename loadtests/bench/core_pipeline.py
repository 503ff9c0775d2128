"""The core pipeline in one process, no Ray, no HTTP: per file json.load, `cleaning.clean`,
`counting.count_full` and a `Summary`, as a /v1/batch record goes through them.

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
from serve_app.core.summary import Summary

MODES: dict[str, tuple[cleaning.CleanOptions, counting.CountOptions]] = {
    "standard": (cleaning.CleanOptions(), counting.CountOptions()),
    "seed": (
        cleaning.CleanOptions(preset="minimal"),
        counting.CountOptions(tokenizer="whitespace", lowercase=False),
    ),
}


def run(
    paths: Sequence[str], clean_options: cleaning.CleanOptions, count_options: counting.CountOptions
) -> Summary:
    summary = Summary()
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            text = json.load(handle)["text"]
        cleaned = cleaning.clean(text, clean_options)
        counts, full = counting.count_full(cleaned, count_options)
        summary.add_result(char_count=len(cleaned), word_count=counts.word_count, word_counts=full)
    return summary


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.core_pipeline")
    parser.add_argument("pattern")
    parser.add_argument("--mode", choices=sorted(MODES), default="standard")
    args = parser.parse_args(argv)
    paths = sorted(glob.glob(args.pattern))
    clean_options, count_options = MODES[args.mode]
    counting.warm_up()  # the dictionaries load once per process, as in a replica
    cleaning.clean("warm up", clean_options)
    started = time.perf_counter()
    summary = run(paths, clean_options, count_options)
    elapsed = time.perf_counter() - started
    print(json.dumps({"elapsed_s": elapsed, **summary.to_dict()}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
