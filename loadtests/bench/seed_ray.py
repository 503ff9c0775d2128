"""The seed's Ray version: one `@ray.remote` task per file, every task's full result (the
file's whole word-count dict) sent back to the driver, which aggregates as the single-process
script does.

    RAY_AUTH_MODE=disabled python -m loadtests.bench.seed_ray 'corpus/*.json'

Starts a local Ray of its own with 2 CPUs, as the seed did (and no dashboard, which is not on
the tasks' path and would compete for its port with other clusters on the machine). Prints one
JSON line: the aggregate, the seconds `ray.init` took and the seconds the work took after it.
"""

from __future__ import annotations

import glob
import json
import sys
import time

import ray

from loadtests.bench import seed_wordcount

process_file = ray.remote(seed_wordcount.process_file)


def main(argv: list[str]) -> int:
    paths = sorted(glob.glob(argv[0]))
    started = time.perf_counter()
    # "local": always a cluster of its own, never one that happens to run on this machine.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ready = time.perf_counter()
    results = ray.get([process_file.remote(path) for path in paths])
    summary = seed_wordcount.aggregate(results)
    done = time.perf_counter()
    ray.shutdown()
    print(
        json.dumps(
            {"elapsed_s": done - ready, "init_s": ready - started, **summary},
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
