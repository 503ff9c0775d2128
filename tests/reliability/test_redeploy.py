"""A redeploy of a changed config, and the per-request time budget it sets.

A changed builder argument gives the ingress a new version: Serve starts a new replica,
points HAProxy at it and stops the old one, which keeps serving what it has in flight for up
to graceful_shutdown_timeout_s (60 s in serve_config.yaml). A bulk stream open on the old
replica must finish there, every record and the summary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.reliability import serve_admin
from tests.reliability.conftest import Guarded

pytestmark = pytest.mark.reliability

TIGHT_BUDGET_S = 0.25
AFTER_DRAIN_STARTS = 200  # records still uploaded once the old ingress is draining


def _ingress_draining(guarded: Guarded) -> bool:
    app = serve_admin.application(guarded.service.dashboard_url)
    # While the application is rebuilt, its deployments may be missing from the answer.
    ingress = serve_admin.replicas(app).get("Ingress", [])
    return any(state == "STOPPING" for _, state in ingress)


def test_an_open_batch_stream_finishes_across_a_redeploy(guarded: Guarded) -> None:
    guarded.deploy()
    draining = threading.Event()
    uploaded = 0
    outcome: dict[str, Any] = {"indices": [], "summary": None, "errors": []}

    def records() -> Iterator[bytes]:
        nonlocal uploaded
        left = AFTER_DRAIN_STARTS
        deadline = time.monotonic() + 300
        while left and time.monotonic() < deadline:
            # ~70 bytes a record, ~100 records/s: a slow client, far from max_upload_bytes.
            yield orjson.dumps({"id": uploaded, "text": f"record {uploaded} " + "word " * 10})
            yield b"\n"
            uploaded += 1
            if draining.is_set():
                left -= 1
            if uploaded % 25 == 0:
                time.sleep(0.25)

    def stream() -> None:
        try:
            with httpx.Client(base_url=guarded.url, headers=guarded.headers, timeout=300) as http:
                with http.stream(
                    "POST",
                    "/v1/batch",
                    content=records(),
                    headers={"content-type": "application/x-ndjson"},
                    params={"include": "char_count"},
                ) as response:
                    outcome["status"] = response.status_code
                    if response.status_code != 200:
                        outcome["errors"].append(response.read().decode(errors="replace")[:500])
                    for line in response.iter_lines():
                        try:
                            record = orjson.loads(line)
                        except orjson.JSONDecodeError:
                            outcome["errors"].append(line[:500])
                            continue
                        if "summary" in record:
                            outcome["summary"] = record["summary"]
                        elif "index" in record:
                            outcome["indices"].append(record["index"])
                        else:
                            outcome["errors"].append(record)
        except httpx.HTTPError as exc:
            outcome["errors"].append(repr(exc))
        finally:
            outcome["ended"] = time.monotonic()

    streamer = threading.Thread(target=stream)
    streamer.start()
    serve_admin.wait_until(lambda: uploaded >= 200, timeout_s=60, what="the upload starting")
    started = time.monotonic()
    guarded.start_deploy(request_budget_s=TIGHT_BUDGET_S)
    try:
        drain_s = serve_admin.wait_until(
            lambda: _ingress_draining(guarded), timeout_s=240, what="the old ingress draining"
        )
    finally:
        draining.set()  # in any case: let the upload end
        streamer.join(timeout=300)
    guarded.wait_deployed()
    rollout_s = time.monotonic() - started
    print(
        f"\nredeploy during a batch stream: old ingress draining after {drain_s:.1f} s, "
        f"stream of {uploaded} records done after {outcome['ended'] - started:.1f} s, "
        f"rollout done after {rollout_s:.1f} s"
    )
    assert outcome.get("status") == 200, outcome["errors"][:3]
    assert not outcome["errors"], outcome["errors"][:3]
    assert outcome["indices"] == list(range(uploaded))
    assert outcome["summary"]["records"] == uploaded and outcome["summary"]["failed"] == 0


def test_a_request_over_its_budget_gets_a_504_and_the_service_still_answers(
    guarded: Guarded,
) -> None:
    guarded.deploy(request_budget_s=TIGHT_BUDGET_S)
    # ~3.7 MB of distinct words: a second or more of counting, against a quarter of a second.
    text = " ".join(f"word{i}" for i in range(350_000))
    with httpx.Client(base_url=guarded.url, headers=guarded.headers, timeout=120) as http:
        response = http.post("/v1/analyze", json={"text": text})
        assert response.status_code == 504, response.text[:300]
        assert response.headers["content-type"] == "application/json"
        assert f"budget of {TIGHT_BUDGET_S} s" in response.json()["detail"]
        # The ingress answered at once; the deployments finish the abandoned work meanwhile.
        busy_s = serve_admin.wait_until(
            lambda: serve_admin.healthy(guarded.url), timeout_s=120, what="/healthz 200"
        )
        print(
            f"\nover-budget request: 504 after the budget; /healthz 200 again after {busy_s:.1f} s"
        )
        still = http.post(
            "/v1/batch",
            content=b'{"text": "still here"}',
            headers={"content-type": "application/x-ndjson"},
        )
        assert still.status_code == 200
