"""Processes the benchmark starts: each in its own session (started and stopped by
serve_app.ops.loadtest.service, as the load-test runner's service is), stopped by SIGTERM to
the pid it started; what outlives that pid is ended by pid, found by session id, never by name.
Sessions also scope what is measured: RSS and CPU of every process of a service.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import httpx
import psutil

from serve_app.ops.launcher import end_session
from serve_app.ops.launcher import session_processes as session_processes

REPO = Path(__file__).resolve().parents[2]
SERVE_CONFIG = REPO / "serve_config.yaml"


def uvicorn_command(port: int, workers: int) -> list[str]:
    cmd = [
        sys.executable, "-m", "uvicorn", "loadtests.bench.baseline:api",
        "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    return [*cmd, "--workers", str(workers)] if workers > 1 else cmd


# --- measuring ---------------------------------------------------------------------------------


def replica_name(title: str) -> str | None:
    """The deployment of a replica's process title: ray::ServeReplica:cleanserve:Ingress, or
    ...:WordCounter.initialize_and_get_metadata while it runs that method, or (seen while a
    replica starts) SERVE_REPLICA::cleanserve#WordCounter#id:ServeReplica:cleanserve:WordCounter."""
    if not title.startswith(("ray::ServeReplica:", "SERVE_REPLICA::")):
        return None
    return title.rsplit(":", 1)[-1].split(".", 1)[0]


def label(proc: psutil.Process) -> str:
    """A short, stable name for a process of a service: the replica's deployment, the Ray
    component or the executable."""
    with contextlib.suppress(psutil.Error):
        cmdline: list[str] = proc.cmdline()
        first: str = cmdline[0] if cmdline else proc.name()
        if replica := replica_name(first):
            return replica
        if first.startswith("ray::"):  # ray::ServeController.listen_for_change -> ServeController
            return first.removeprefix("ray::").split()[0].split(".", 1)[0]
        if first.startswith("ray-dashboard-"):
            return "dashboard"
        joined = " ".join(cmdline[:4])
        for marker, name in (
            ("serve_app.ops.cli", "cleanserve up"),
            ("uvicorn", "uvicorn"),
            ("dashboard", "dashboard"),
            ("log_monitor", "log_monitor"),
            ("monitor.py", "autoscaler"),
            ("forkserver", "dashboard"),
            ("multiprocessing.spawn", "uvicorn worker"),
        ):
            if marker in joined:
                return name
        return Path(first).name
    return "?"


def replica_counts(sid: int) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for proc in session_processes(sid):
        with contextlib.suppress(psutil.Error, IndexError):
            if replica := replica_name(proc.cmdline()[0]):
                counts[replica] += 1
    return dict(sorted(counts.items()))


def ray_workers(sid: int) -> dict[int, str]:
    """pid -> label of every Ray actor process of a session (controller, proxies, replicas):
    compared over a run, it shows whether any of them died and was replaced."""
    workers = {}
    for proc in session_processes(sid):
        with contextlib.suppress(psutil.Error, IndexError):
            if proc.cmdline()[0].startswith("ray::"):
                workers[proc.pid] = label(proc)
    return workers


def healthy(url: str, timeout_s: float = 5.0) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{url}/healthz", timeout=timeout_s).status_code == 200
    return False


class _SessionSampler:
    """Calls `sample()` over a session's processes on entering, every `interval_s` in a thread,
    and on leaving."""

    def __init__(self, sid: int, interval_s: float) -> None:
        self.sid = sid
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> object:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> Self:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


# What a Ray worker's title says before it becomes a replica or a task's worker, and between
# tasks: no name for what its CPU did.
_PLACEHOLDERS = frozenset({"IDLE", "python", "?"})


class CpuTracker(_SessionSampler):
    """CPU seconds per process of a session over an interval, sampled every `interval_s` in a
    thread. A process that ends meanwhile (a replica scaled down, a Ray Data actor done) keeps
    what it used up to its last sample, which two snapshots, one at each end, would miss; one
    that starts meanwhile counts all it used. Each process keeps the first name that says what
    it is (a worker is `ray::IDLE` before it becomes a replica, and between tasks), or a later
    one that `prefer` picks out (a job's workers)."""

    def __init__(
        self,
        sid: int,
        *,
        prefer: Callable[[str], bool] = lambda _: False,
        interval_s: float = 0.2,
    ) -> None:
        super().__init__(sid, interval_s)
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self._prefer = prefer
        self._sampled = False
        self._started_at = 0.0
        self._elapsed = 0.0

    def sample(self) -> None:
        """The first sample is the start: what a process used before it does not count."""
        start, self._sampled = not self._sampled, True
        for proc in session_processes(self.sid):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                cpu = times.user + times.system
                name = label(proc)
                self.first.setdefault(proc.pid, cpu if start else 0.0)
                self.last[proc.pid] = cpu
                old = self.names.get(proc.pid)
                if (
                    old is None
                    or (old in _PLACEHOLDERS and name not in _PLACEHOLDERS)
                    or (self._prefer(name) and not self._prefer(old))
                ):
                    self.names[proc.pid] = name

    def __enter__(self) -> Self:
        super().__enter__()
        self._started_at = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._elapsed = time.perf_counter() - self._started_at

    def seconds(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, cpu in self.last.items():
            name = self.names[pid]
            out[name] = out.get(name, 0.0) + cpu - self.first[pid]
        return {name: round(value, 3) for name, value in sorted(out.items(), key=lambda i: -i[1])}

    def cores(self) -> dict[str, float]:
        """CPU seconds per second of the interval (1.0 = one core busy), per name."""
        cores = {name: cpu / self._elapsed for name, cpu in self.seconds().items()}
        return {name: round(value, 3) for name, value in cores.items() if value >= 0.005}


class RssSampler(_SessionSampler):
    """Sums the RSS of every process of a session every `interval_s`, in a thread; keeps the
    first sample (idle), the peak and which processes made the peak."""

    def __init__(self, sid: int, interval_s: float = 0.2) -> None:
        super().__init__(sid, interval_s)
        self.idle_bytes = 0
        self.peak_bytes = 0
        self.peak_split: dict[str, int] = {}
        self.samples = 0

    def sample(self) -> int:
        split: Counter[str] = Counter()
        for proc in session_processes(self.sid):
            with contextlib.suppress(psutil.Error):
                split[label(proc)] += proc.memory_info().rss
        total = sum(split.values())
        if self.samples == 0:
            self.idle_bytes = total
        if total > self.peak_bytes:
            self.peak_bytes = total
            self.peak_split = dict(split.most_common())
        self.samples += 1
        return total


@dataclass(frozen=True, slots=True)
class Measured:
    returncode: int
    wall_s: float
    max_rss_bytes: int  # the child's own peak (getrusage of that child only)
    cpu_s: float
    session_peak_bytes: int  # peak of the RSS sum of the child's session, sampled
    stdout: str


def run_measured(
    cmd: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 3600.0,
) -> Measured:
    """Run a command to its end in its own session; its stdout is returned, stderr goes to
    `log`. Its peak RSS comes from wait4 (that process alone), the session's from sampling."""
    with log.open("wb") as err, (log.with_suffix(".out")).open("wb") as out:
        proc = subprocess.Popen(
            list(cmd),
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    watchdog = threading.Timer(timeout_s, lambda: end_session(proc.pid, timeout_s=5))
    watchdog.start()
    try:
        with RssSampler(proc.pid) as sampler:
            started = time.perf_counter()
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        watchdog.cancel()
        end_session(proc.pid)  # whatever it left behind (a Ray it started and did not stop)
    return Measured(
        returncode=proc.returncode,
        wall_s=wall,
        max_rss_bytes=usage.ru_maxrss * 1024,
        cpu_s=usage.ru_utime + usage.ru_stime,
        session_peak_bytes=sampler.peak_bytes,
        stdout=log.with_suffix(".out").read_text(encoding="utf-8", errors="replace"),
    )


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
