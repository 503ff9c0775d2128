from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve_app.ops.exit_codes import ExitCode
from serve_app.ops.job_client import JobClient, JobClientError
from tests.support import REPO, Service


def job(state: str, failed: int = 0) -> dict[str, Any]:
    return {
        "id": "j1",
        "state": state,
        "progress": {"files_done": 1, "files_total": 2, "records": 3, "bytes": 4},
        "summary": {"records": 3, "failed": failed} if state == "SUCCEEDED" else None,
        "output": "/out",
        "error": None,
    }


def test_submit_sends_absolute_paths_and_only_the_fields_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        assert request.headers["authorization"] == "Bearer k"
        return httpx.Response(202, json=job("PENDING"))

    with JobClient("http://x", api_key="k", transport=httpx.MockTransport(handler)) as client:
        client.submit(["in/*.json", "s3://b/in"], "out", output_format="parquet", top_words=None)
    assert sent == [
        {
            "inputs": [f"{tmp_path}/in/*.json", "s3://b/in"],
            "output": f"{tmp_path}/out",
            "output_format": "parquet",
        }
    ]


def test_wait_polls_until_the_job_ends_and_errors_name_the_problem() -> None:
    states = iter(["PENDING", "RUNNING", "SUCCEEDED"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(409, json={"detail": "job j1 is already SUCCEEDED"})
        return httpx.Response(200, json=job(next(states)))

    seen: list[str] = []
    with JobClient("http://x", transport=httpx.MockTransport(handler)) as client:
        done = client.wait("j1", on_update=lambda j: seen.append(j["state"]), sleep=lambda s: None)
        with pytest.raises(JobClientError, match="409: job j1 is already SUCCEEDED"):
            client.cancel("j1")
    assert seen == ["PENDING", "RUNNING", "SUCCEEDED"] and done["state"] == "SUCCEEDED"


@pytest.mark.serve
def test_cleanserve_job_submit_wait_status_list(service: Service, tmp_path: Path) -> None:
    if service.job_root is None:
        pytest.skip("the service under test has no job root")
    source = service.job_root / "cli-in"
    source.mkdir()
    (source / "a.ndjson").write_text('{"text": "one two"}\n{"text": 1}\n')
    out = service.job_root / "cli-out"
    cli = [sys.executable, "-m", "serve_app.ops.cli", "job", "--url", service.url]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], cwd=REPO, capture_output=True, text=True, timeout=300)

    submitted = run("submit", str(source), "--out", str(out), "--wait")
    # One record failed: the job succeeded, the exit status still says so, with the count.
    assert submitted.returncode == ExitCode.RECORDS_FAILED, submitted.stderr
    assert "1 of 2 record(s) failed" in submitted.stderr
    job_id = submitted.stdout.splitlines()[0].strip()
    assert "SUCCEEDED" in submitted.stdout
    status = run("status", job_id)
    assert status.returncode == ExitCode.RECORDS_FAILED and "SUCCEEDED" in status.stdout
    listed = run("list")
    assert listed.returncode == 0 and job_id in listed.stdout
    assert run("cancel", job_id).returncode == ExitCode.FAILED  # already finished: 409
    refused = run("submit", str(source), "--out", str(out))
    assert refused.returncode == ExitCode.FAILED and "not empty" in refused.stderr
