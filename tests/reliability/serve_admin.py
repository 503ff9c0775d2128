"""The Serve REST API of a running service (status, redeploy) and replica kills via a driver.

The dashboard runs with Ray token authentication: every call carries the cluster's token.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

APP = "cleanserve"


def ray_token() -> str:
    if token := os.environ.get("RAY_AUTH_TOKEN"):
        return token.strip()
    path = os.environ.get("RAY_AUTH_TOKEN_PATH", "~/.ray/auth_token")
    return Path(path).expanduser().read_text(encoding="utf-8").strip()


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ray_token()}"}


def application(dashboard_url: str) -> dict[str, Any]:
    response = httpx.get(f"{dashboard_url}/api/serve/applications/", headers=_headers(), timeout=30)
    response.raise_for_status()
    app: dict[str, Any] = response.json()["applications"][APP]
    return app


def replicas(app: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Deployment -> [(replica id, state)]."""
    return {
        name: [(r["replica_id"], r["state"]) for r in deployment["replicas"]]
        for name, deployment in app["deployments"].items()
    }


def settled(app: Mapping[str, Any]) -> bool:
    """Running at its target: every deployment HEALTHY, no replica starting or stopping."""
    return (
        app["status"] == "RUNNING"
        and all(d["status"] == "HEALTHY" for d in app["deployments"].values())
        and all(state == "RUNNING" for states in replicas(app).values() for _, state in states)
    )


def wait_until(predicate: Any, *, timeout_s: float, what: str, interval_s: float = 0.5) -> float:
    """Seconds until predicate() held; fails the test with `what` after timeout_s."""
    started = time.monotonic()
    last: Any = None
    while time.monotonic() - started < timeout_s:
        try:
            if predicate():
                return time.monotonic() - started
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(interval_s)
    raise AssertionError(f"{what} did not happen within {timeout_s:.0f} s (last error: {last!r})")


def healthy(url: str, headers: Mapping[str, str] | None = None) -> bool:
    return httpx.get(f"{url}/healthz", headers=headers, timeout=10).status_code == 200


def redeploy(dashboard_url: str, config: Mapping[str, Any]) -> None:
    """PUT a whole Serve config, as `serve deploy` does; the rollout happens afterwards."""
    response = httpx.put(
        f"{dashboard_url}/api/serve/applications/", headers=_headers(), json=config, timeout=60
    )
    assert response.status_code == 200, response.text


KILLER = """
import sys
import ray
from ray.util.state import list_actors

ray.init(address=sys.argv[1], namespace="serve", log_to_driver=False)
print("ready", flush=True)
for line in sys.stdin:
    deployment = line.strip()
    alive = list_actors(
        filters=[
            ("class_name", "=", f"ServeReplica:{sys.argv[2]}:{deployment}"),
            ("state", "=", "ALIVE"),
        ]
    )
    actor = ray.get_actor(alive[0].name, namespace="serve")
    ray.kill(actor, no_restart=True)
    print("killed", alive[0].name.rsplit("#", 1)[-1], flush=True)
"""


class ReplicaKiller:
    """A driver connected to the service's cluster: kill() ends one live replica at once.

    Connecting a driver takes seconds on a busy 2-CPU machine; it connects once, up front.
    """

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._proc = proc

    def kill(self, deployment: str) -> str:
        """Kill one replica of `deployment`; returns its replica id."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(deployment + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline().split()
        assert line[:1] == ["killed"], f"the killer driver said {line!r}"
        return line[1]


@contextmanager
def replica_killer(ray_address: str) -> Iterator[ReplicaKiller]:
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        # Several Ray clusters may run on this machine: name ours, for the state API too.
        "RAY_ADDRESS": ray_address,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLER, ray_address, APP],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", "the killer driver did not connect"
        yield ReplicaKiller(proc)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
