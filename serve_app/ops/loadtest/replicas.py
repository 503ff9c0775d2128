"""Replicas per deployment over time, from the Serve REST API on the Ray dashboard.

The dashboard has token authentication on (RAY_AUTH_MODE=token): the token is the one Ray
keeps in ~/.ray/auth_token, or what `ray get-auth-token` prints. Sampling runs in a thread of
the runner; it never touches the service's own traffic path.
"""

from __future__ import annotations

import contextlib
import csv
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

API_PATH = "/api/serve/applications/"
CSV_FIELDS = ("timestamp", "application", "deployment", "running", "starting", "target", "status")
TOKEN_FILE = Path("~/.ray/auth_token")


@dataclass(frozen=True, slots=True)
class ReplicaCount:
    application: str
    deployment: str
    running: int
    starting: (
        int  # replicas asked for and not running yet: STARTING, UPDATING, RECOVERING, PENDING_*
    )
    target: int | None
    status: str


def read_token() -> str | None:
    """The Ray auth token of this user, or None when there is none to read."""
    if token := os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return token
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", TOKEN_FILE)).expanduser()
    with contextlib.suppress(OSError):
        if token := path.read_text(encoding="utf-8").strip():
            return token
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            [sys.executable, "-m", "ray.scripts.scripts", "get-auth-token"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode == 0 and (token := done.stdout.strip()):
            return token
    return None


def replica_counts(payload: Mapping[str, Any]) -> list[ReplicaCount]:
    """Count replicas by state in one answer of GET /api/serve/applications/."""
    counts = []
    for app_name, app in (payload.get("applications") or {}).items():
        for name, deployment in (app.get("deployments") or {}).items():
            states = [replica.get("state", "") for replica in deployment.get("replicas") or []]
            counts.append(
                ReplicaCount(
                    application=app_name,
                    deployment=name,
                    running=states.count("RUNNING"),
                    starting=sum(state not in ("RUNNING", "STOPPING", "") for state in states),
                    target=deployment.get("target_num_replicas"),
                    status=str(deployment.get("status", "")),
                )
            )
    return counts


class ReplicaSampler:
    """Polls the Serve REST API every `every_s` seconds and appends to a CSV, until stopped.

    `probe()` says up front whether the API can be read at all (reachable, token accepted);
    when it cannot, the caller skips the replica chart and says why.
    """

    def __init__(
        self,
        dashboard_url: str,
        out: Path,
        *,
        token: str | None,
        every_s: float = 2.0,
        on_change: Callable[[float, ReplicaCount, int | None], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(
            base_url=dashboard_url, headers=headers, timeout=5.0, transport=transport
        )
        self.out = out
        self.every_s = every_s
        self.on_change = on_change
        self.samples = 0
        self.errors = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replica-sampler", daemon=True)
        self._last_running: dict[str, int] = {}

    def probe(self) -> str | None:
        """None when the API answers with replica data, else why it cannot be read."""
        try:
            response = self._client.get(API_PATH)
        except httpx.HTTPError as exc:
            return f"the Serve REST API at {self._client.base_url} did not answer: {exc!r}"
        if response.status_code in (401, 403):
            return (
                f"the Serve REST API refused the request ({response.status_code}): "
                "no valid Ray auth token (~/.ray/auth_token or `ray get-auth-token`)"
            )
        if response.status_code != 200:
            return f"the Serve REST API answered {response.status_code}: {response.text[:200]}"
        return None

    def start(self) -> None:
        with self.out.open("w", newline="", encoding="utf-8") as file:
            csv.writer(file).writerow(CSV_FIELDS)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.every_s + 10)
        self._client.close()

    def sample_once(self) -> list[ReplicaCount]:
        response = self._client.get(API_PATH)
        response.raise_for_status()
        now = time.time()
        counts = replica_counts(response.json())
        with self.out.open("a", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            for count in counts:
                writer.writerow(
                    [
                        f"{now:.3f}",
                        count.application,
                        count.deployment,
                        count.running,
                        count.starting,
                        "" if count.target is None else count.target,
                        count.status,
                    ]
                )
                previous = self._last_running.get(count.deployment)
                if previous != count.running and self.on_change is not None:
                    self.on_change(now, count, previous)
                self._last_running[count.deployment] = count.running
        self.samples += 1
        return counts

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.sample_once()
            except (httpx.HTTPError, ValueError) as exc:
                self.errors += 1
                self.last_error = repr(exc)
            self._stop.wait(max(0.0, self.every_s - (time.monotonic() - started)))


def read_samples(path: Path) -> list[dict[str, Any]]:
    """The sampler's CSV as rows with numbers parsed."""
    with path.open(newline="", encoding="utf-8") as file:
        return [
            {
                "timestamp": float(row["timestamp"]),
                "application": row["application"],
                "deployment": row["deployment"],
                "running": int(row["running"]),
                "starting": int(row["starting"]),
                "target": int(row["target"]) if row["target"] else None,
                "status": row["status"],
            }
            for row in csv.DictReader(file)
        ]
