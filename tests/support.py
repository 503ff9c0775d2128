"""Helpers for tests that run the real service or need system files."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from serve_app.ops.loadtest.service import Ports, running, tail, up_command

REPO = Path(__file__).resolve().parents[1]


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
    pid: int | None = None  # of `cleanserve up`, the leader of the service's process session


@contextlib.contextmanager
def start_service(
    tmp: Path, *, env: dict[str, str] | None = None, config: Path | None = None
) -> Iterator[Service]:
    """`cleanserve up` on free ports, in a session of its own (serve_app.ops.loadtest.service)."""
    ports = Ports(free_port(), free_port(), free_port(), free_port())
    log = tmp / f"service-{ports.port}.log"
    # Serve's fallback proxy binds fixed ports with SO_REUSEPORT: two services on one machine
    # would answer for each other there.
    env = {
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
        **(env or {}),
    }
    url = f"http://127.0.0.1:{ports.port}"
    with running(up_command(ports, config), url, log=log, env=env) as proc:
        # /healthz answers a moment before `cleanserve up` prints the cluster's address.
        deadline = time.monotonic() + 30
        while "cleanserve is up" not in (text := log.read_text(errors="replace")):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service never said it was up:\n{tail(log)}")
            time.sleep(0.2)
        match = re.search(r"Ray cluster: (\S+)", text)
        yield Service(
            url=url,
            ray_address=match.group(1) if match else None,
            dashboard_url=f"http://127.0.0.1:{ports.dashboard_port}",
            log=log,
            pid=proc.pid,
        )


def multipart(files: list[tuple[str, bytes]], boundary: str = "b0undary") -> tuple[bytes, str]:
    """A multipart/form-data body of `files` parts, as `cleanserve batch` sends, and its
    Content-Type."""
    out = io.BytesIO()
    for name, data in files:
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


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
