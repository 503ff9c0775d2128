"""Closed-loop HTTP load: N connections, each sending the next request when its answer is in.

wrk when it is installed (a Lua script makes it POST; `--latency` gives the distribution), else
an asyncio generator on aiohttp, which tops out far lower (one Python process) and says so in
`LoadResult.tool`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

# A short review as clients send them: mixed English/Chinese, an emoji, a tag, a URL.
REVIEW = (
    "物流很快，包装很好！<b>Great</b> value for the money, the battery lasts about ten hours 👍 "
    "质量不错，性价比很高，会回购。Details: https://shop.example.com/item/12345?ref=review"
)


@dataclass(frozen=True, slots=True)
class LoadResult:
    tool: str
    connections: int
    duration_s: float
    requests: int  # answered, whatever the status
    non_2xx: int
    socket_errors: int
    p50_ms: float | None
    p99_ms: float | None
    cpu_s: float | None = None  # the load generator's own CPU time

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors

    @property
    def rps(self) -> float:
        """Successful (2xx) responses per second."""
        return max(self.requests - self.non_2xx, 0) / self.duration_s if self.duration_s else 0.0


# --- wrk ---------------------------------------------------------------------------------------

_TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_TIME = r"([0-9]+(?:\.[0-9]+)?)(us|ms|s|m|h)"
_DONE = re.compile(rf"([0-9]+) requests in {_TIME}")
_PERCENTILE = re.compile(rf"^\s*([0-9]+(?:\.[0-9]+)?)%\s+{_TIME}\s*$", re.MULTILINE)
_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)"
)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: ([0-9]+)")
_THREADS = re.compile(r"([0-9]+) threads and ([0-9]+) connections")


class LoadError(RuntimeError):
    pass


def to_ms(value: str, unit: str) -> float:
    return float(value) * _TIME_UNITS_MS[unit]


def parse_wrk(output: str, *, cpu_s: float | None = None) -> LoadResult:
    done = _DONE.search(output)
    if done is None:
        raise LoadError(f"not wrk --latency output:\n{output[-2000:]}")
    percentiles = {float(p): to_ms(v, u) for p, v, u in _PERCENTILE.findall(output)}
    if 50.0 not in percentiles or 99.0 not in percentiles:
        raise LoadError(f"no latency distribution in wrk output (run it with --latency):\n{output}")
    requests = int(done[1])
    socket = _SOCKET_ERRORS.search(output)
    non_2xx = _NON_2XX.search(output)
    threads = _THREADS.search(output)
    return LoadResult(
        tool="wrk",
        connections=int(threads[2]) if threads else 0,
        duration_s=to_ms(done[2], done[3]) / 1e3,
        requests=requests,
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(map(int, socket.groups())) if socket else 0,
        # With no answer at all wrk still prints a distribution of zeros.
        p50_ms=percentiles[50.0] if requests else None,
        p99_ms=percentiles[99.0] if requests else None,
        cpu_s=cpu_s,
    )


def wrk_script(body: bytes, content_type: str = "application/json") -> str:
    text = body.decode("utf-8")
    level = 0
    while f"]{'=' * level}]" in text:  # a long bracket the body cannot close
        level += 1
    eq = "=" * level
    return (
        'wrk.method = "POST"\n'
        f'wrk.headers["Content-Type"] = "{content_type}"\n'
        f"wrk.body = [{eq}[{text}]{eq}]\n"
    )


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str,
    body: bytes,
    *,
    connections: int,
    duration_s: float,
    timeout_s: float = 30.0,
    threads: int = 1,
) -> LoadResult:
    # One thread: wrk is C and far from saturating one core here; a second thread would only take
    # CPU from the server under test on a 2-CPU machine.
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(wrk_script(body), encoding="utf-8")
        cmd = [
            "wrk",
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{max(duration_s, 1):.0f}s",
            f"--timeout={timeout_s:.0f}s",
            "--latency",
            "-s",
            str(script),
            url,
        ]
        out = Path(tmp) / "out.txt"
        with out.open("wb") as handle:
            proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        text = out.read_text(encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        raise LoadError(f"wrk exited {proc.returncode}:\n{text[-2000:]}")
    return parse_wrk(text, cpu_s=usage.ru_utime + usage.ru_stime)


# --- aiohttp fallback --------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest rank, as wrk reports it."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(math.ceil(p / 100 * len(sorted_values)), 1)
    return sorted_values[rank - 1]


async def _aiohttp_load(
    url: str, body: bytes, connections: int, duration_s: float, timeout_s: float
) -> LoadResult:
    latencies: list[float] = []
    non_2xx = 0
    socket_errors = 0
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    cpu_before = time.process_time()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        deadline = started + duration_s

        async def connection() -> None:
            nonlocal non_2xx, socket_errors
            while (sent := time.perf_counter()) < deadline:
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    socket_errors += 1
                    continue
                latencies.append((time.perf_counter() - sent) * 1e3)
                if not 200 <= status < 300:
                    non_2xx += 1

        await asyncio.gather(*(connection() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult(
        tool="aiohttp",
        connections=connections,
        duration_s=elapsed,
        requests=len(latencies),
        non_2xx=non_2xx,
        socket_errors=socket_errors,
        p50_ms=percentile(latencies, 50) if latencies else None,
        p99_ms=percentile(latencies, 99) if latencies else None,
        cpu_s=time.process_time() - cpu_before,
    )


def run_aiohttp(
    url: str, body: bytes, *, connections: int, duration_s: float, timeout_s: float = 30.0
) -> LoadResult:
    return asyncio.run(_aiohttp_load(url, body, connections, duration_s, timeout_s))


def run(tool: str, url: str, body: bytes, *, connections: int, duration_s: float) -> LoadResult:
    if tool == "wrk":
        return run_wrk(url, body, connections=connections, duration_s=duration_s)
    return run_aiohttp(url, body, connections=connections, duration_s=duration_s)


def install_wrk() -> bool:
    """apt-get install wrk, when that is possible without asking anyone (root, apt)."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"],
            check=True,
            capture_output=True,
            timeout=300,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return wrk_available()


def choose_tool(requested: str) -> str:
    if requested == "aiohttp":
        return requested
    if wrk_available() or install_wrk():
        return "wrk"
    if requested == "wrk":
        raise LoadError("wrk is not installed and could not be (apt-get install -y wrk)")
    return "aiohttp"


def describe(tool: str) -> str:
    if tool == "wrk":
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            # `wrk -v` prints its version line and the usage, and exits 1.
            run = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
            first = (run.stdout or run.stderr).splitlines()[0]
            return " ".join(first.split()[:2])
        return "wrk"
    return f"aiohttp {aiohttp.__version__} (asyncio, in the benchmark's process)"
