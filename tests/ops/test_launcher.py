"""The launcher deploys through Ray's public surface: Serve's REST API, as `serve deploy`."""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

import serve_app
from serve_app.ops import launcher
from serve_app.ops.loadtest.service import free_port


class FakeDashboard(BaseHTTPRequestHandler):
    answers: list[int] = []
    seen: list[dict[str, Any]] = []

    def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": json.loads(body)}
        )
        status = self.answers.pop(0) if self.answers else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"no")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def dashboard() -> Iterator[str]:
    FakeDashboard.answers, FakeDashboard.seen = [], []
    server = HTTPServer(("127.0.0.1", 0), FakeDashboard)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_config_goes_to_serves_rest_api_with_the_token(dashboard: str) -> None:
    config = {"applications": [{"name": "cleanserve", "import_path": "serve_app.app:build_app"}]}
    launcher.deploy_config(dashboard, config, token="t0ken", timeout_s=10)
    [request] = FakeDashboard.seen
    assert request == {"path": "/api/serve/applications/", "auth": "Bearer t0ken", "body": config}


def test_a_dashboard_not_ready_yet_is_asked_again(dashboard: str) -> None:
    FakeDashboard.answers = [503, 502]
    launcher.deploy_config(dashboard, {"applications": []}, token=None, timeout_s=30)
    assert len(FakeDashboard.seen) == 3
    assert FakeDashboard.seen[-1]["auth"] is None


def test_a_refused_config_fails_at_once(dashboard: str) -> None:
    FakeDashboard.answers = [400]
    with pytest.raises(launcher.DeployError, match="400"):
        launcher.deploy_config(dashboard, {"applications": []}, token=None, timeout_s=30)
    assert len(FakeDashboard.seen) == 1


@pytest.fixture
def grpc_like_server() -> Iterator[int]:
    """A listener that answers every connection with bytes that are not HTTP/1 (an HTTP/2
    SETTINGS frame, what a Ray gRPC server sends), as CI once met on a service's port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x05\x00\x00@\x00")

    threading.Thread(target=answer, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


def test_a_port_answered_by_another_server_fails_at_once(grpc_like_server: int) -> None:
    started = time.monotonic()
    with pytest.raises(launcher.DeployError, match="another server"):
        launcher.wait_healthy(f"http://127.0.0.1:{grpc_like_server}", timeout_s=60)
    assert time.monotonic() - started < 30  # not asked again until the timeout


def test_ports_other_processes_listen_on_are_named(grpc_like_server: int) -> None:
    options = launcher.LaunchOptions(
        port=grpc_like_server,
        dashboard_port=free_port(),
        haproxy_metrics_port=free_port(),
        haproxy_stats_port=grpc_like_server,
    )
    taken = launcher.taken_ports(options)
    assert [entry.split(" (")[0] for entry in taken] == [
        f"--port {grpc_like_server}",
        f"--haproxy-stats-port {grpc_like_server}",
    ]


def test_cleanserve_up_on_a_taken_port_says_so_and_starts_nothing(grpc_like_server: int) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "serve_app.ops.cli", "up", "--port", str(grpc_like_server)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"--port {grpc_like_server}" in result.stderr
    assert "Traceback" not in result.stderr


def test_service_ports_come_from_outside_the_ranges_ray_binds_from() -> None:
    low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(not low <= port <= high for port in ports)
    assert all(not 10002 <= port <= 19999 for port in ports)  # Ray's worker ports


def ray_private_uses(path: Path) -> list[str]:
    """Each import of a private Ray module or name, and each private keyword (`_blocking=`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ray"):
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith("ray")]
        elif isinstance(node, ast.keyword) and node.arg and node.arg.startswith("_"):
            names = [f"{node.arg}="]
        else:
            continue
        found += [name for name in names if "._" in name or name.startswith("_")]
    return found


def test_the_scan_finds_private_ray_names(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from ray.serve._private import api\nimport ray._private.worker\n"
        "from ray.serve import _run\nclient.deploy_apps(config, _blocking=False)\n"
    )
    assert len(ray_private_uses(module)) == 4


def test_the_package_uses_no_private_ray_api() -> None:
    """A private Ray API moves between releases without notice: none is used. If one ever
    becomes unavoidable, list it here with the comment that says why."""
    allowed: set[str] = set()
    root = Path(serve_app.__file__).parent
    found = {
        f"{path.relative_to(root)}: {name}"
        for path in root.rglob("*.py")
        for name in ray_private_uses(path)
    }
    assert found == allowed
