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
    parser.add_argument("--temp-dir", help="Ray's temp dir (default Ray's own)")
    parser.add_argument("--warmup-files", type=int, default=4, help="the untimed job before")
    args = parser.parse_args(argv)
    paths = sorted(glob.glob(args.pattern))
    files = tuple(InputFile(os.path.abspath(p), os.path.getsize(p)) for p in paths)
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=args.temp_dir,
    )
    for name in args.engines.split(","):
        out = os.path.join(args.out, name)

        def run(job_files: tuple[InputFile, ...], job_id: str, engine: str) -> dict[str, object]:
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            spec = jobs.JobSpec(
                id=job_id,
                files=job_files,
                output=out,
                storage=StorageConfig(roots=(args.out,)),
                options=MODES[args.mode],
                group_bytes=args.group_bytes,
                max_workers=2,
                engine=engine,
            )
            summary, _ = jobs.run_pipeline(spec, lambda progress, result: None)
            shutil.rmtree(out, ignore_errors=True)
            return summary

        # A job before, as in a service that has run one: Ray's task workers stay warm between
        # jobs; a Ray Data actor pool is started anew for every job whatever came before.
        run(files[: args.warmup_files], f"{name}-warm-up", name)
        started = time.perf_counter()
        summary = run(files, name, name)
        elapsed = time.perf_counter() - started
        print(json.dumps({"engine": name, "elapsed_s": elapsed, **summary}), flush=True)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
