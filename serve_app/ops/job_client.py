"""Client side of /v1/jobs: submit, poll, list and cancel, for `cleanserve job`.

with JobClient("http://127.0.0.1:8000") as jobs:
    job = jobs.submit(["/data/reviews/*.json"], "/data/out/run-1")
    job = jobs.wait(job["id"], on_update=print)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


class JobClientError(RuntimeError):
    pass


def absolute(target: str) -> str:
    """Paths as the service needs them (absolute; it has no working directory of ours)."""
    return target if "://" in target else os.path.abspath(target)


class JobClient:
    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=url, headers=headers, timeout=timeout_s, transport=transport
        )

    def __enter__(self) -> JobClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise JobClientError(f"{method} {path}: {exc!r}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise JobClientError(f"{response.status_code}: {detail}")
        return response.json()

    def submit(
        self,
        inputs: Sequence[str],
        output: str,
        *,
        output_format: str | None = None,
        options: dict[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"inputs": [absolute(i) for i in inputs], "output": absolute(output)}
        if output_format:
            body["output_format"] = output_format
        if options:
            body["options"] = options
        body.update({key: value for key, value in fields.items() if value is not None})
        job: dict[str, Any] = self._call("POST", "/v1/jobs", json=body)
        return job

    def status(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._call("GET", f"/v1/jobs/{job_id}")
        return job

    def list(self) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self._call("GET", "/v1/jobs")["jobs"]
        return jobs

    def cancel(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self._call("DELETE", f"/v1/jobs/{job_id}")
        return job

    def wait(
        self,
        job_id: str,
        *,
        on_update: Callable[[dict[str, Any]], None] | None = None,
        poll_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        while True:
            job = self.status(job_id)
            if on_update is not None:
                on_update(job)
            if job["state"] in TERMINAL:
                return job
            sleep(poll_s)
