"""Helpers for tests that run the real service or need system files."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from serve_app.ops.loadtest.service import Ports, free_port, running, tail, up_command

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Service:
    url: str
    ray_address: str | None
    dashboard_url: str
    log: Path
    job_root: Path | None = None  # a directory jobs may read and write (CLEANSERVE_JOB_ROOTS)
    sid: int | None = None  # the process session of every process of the service
    s3_endpoint: str | None = None  # an S3 server whose bucket S3_BUCKET jobs may use


@contextlib.contextmanager
def start_service(
    tmp: Path,
    *,
    env: dict[str, str] | None = None,
    config: Path | None = None,
    job_root: Path | None = None,
    s3_endpoint: str | None = None,
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
    if job_root is not None:
        env.update(job_env(job_root, tmp / "job-state", s3_endpoint))
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
            job_root=job_root,
            s3_endpoint=s3_endpoint,
            sid=proc.pid,
        )


S3_BUCKET = "cleanserve-test"
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def job_env(root: Path, state: Path, s3_endpoint: str | None) -> dict[str, str]:
    """The service's job settings: `root` (and the test bucket, if an S3 server runs)."""
    env = {
        "CLEANSERVE_JOB_ROOTS": str(root),
        "CLEANSERVE_JOB_STATE_DIR": str(state),
        # Small groups: a test's few MB make several groups, so several workers and retries.
        "CLEANSERVE_JOB_GROUP_BYTES": str(512 * 1024),
    }
    if s3_endpoint is not None:
        env["CLEANSERVE_JOB_ROOTS"] += f":s3://{S3_BUCKET}"
        env["CLEANSERVE_JOB_S3_ENDPOINT"] = s3_endpoint
        env["CLEANSERVE_JOB_S3_REGION"] = S3_ENV["AWS_DEFAULT_REGION"]
        env.update(S3_ENV)
    return env


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (a thread of this process), with the bucket S3_BUCKET;
    yields its endpoint."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, **_boto_credentials())
        s3.create_bucket(Bucket=S3_BUCKET)
        yield endpoint
    finally:
        server.stop()


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_ENV["AWS_DEFAULT_REGION"],
    }


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
