"""Run `cleanserve up` (or another server) as a child process in its own session.

Its own process, because Locust's gevent monkey-patching and Ray must never share one; its own
session, so a Ctrl-C in the terminal reaches the runner only, and the runner stops the server
in order: SIGTERM to the pid it started (`cleanserve up` then ends Ray, Serve and HAProxy), wait,
and only then end by pid whatever of that session is left. The load-test runner and the
benchmark both start their servers here.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from serve_app.ops.launcher import end_session


@dataclass(frozen=True, slots=True)
class Ports:
    port: int = 8000
    dashboard_port: int = 8265
    haproxy_metrics_port: int = 9101
    haproxy_stats_port: int = 8404


class ServiceError(RuntimeError):
    pass


# Ray's workers listen on 10002-19999 (`--min-worker-port`, `--max-worker-port`); its other
# servers (raylet, object manager, agents, gRPC of every worker) bind port 0, which the kernel
# takes from its ephemeral range. A port handed out for the service from either range can be
# taken by Ray between the probe and the bind: CI once saw `cleanserve up` wait for /healthz on
# a port where a Ray gRPC server answered. Ports for services come from between the two.
_RAY_WORKER_PORTS_END = 19999
_handed_out: set[int] = set()


def _ephemeral_ports() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A port free on 127.0.0.1 now, never handed out before by this process, outside the
    ranges from which Ray's own servers take theirs (so Ray cannot take it before the service
    binds it)."""
    ephemeral_low, ephemeral_high = _ephemeral_ports()
    low, high = _RAY_WORKER_PORTS_END + 1, ephemeral_low - 1
    if high < low:  # an ephemeral range that starts low: take the ports above it
        low, high = max(low, ephemeral_high + 1), 65535
    for _ in range(2000 if low <= high else 0):
        port = random.randint(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise ServiceError(f"no free port between {low} and {high}")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def tail(path: Path, lines: int = 40) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def up_command(ports: Ports, config: Path | None = None) -> list[str]:
    # `python -m serve_app.ops.cli` is the `cleanserve` entry point, run by this interpreter.
    return [
        sys.executable, "-m", "serve_app.ops.cli", "up",
        *(["--config", str(config)] if config is not None else []),
        "--port", str(ports.port),
        "--dashboard-port", str(ports.dashboard_port),
        "--haproxy-metrics-port", str(ports.haproxy_metrics_port),
        "--haproxy-stats-port", str(ports.haproxy_stats_port),
    ]  # fmt: skip


def launch(
    cmd: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start cmd in a session of its own, its output in log."""
    with log.open("wb") as out:
        return subprocess.Popen(
            list(cmd),
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_healthy(proc: subprocess.Popen[bytes], url: str, *, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise ServiceError(f"{proc.args!r} exited ({proc.returncode}):\n{tail(log)}")
        if time.monotonic() > deadline:
            raise ServiceError(f"{url}/healthz not 200 within {timeout_s:.0f} s:\n{tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        time.sleep(0.5)


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 90.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    # `cleanserve up` ends what it started; this only catches what outlived it (the session id
    # is the pid of its leader, the process we started).
    end_session(proc.pid)


@contextlib.contextmanager
def running(
    cmd: Sequence[str],
    url: str,
    *,
    log: Path,
    timeout_s: float = 300.0,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start cmd, wait for url/healthz, yield the process; stop it on the way out."""
    proc = launch(cmd, log=log, env=env)
    try:
        wait_healthy(proc, url, log=log, timeout_s=timeout_s)
        yield proc
    finally:
        stop(proc)


@contextlib.contextmanager
def started_service(
    ports: Ports, *, log: Path, config: Path | None = None, ready_timeout_s: float = 300.0
) -> Iterator[str]:
    """Start the service, wait for /healthz, yield its URL; stop it on the way out."""
    for port in (ports.port, ports.dashboard_port):
        if port_in_use(port):
            raise ServiceError(
                f"port {port} is already in use: stop what listens there, choose other ports, "
                "or pass --url to test a running service"
            )
    url = f"http://127.0.0.1:{ports.port}"
    with running(up_command(ports, config), url, log=log, timeout_s=ready_timeout_s):
        yield url
