"""python -m loadtests.bench [--quick] [--memory] [--out DIR]: see loadtests/bench/__init__.py."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil

from loadtests.bench import bulk, loadgen, procs, realtime, report
from loadtests.bench.runner import Bench
from loadtests.bench.targets import (
    evaluate,
    with_bulk_ratios,
    with_realtime_ratios,
)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 s points, a 30-file corpus")
    parser.add_argument("--out", type=Path, help="results folder (default results/bench-<time>)")
    parser.add_argument("--skip-realtime", action="store_true")
    parser.add_argument("--skip-bulk", action="store_true")
    parser.add_argument("--memory", action="store_true", help="also the 100 MB / 1 GB uploads")
    parser.add_argument("--profile", action="store_true", help="py-spy the replicas (extra runs)")
    parser.add_argument(
        "--jobs",
        action="store_true",
        help="bulk jobs (/v1/jobs) vs the seed scripts, the core and /v1/batch: "
        "loadtests/bench/jobs.py (default 2,000 files; quick 100)",
    )
    parser.add_argument("--job-engine", choices=("ray-data", "ray-tasks"), help="--jobs only")
    parser.add_argument(
        "--rows",
        help="--jobs only: run just these rows (comma-separated names, e.g. "
        "seed-single,job-seed-summary; 'engines' for the engine pair); ratios need their baselines",
    )

    load = parser.add_argument_group("real time")
    load.add_argument("--duration", type=int, help="seconds per point (default 10; quick 3)")
    load.add_argument("--warmup", type=int, help="seconds per endpoint (default 3; quick 1)")
    load.add_argument("--connections", default="1,8,32,128")
    load.add_argument("--endpoints", default=",".join(realtime.ENDPOINTS))
    load.add_argument("--loadgen", choices=("auto", "wrk", "aiohttp"), default="auto")
    load.add_argument("--workers", type=int, default=bulk.cpu_count(), help="second baseline")

    data = parser.add_argument_group("bulk")
    data.add_argument("--files", type=int, help="corpus files (default 200; quick 30)")
    data.add_argument("--seed", type=int, default=2024)
    data.add_argument("--corpus", type=Path, help="write the corpus here and keep it")
    data.add_argument("--repeat", type=int, help="rounds of bulk jobs, median kept (3; quick 1)")

    mem = parser.add_argument_group("memory")
    mem.add_argument("--memory-sizes", default="100MB,1GB")
    mem.add_argument("--memory-mode", choices=("seed", "standard"), default="seed")
    mem.add_argument(
        "--upload-header",
        action="append",
        default=[],
        help="'Name: value' added to the uploads (repeatable), to try a server-side fix",
    )

    ports = parser.add_argument_group("ports")
    ports.add_argument("--port", type=int, default=38000)
    ports.add_argument("--dashboard-port", type=int, default=38265)
    ports.add_argument("--haproxy-metrics-port", type=int, default=39101)
    ports.add_argument("--haproxy-stats-port", type=int, default=38404)
    ports.add_argument("--baseline-ports", default="38100,38101", help="one process, workers")
    args = parser.parse_args(argv)
    args.duration = args.duration or (3 if args.quick else 10)
    args.warmup = args.warmup or (1 if args.quick else 3)
    if args.jobs:
        args.files = args.files or (100 if args.quick else 2000)
    args.files = args.files or (30 if args.quick else 200)
    args.repeat = args.repeat or (1 if args.quick else 3)
    return args


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so every service started here is stopped on the way out."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def code_version() -> dict[str, Any]:
    """The code under test is the working tree: its commit and what differs from it."""

    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=procs.REPO, capture_output=True, text=True)
        return run.stdout.rstrip("\n") if run.returncode == 0 else ""

    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if line]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "changed": changed}


def environment() -> dict[str, Any]:
    import ray

    return {
        "code": code_version(),
        "cpus": bulk.cpu_count(),
        "memory_gib": psutil.virtual_memory().total / 2**30,
        "python": platform.python_version(),
        "ray": ray.__version__,
        "platform": platform.platform(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = dt.datetime.now()
    out = args.out or Path("results") / f"bench-{started:%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    command = (
        shlex.join(sys.orig_argv)
        if argv is None
        else shlex.join(["python", "-m", "loadtests.bench", *argv])
    )
    load_start = procs.load_average()
    print(f"command: {command}\nresults: {out}\nload average at start: {load_start}", flush=True)

    if args.jobs:
        from loadtests.bench import jobs

        with sigterm_as_exit():
            return jobs.run(args, out, command)
    bench = Bench(args, out)
    with sigterm_as_exit(), tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        try:
            bench.run(Path(tmp))
        finally:
            if args.corpus is None and bench.corpus is not None:
                shutil.rmtree(bench.corpus.directory, ignore_errors=True)
    print("\n== correctness", flush=True)
    bench.correctness()

    load_end = procs.load_average()
    points = with_realtime_ratios(bench.points)
    runs = with_bulk_ratios(bench.runs)
    results: dict[str, Any] = {
        "command": command,
        "started": f"{started:%Y-%m-%d %H:%M}",
        "environment": environment(),
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "realtime": {
            "tool": bench.tool,
            "tool_version": loadgen.describe(bench.tool) if bench.tool else None,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "points": points,
            "answers": bench.answers,
        },
        "bulk": {
            "corpus": {
                "files": len(bench.corpus.paths) if bench.corpus else 0,
                "bytes": bench.corpus.total_bytes if bench.corpus else 0,
                "seed": args.seed,
            },
            "runs": runs,
        },
        "checks": bench.checks,
        "memory": bench.memory,
        "profile_categories": bench.profile_categories,
        "notes": bench.notes,
    }
    targets = evaluate(results)
    results["targets"] = [t.to_dict() for t in targets]
    summary = report.markdown(results, targets)
    (out / "summary.md").write_text(summary, encoding="utf-8")
    report.write_json(results, out / "results.json")
    plotted = report.plot(points, out / "realtime.png")
    if bench.profiles_md:
        (out / "profile.md").write_text("\n".join(bench.profiles_md), encoding="utf-8")
    print("\n" + summary)
    print(f"load average at start: {load_start}, at end: {load_end}")
    print(
        f"wrote {out / 'summary.md'}, {out / 'results.json'}"
        + (", realtime.png" if plotted else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
