"""Ray clusters started the README's way, `ray start --head` (and worker nodes), for tests.

Other Ray clusters may run on the same machine, so every port is a free one, each cluster has
its own temp dir (its `ray_current_cluster` file must not send anyone else's `serve run` here)
and a cluster is ended by its process session, never by `ray stop`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from serve_app.ops import launcher
from serve_app.ops.launcher import DEFAULT_CONFIG, SERVICE_ENV, end_session, ensure_auth_token
from serve_app.ops.loadtest.service import tail
from tests.support import REPO, free_port

RAY_CLI = [sys.executable, "-m", "ray.scripts.scripts"]
SERVE_CLI = [sys.executable, "-m", "ray.serve.scripts"]
HAPROXY_FILES = Path("/tmp/haproxy-serve")  # Ray's default (RAY_SERVE_HAPROXY_*_FILE_LOC)


@dataclass(frozen=True, slots=True)
class Cluster:
    gcs_address: str
    dashboard_url: str
    temp_dir: Path
    logs: Path  # the output of each `ray start`
    env: Mapping[str, str]  # for the Ray and Serve CLIs and for drivers


def service_env(**extra: str) -> dict[str, str]:
    """The service's environment for one node, with ports of its own for what binds one."""
    return {
        **os.environ,
        **SERVICE_ENV,
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
        # The head's fallback proxy (HAProxy's backup server) binds 8500/9500 with
        # SO_REUSEPORT: another cluster's fallback proxy on this machine would share the port
        # and answer for a different application.
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
        **extra,
    }


def node_port_args() -> list[str]:
    return [
        "--node-manager-port", str(free_port()),
        "--object-manager-port", str(free_port()),
        # 0 and 0: every worker binds a port the OS picks, free by definition; a fixed range
        # would be a guess on a machine shared with other clusters.
        "--min-worker-port", "0",
        "--max-worker-port", "0",
        "--dashboard-agent-listen-port", str(free_port()),
        "--dashboard-agent-grpc-port", str(free_port()),
        "--runtime-env-agent-port", str(free_port()),
        "--metrics-export-port", str(free_port()),
        # The object store is a window on /dev/shm, shared with everyone on this machine.
        "--object-store-memory", str(256 * 1024 * 1024),
    ]  # fmt: skip


def session_pids(sid: int) -> list[int]:
    pids = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getsid(proc.pid) == sid:
                pids.append(proc.pid)
    return pids


def end_node(sid: int) -> None:
    """End a node's session; again while a raylet that was still starting workers left some."""
    for _ in range(3):
        end_session(sid)
        if not session_pids(sid):
            return


@contextlib.contextmanager
def ray_node(
    log: Path, args: list[str], env: Mapping[str, str], *, timeout_s: float = 180
) -> Iterator[int]:
    """`ray start --block` in a process session of its own, once it says the node runs;
    yields its pid (= session id). The session is ended on the way out, whatever happened."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*RAY_CLI, "start", "--block", "--disable-usage-stats", *args],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env),
        )
    try:
        deadline = time.monotonic() + timeout_s
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`ray start` did not start a node:\n{tail(log, 30)}")
            time.sleep(0.5)
        yield proc.pid
    finally:
        end_node(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)


@contextlib.contextmanager
def head_node(
    logs: Path, *, num_cpus: int, resources: Mapping[str, float], env: Mapping[str, str]
) -> Iterator[tuple[Cluster, int]]:
    """A head node; yields the cluster and the head's session id. The dashboard may still be
    starting: `serve_deploy` waits for it."""
    ensure_auth_token()
    gcs_port, dashboard_port = free_port(), free_port()
    # Short: Ray's Unix socket paths under it must stay below 108 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="cs-ray-", dir="/tmp"))
    args = [
        "--head",
        "--port", str(gcs_port),
        "--dashboard-host", "127.0.0.1",
        "--dashboard-port", str(dashboard_port),
        "--ray-client-server-port", str(free_port()),
        "--temp-dir", str(temp_dir),
        "--num-cpus", str(num_cpus),
        "--resources", json.dumps(dict(resources)),
        *node_port_args(),
    ]  # fmt: skip
    cluster = Cluster(
        gcs_address=f"127.0.0.1:{gcs_port}",
        dashboard_url=f"http://127.0.0.1:{dashboard_port}",
        temp_dir=temp_dir,
        logs=logs,
        env={**os.environ, "RAY_AUTH_MODE": "token"},
    )
    try:
        with ray_node(logs / "head.log", args, env) as sid:
            yield cluster, sid
    finally:
        # HAProxy's files live outside the temp dir, one directory per node.
        for marker in temp_dir.glob("session_*/dashboard_agent_listen_port_*"):
            node_id = marker.name.rsplit("_", 1)[-1]
            shutil.rmtree(HAPROXY_FILES / node_id, ignore_errors=True)
        shutil.rmtree(temp_dir, ignore_errors=True)


@contextlib.contextmanager
def worker_node(
    cluster: Cluster,
    name: str,
    *,
    num_cpus: int,
    resources: Mapping[str, float],
    env: Mapping[str, str],
) -> Iterator[int]:
    args = [
        "--address", cluster.gcs_address,
        "--num-cpus", str(num_cpus),
        "--resources", json.dumps(dict(resources)),
        *node_port_args(),
    ]  # fmt: skip
    with ray_node(cluster.logs / f"{name}.log", args, env) as sid:
        yield sid


def deploy_config(tmp: Path, *, http_port: int, edit: Any = None) -> Path:
    """A copy of serve_config.yaml on another HTTP port (and whatever `edit` changes)."""
    config = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    config["http_options"]["port"] = http_port
    if edit is not None:
        edit(config)
    path = tmp / f"serve_config.{http_port}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def run_cli(
    cluster: Cluster, *args: str, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        cwd=REPO,
        env=dict(cluster.env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def serve_deploy(cluster: Cluster, config: Path, *, timeout_s: float = 120) -> None:
    """`serve deploy`, again until the dashboard (still starting) takes it."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            done = run_cli(cluster, *SERVE_CLI, "deploy", str(config), "-a", cluster.dashboard_url)
            if done.returncode == 0:
                return
            failure = f"{done.stdout}\n{done.stderr}"
        except subprocess.TimeoutExpired as exc:
            failure = repr(exc)
        if time.monotonic() > deadline:
            pytest.fail(f"serve deploy failed:\n{failure}\n{diagnostics(cluster)}")
        time.sleep(2)


def serve_status(cluster: Cluster) -> dict[str, Any]:
    try:
        done = run_cli(cluster, *SERVE_CLI, "status", "-a", cluster.dashboard_url)
    except subprocess.TimeoutExpired as exc:
        return {"error": repr(exc)}
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    status: dict[str, Any] = yaml.safe_load(done.stdout) or {}
    return status


def wait_running(cluster: Cluster, app: str = "cleanserve", *, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = serve_status(cluster)
        state = (status.get("applications") or {}).get(app, {}).get("status")
        if state == "RUNNING":
            return
        if state == "DEPLOY_FAILED":
            break
        time.sleep(2)
    pytest.fail(
        f"{app} is not RUNNING after {timeout_s:.0f} s:\n"
        f"{yaml.safe_dump(status, sort_keys=False)}\n{diagnostics(cluster)}"
    )


def wait_healthy(url: str, *, timeout_s: float = 60) -> None:
    """RUNNING says the replicas are up; HAProxy answers once it has reloaded with them."""
    launcher.wait_healthy(url, timeout_s)


def diagnostics(cluster: Cluster, lines: int = 40) -> str:
    """The end of every `ray start` output and of every Serve log of the cluster."""
    files = sorted(cluster.logs.glob("*.log"))
    sessions = [path for path in cluster.temp_dir.glob("session_*") if not path.is_symlink()]
    files += sorted(log for session in sessions for log in session.glob("logs/serve/*.log"))
    return "\n".join(f"--- {path}\n{tail(path, lines)}" for path in files)
