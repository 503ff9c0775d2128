"""One exit-status scheme for `cleanserve batch` and `cleanserve job` (serve_app/ops/exit_codes.py):
each status of `job`, through a mock transport, and each of `batch` that needs no service."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from serve_app.ops import job_cli
from serve_app.ops.cli import build_parser
from serve_app.ops.exit_codes import ExitCode, for_job
from tests.ops.test_cli import cleanserve


def job(state: str, failed: int = 0) -> dict[str, Any]:
    done = state == "SUCCEEDED"
    return {
        "id": "j1",
        "state": state,
        "progress": {"files_done": 1, "files_total": 1, "records": 5, "bytes": 9, "bytes_total": 9},
        "summary": {"records": 5, "ok": 5 - failed, "failed": failed} if done else None,
        "output": "/out",
        "error": None if state != "FAILED" else "a worker died",
    }


@pytest.mark.parametrize(
    ("state", "failed", "code"),
    [
        ("SUCCEEDED", 0, ExitCode.OK),
        ("SUCCEEDED", 2, ExitCode.RECORDS_FAILED),
        ("FAILED", 0, ExitCode.FAILED),
        ("CANCELLED", 0, ExitCode.FAILED),
        ("RUNNING", 0, ExitCode.OK),
        ("PENDING", 0, ExitCode.OK),
    ],
)
def test_for_job(state: str, failed: int, code: ExitCode) -> None:
    assert for_job(job(state, failed)) == code


def run_job(argv: list[str], handler: Callable[[httpx.Request], httpx.Response]) -> int:
    args = build_parser().parse_args(["job", "--url", "http://cleanserve", *argv])
    return job_cli.run(args, transport=httpx.MockTransport(handler))


def answers(*jobs: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    """The job's states, one per request (the last repeats): submit, then each poll."""
    replies = list(jobs)

    def handler(request: httpx.Request) -> httpx.Response:
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        return httpx.Response(202 if request.method == "POST" else 200, json=reply)

    return handler


@pytest.mark.parametrize(
    ("final", "code", "message"),
    [
        (job("SUCCEEDED"), ExitCode.OK, None),
        (job("SUCCEEDED", failed=2), ExitCode.RECORDS_FAILED, "2 of 5 record(s) failed"),
        (job("FAILED"), ExitCode.FAILED, "job failed"),
        (job("CANCELLED"), ExitCode.FAILED, "job cancelled"),
    ],
)
def test_job_submit_wait_and_status_exit_with_the_jobs_outcome(
    final: dict[str, Any],
    code: ExitCode,
    message: str | None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("time.sleep", lambda s: None)  # JobClient.wait's poll interval
    submit = ["submit", "/in", "--out", "/out", "--wait"]
    assert run_job(submit, answers(job("PENDING"), job("RUNNING"), final)) == code
    assert run_job(["status", "j1"], answers(final)) == code
    err = capsys.readouterr().err
    if message is not None:
        assert err.count(message) == 2, err


def test_job_submit_without_wait_and_status_of_a_running_job_exit_0() -> None:
    assert run_job(["submit", "/in", "--out", "/out"], answers(job("PENDING"))) == ExitCode.OK
    assert run_job(["status", "j1"], answers(job("RUNNING"))) == ExitCode.OK


@pytest.mark.parametrize(
    ("argv", "status", "detail"),
    [
        (["submit", "/in", "--out", "/out"], 400, "/out is not empty"),
        (["status", "nope"], 404, "no job nope"),
        (["cancel", "j1"], 409, "job j1 is already SUCCEEDED"),
    ],
)
def test_job_exits_1_when_the_service_answers_an_error(
    argv: list[str], status: int, detail: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"detail": detail, "request_id": "r1"})

    assert run_job(argv, handler) == ExitCode.FAILED
    assert f"{status}: {detail}" in capsys.readouterr().err


def test_job_exits_1_when_the_service_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    assert run_job(["status", "j1"], handler) == ExitCode.FAILED
    assert "connection refused" in capsys.readouterr().err


def test_job_cancel_exits_0_when_the_job_is_cancelled() -> None:
    assert run_job(["cancel", "j1"], answers(job("CANCELLED"))) == ExitCode.OK


def test_job_with_options_that_are_not_json_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing is sent for bad arguments")

    argv = ["submit", "/in", "--out", "/out", "--options", "{oops"]
    assert run_job(argv, handler) == ExitCode.USAGE
    assert "--options is not JSON" in capsys.readouterr().err


def test_job_with_a_missing_argument_is_a_usage_error() -> None:
    result = cleanserve("job", "submit", "/in")  # no --out
    assert result.returncode == ExitCode.USAGE and "--out" in result.stderr


@pytest.mark.parametrize(
    "command", [("batch",), ("job",), ("job", "submit"), ("job", "status"), ("job", "cancel")]
)
def test_help_lists_every_exit_status(command: tuple[str, ...]) -> None:
    result = cleanserve(*command, "--help")
    assert result.returncode == 0
    assert "exit status:" in result.stdout
    for code in ExitCode:
        assert f"\n  {int(code)}  " in result.stdout, (code, result.stdout)


def test_batch_with_options_that_are_not_json_is_a_usage_error(tmp_path: Any) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"text": "x"}))
    result = cleanserve("batch", str(tmp_path / "a.json"), "--options", "{oops")
    assert result.returncode == ExitCode.USAGE
