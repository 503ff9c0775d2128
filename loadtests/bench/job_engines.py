"""The job's work unit (`serve_app.service.jobs.process_group`) under two engines, in a Ray of
its own with 2 CPUs: Ray Data (the service's pipeline, `run_pipeline`) and plain Ray tasks over
the same groups. Same groups, same shards, same summary: the difference is the engine.

    RAY_AUTH_MODE=disabled python -m loadtests.bench.job_engines 'corpus/*.json' OUT --mode seed

Prints one JSON line per engine: seconds (after ray.init and a warm-up job), summary.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence

import ray

from serve_app.core import cleaning, counting
from serve_app.core.pipeline import BulkOptions
from serve_app.service import jobs
from serve_app.service.storage import InputFile, StorageConfig

MODES = {
    "seed": BulkOptions(
        clean=cleaning.CleanOptions(preset="minimal"),
        count=counting.CountOptions(tokenizer="whitespace", lowercase=False),
    ),
    "standard": BulkOptions(),
}


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.job_engines")
    parser.add_argument("pattern")
    parser.add_argument("out")
    parser.add_argument("--mode", choices=sorted(MODES), default="seed")
    parser.add_argument("--group-bytes", type=int, default=16 << 20)
    parser.add_argument("--engines", default="ray-data,ray-tasks")
    args = parser.parse_args(argv)
    paths = sorted(glob.glob(args.pattern))
    files = tuple(InputFile(os.path.abspath(p), os.path.getsize(p)) for p in paths)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    for name in args.engines.split(","):
        out = os.path.join(args.out, name)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        spec = jobs.JobSpec(
            id=name,
            files=files,
            output=out,
            storage=StorageConfig(roots=(args.out,)),
            options=MODES[args.mode],
            group_bytes=args.group_bytes,
            max_workers=2,
            engine=name,
        )
        started = time.perf_counter()
        summary, _ = jobs.run_pipeline(spec, lambda progress, result: None)
        elapsed = time.perf_counter() - started
        print(json.dumps({"engine": name, "elapsed_s": elapsed, **summary.to_dict()}), flush=True)
        shutil.rmtree(out, ignore_errors=True)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
