"""Helpers for tests that run the real service or need system files."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from serve_app.launcher import end_session

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Service:
    url: str
    ray_address: str | None
    dashboard_url: str
    log: Path


@contextlib.contextmanager
def start_service(
    tmp: Path, *, env: dict[str, str] | None = None, config: Path | None = None
) -> Iterator[Service]:
    port, dashboard = free_port(), free_port()
    log = tmp / f"service-{port}.log"
    cmd = [
        sys.executable, "-m", "serve_app.cli", "up",
        "--port", str(port),
        "--dashboard-port", str(dashboard),
        "--haproxy-metrics-port", str(free_port()),
        "--haproxy-stats-port", str(free_port()),
    ]  # fmt: skip
    # Serve's fallback proxy binds fixed ports with SO_REUSEPORT: two services on one machine
    # would answer for each other there.
    env = {
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
        **(env or {}),
    }
    if config is not None:
        cmd += ["--config", str(config)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the service exited ({proc.returncode}):\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not become healthy:\n{_tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if "cleanserve is up" in log.read_text(errors="replace"):
                    if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                        break
            time.sleep(0.5)
        match = re.search(r"Ray cluster: (\S+)", log.read_text(errors="replace"))
        yield Service(
            url=url,
            ray_address=match.group(1) if match else None,
            dashboard_url=f"http://127.0.0.1:{dashboard}",
            log=log,
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
        end_session(proc.pid)


def _tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def ensure_debian_file(path: str, package: str) -> Path:
    """A system file a test needs: installed from Debian's packages when missing and root
    (CI runs as root on a fresh machine), else the test is skipped with the reason."""
    target = Path(path)
    if target.exists():
        return target
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", package]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True)
    if not target.exists():
        pytest.skip(f"{path} is missing: install Debian's {package} package")
    return target
