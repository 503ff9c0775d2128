"""Soak run: Locust at a share (default 70%) of the measured capacity for a long time, with
the memory of every process of the service sampled, and a verdict: no failed request, and
the memory slope in MB per hour from a linear fit.

    python -m serve_app.ops.loadtest.soak --minutes 10            # starts the service
    python -m serve_app.ops.loadtest.soak --url URL --service-pid PID --minutes 1

Capacity is measured first, on the same service with the same traffic: Locust's real-time
users (ReviewUser) without think time for `--probe-s` seconds; the requests/s they reach is
the capacity. The soak then runs ReviewUser at `--load` x capacity (each user paced by
Locust's constant_throughput) and one BulkUser uploading `--bulk-mb` now and then. Memory:
the resident set of every process in the service's session (`cleanserve up` is a session
leader: Ray's GCS, raylet, workers, every replica, HAProxy), every `--sample-s` seconds.
Results land in results/soak-<time>/ (memory.csv, the Locust runs' own folders,
soak.json). Exit status: 0 no failure, 1 failed requests, 2 the run itself failed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

USERS = 16


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float
    pid: int
    name: str
    rss_mb: float


def slope_per_hour(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per hour; 0 for fewer than 2."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_m = sum(m for _, m in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (m - mean_m) for t, m in points)
    return cov / var * 3600


def totals(samples: Sequence[Sample]) -> list[tuple[float, float]]:
    """Total resident MB per sampling instant."""
    by_time: dict[float, float] = {}
    for sample in samples:
        by_time[sample.t_s] = by_time.get(sample.t_s, 0.0) + sample.rss_mb
    return sorted(by_time.items())


def per_process_slopes(samples: Sequence[Sample]) -> dict[str, float]:
    """MB/hour of each process seen in every sample (one that came or went is left out: its
    appearance would read as a slope)."""
    instants = {s.t_s for s in samples}
    series: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for sample in samples:
        series.setdefault((sample.pid, sample.name), []).append((sample.t_s, sample.rss_mb))
    return {
        f"{name} ({pid})": slope_per_hour(points)
        for (pid, name), points in series.items()
        if len(points) == len(instants)
    }


def verdict(samples: Sequence[Sample]) -> dict[str, Any]:
    points = totals(samples)
    half = points[len(points) // 2 :]
    processes = per_process_slopes(samples)
    top = sorted(processes.items(), key=lambda item: -abs(item[1]))[:5]
    return {
        "samples": len(points),
        "processes": len({(s.pid, s.name) for s in samples}),
        "total_mb_first": round(points[0][1], 1) if points else None,
        "total_mb_last": round(points[-1][1], 1) if points else None,
        "slope_mb_per_hour": round(slope_per_hour(points), 1),
        "slope_mb_per_hour_second_half": round(slope_per_hour(half), 1),
        "largest_process_slopes_mb_per_hour": {name: round(v, 1) for name, v in top},
    }


class MemorySampler:
    """RSS of every process of session `sid`, every `every_s`, in a thread; rows to `path`."""

    def __init__(self, sid: int, path: Path, every_s: float = 5.0) -> None:
        self.sid = sid
        self.path = path
        self.every_s = every_s
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._started = 0.0

    def __enter__(self) -> MemorySampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def sample_once(self) -> list[Sample]:
        import psutil

        now = round(time.monotonic() - self._started, 3)
        found = []
        for proc in psutil.process_iter(["pid", "name"]):
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                if os.getsid(proc.pid) != self.sid:
                    continue
                rss = proc.memory_info().rss / 2**20
                found.append(Sample(now, proc.pid, _name(proc), rss))
        return found

    def _run(self) -> None:
        with self.path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(("t_s", "pid", "name", "rss_mb"))
            while True:
                batch = self.sample_once()
                self.samples += batch
                writer.writerows((s.t_s, s.pid, s.name, f"{s.rss_mb:.1f}") for s in batch)
                out.flush()
                if self._stop.wait(self.every_s):
                    return


def _name(proc: Any) -> str:
    # Ray names its workers in the process title: "ray::ServeReplica:cleanserve:Ingress".
    with contextlib.suppress(Exception):
        title = " ".join(proc.cmdline())
        if title.startswith("ray::"):
            return title.split()[0]
    return str(proc.name())


def _loadtest(
    url: str, dashboard_url: str, results: Path, extra: Sequence[str], *, users: int, run_s: int
) -> dict[str, Any]:
    """One `cleanserve loadtest` (steady) against url; its summary.json."""
    thresholds = results.parent / "thresholds.toml"
    thresholds.write_text("max_fail_ratio = 0.0\n", encoding="utf-8")
    cmd = [
        sys.executable, "-m", "serve_app.ops.cli", "loadtest",
        "--url", url, "--dashboard-url", dashboard_url,
        "--shape", "steady", "-u", str(users), "-r", str(users), "-t", f"{run_s}s",
        "--thresholds", str(thresholds), "--results", str(results),
        "--", *extra,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=run_s + 600)
    (results.parent / f"{results.name}.out").write_text(done.stdout + done.stderr)
    summary_path = results / "summary.json"
    if not summary_path.exists():
        raise RuntimeError(f"the load test wrote no summary (exit {done.returncode})")
    summary: dict[str, Any] = json.loads(summary_path.read_text(encoding="utf-8"))
    return summary


def _aggregated(summary: dict[str, Any]) -> dict[str, Any]:
    rows = {row["name"]: row for row in summary["endpoints"]}
    aggregated: dict[str, Any] = rows["Aggregated"]
    return aggregated


def soak(
    *,
    url: str,
    dashboard_url: str,
    sid: int,
    results: Path,
    minutes: float,
    load: float,
    probe_s: int,
    bulk_mb: float,
    sample_s: float,
) -> dict[str, Any]:
    results.mkdir(parents=True, exist_ok=True)
    probe = _loadtest(
        url, dashboard_url, results / "capacity", ["ReviewUser", "--user-rate", "-1"],
        users=USERS, run_s=probe_s,
    )  # fmt: skip
    probe_row = _aggregated(probe)
    capacity = float(probe_row["rps"])
    target = load * capacity
    run_s = int(minutes * 60)
    with MemorySampler(sid, results / "memory.csv", every_s=sample_s) as sampler:
        run = _loadtest(
            url, dashboard_url, results / "soak",
            ["--user-rate", f"{target / USERS:.4f}", "--bulk-mb", str(bulk_mb)],
            users=USERS + 1, run_s=run_s,
        )  # fmt: skip
    row = _aggregated(run)
    outcome = {
        "capacity_requests_per_s": round(capacity, 1),
        "capacity_probe_failures": probe_row["failures"],
        "target_requests_per_s": round(target, 1),
        "minutes": minutes,
        "requests": row["requests"],
        "failures": row["failures"],
        "achieved_requests_per_s": row["rps"],
        "p99_ms": row.get("p99_ms"),
        "memory": verdict(sampler.samples),
    }
    (results / "soak.json").write_text(json.dumps(outcome, indent=2), encoding="utf-8")
    return outcome


@contextlib.contextmanager
def _service(args: argparse.Namespace, results: Path) -> Iterator[tuple[str, str, int]]:
    if args.url:
        if args.service_pid is None:
            raise SystemExit("--url needs --service-pid (the pid of its `cleanserve up`)")
        yield args.url.rstrip("/"), args.dashboard_url, os.getsid(args.service_pid)
        return
    from serve_app.ops.loadtest.service import Ports, running, up_command

    ports = Ports()
    url = f"http://127.0.0.1:{ports.port}"
    with running(up_command(ports), url, log=results / "service.log") as proc:
        yield url, f"http://127.0.0.1:{ports.dashboard_port}", proc.pid


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running service (default: start one on 8000)")
    parser.add_argument("--service-pid", type=int, help="with --url: its `cleanserve up` pid")
    parser.add_argument(
        "--dashboard-url", default="http://127.0.0.1:8265", help="with --url: its Ray dashboard"
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="soak length (default: 10)")
    parser.add_argument("--load", type=float, default=0.7, help="share of capacity (0.7)")
    parser.add_argument("--probe-s", type=int, default=20, help="capacity probe length, seconds")
    parser.add_argument("--bulk-mb", type=float, default=1.0, help="size of each bulk upload")
    parser.add_argument("--sample-s", type=float, default=5.0, help="memory sampling interval")
    parser.add_argument("--results", type=Path, help="default: results/soak-<time>")
    args = parser.parse_args(argv)
    results = (args.results or Path("results") / f"soak-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    results.mkdir(parents=True, exist_ok=True)
    try:
        with _service(args, results) as (url, dashboard_url, sid):
            outcome = soak(
                url=url,
                dashboard_url=dashboard_url,
                sid=sid,
                results=results,
                minutes=args.minutes,
                load=args.load,
                probe_s=args.probe_s,
                bulk_mb=args.bulk_mb,
                sample_s=args.sample_s,
            )
    except (RuntimeError, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(outcome, indent=2))
    return 0 if outcome["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
