import csv
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from serve_app.ops.loadtest import replicas
from serve_app.ops.loadtest.replicas import ReplicaSampler


def payload(cleaners: list[str], target: int = 2) -> dict[str, Any]:
    return {
        "applications": {
            "cleanserve": {
                "deployments": {
                    "TextCleaner": {
                        "status": "UPSCALING",
                        "target_num_replicas": target,
                        "replicas": [{"state": state} for state in cleaners],
                    },
                    "Ingress": {
                        "status": "HEALTHY",
                        "target_num_replicas": 1,
                        "replicas": [{"state": "RUNNING"}],
                    },
                }
            }
        }
    }


def test_replica_counts_by_state() -> None:
    cleaner, ingress = replicas.replica_counts(
        payload(["RUNNING", "STARTING", "STOPPING"], target=2)
    )
    assert (cleaner.deployment, cleaner.running, cleaner.starting, cleaner.target) == (
        "TextCleaner",
        1,
        1,
        2,
    )
    assert cleaner.status == "UPSCALING"
    assert (ingress.running, ingress.starting) == (1, 0)
    assert replicas.replica_counts({}) == []


def test_the_token_comes_from_the_environment_or_the_token_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", " abc ")
    assert replicas.read_token() == "abc"
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    token_file = tmp_path / "auth_token"
    token_file.write_text("from-file\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    assert replicas.read_token() == "from-file"


def sampler(tmp_path: Path, handler: Any, **kwargs: Any) -> ReplicaSampler:
    return ReplicaSampler(
        "http://dashboard",
        tmp_path / "replicas.csv",
        token="t0k",
        transport=httpx.MockTransport(handler),
        **kwargs,
    )


def test_probe_says_why_replicas_cannot_be_read(tmp_path: Path) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(401, text="Unauthorized")

    reason = sampler(tmp_path, handler).probe()
    assert reason is not None and "token" in reason
    assert seen == ["Bearer t0k"]

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert "did not answer" in (sampler(tmp_path, down).probe() or "")
    assert (
        sampler(tmp_path, lambda request: httpx.Response(200, json=payload(["RUNNING"]))).probe()
        is None
    )


def test_samples_go_to_csv_and_changes_are_reported(tmp_path: Path) -> None:
    answers = iter(
        [
            payload(["RUNNING"], 1),
            payload(["RUNNING", "STARTING"], 2),
            payload(["RUNNING", "RUNNING"], 2),
        ]
    )
    changes: list[tuple[str, int | None, int]] = []
    probe = sampler(
        tmp_path,
        lambda request: httpx.Response(200, json=next(answers)),
        on_change=lambda now, count, previous: changes.append(
            (count.deployment, previous, count.running)
        ),
    )
    (tmp_path / "replicas.csv").write_text(",".join(replicas.CSV_FIELDS) + "\n")
    for _ in range(3):
        probe.sample_once()
    rows = replicas.read_samples(tmp_path / "replicas.csv")
    cleaner = [row for row in rows if row["deployment"] == "TextCleaner"]
    assert [(row["running"], row["starting"], row["target"]) for row in cleaner] == [
        (1, 0, 1),
        (1, 1, 2),
        (2, 0, 2),
    ]
    assert ("TextCleaner", 1, 2) in changes
    assert ("TextCleaner", None, 1) in changes  # the first sample of each deployment
    with (tmp_path / "replicas.csv").open() as file:
        assert next(csv.reader(file)) == list(replicas.CSV_FIELDS)


def test_the_sampler_thread_keeps_going_through_errors(tmp_path: Path) -> None:
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(500) if calls == 1 else httpx.Response(200, json=payload(["RUNNING"]))

    probe = sampler(tmp_path, flaky, every_s=0.01)
    probe.start()
    try:
        for _ in range(500):
            if probe.samples >= 2:
                break
            time.sleep(0.01)
    finally:
        probe.stop()
    assert probe.errors >= 1 and probe.samples >= 2
