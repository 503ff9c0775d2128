"""What an operator relies on, through HAProxy and the real replicas: request ids in headers,
error bodies and every replica's log lines; probes; the documented /v1/batch example; what
the proxy answers itself; the metrics the Grafana dashboard reads, as exported."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from serve_app.service.api_docs import BATCH_EXAMPLES, BATCH_RESULT_EXAMPLE
from tests.deploy.test_grafana import DASHBOARD, JOB_METRICS, targets
from tests.reliability import serve_admin
from tests.support import Service

pytestmark = pytest.mark.serve


def serve_logs(service: Service) -> Path:
    match = re.search(
        r"Service logs \(JSON lines\): (\S+)", service.log.read_text(errors="replace")
    )
    if match is None:
        pytest.skip("a service started elsewhere (CLEANSERVE_TEST_URL): its logs are not here")
    return Path(match.group(1))


def log_lines(directory: Path, deployment: str) -> Iterator[dict[str, Any]]:
    for path in directory.glob(f"replica_cleanserve_{deployment}_*.log"):
        for line in path.read_bytes().splitlines():
            if line.startswith(b"{"):
                yield orjson.loads(line)


def wait_for(predicate: Any, what: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s")


# -- request ids and logs ----------------------------------------------------------------------


def test_the_request_id_reaches_the_ingress_line_and_the_replica_lines(
    client: httpx.Client, service: Service
) -> None:
    request_id = f"ops-{uuid.uuid4().hex}"
    response = client.post(
        "/v1/analyze", json={"text": "物流很快 great"}, headers={"X-Request-ID": request_id}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id
    directory = serve_logs(service)

    def ingress_line() -> dict[str, Any] | None:
        for line in log_lines(directory, "Ingress"):
            if line.get("event") == "request" and line.get("request_id") == request_id:
                return line
        return None

    line = wait_for(ingress_line, "the ingress's request line")
    assert line["route"] == "/v1/analyze" and line["status"] == 200
    assert line["bytes_in"] == len(response.request.content)
    assert line["bytes_out"] == len(response.content) and line["latency_ms"] > 0
    assert line["deployment"].endswith("Ingress") and line["levelname"] == "INFO"
    # WordCounter served the request's handle call: Serve's line there carries the same id.
    wait_for(
        lambda: any(
            entry.get("request_id") == request_id for entry in log_lines(directory, "WordCounter")
        ),
        "a WordCounter line with the request id",
    )


def test_a_batch_logs_its_records_and_a_finished_line(
    client: httpx.Client, service: Service
) -> None:
    body = b'{"text": "a b"}\n{"text": 5}\n{"text": "c"}\n'
    response = client.post(
        "/v1/batch", content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    directory = serve_logs(service)

    def lines() -> dict[str, dict[str, Any]] | None:
        found = {
            line["event"]: line
            for line in log_lines(directory, "Ingress")
            if line.get("request_id") == request_id and "event" in line
        }
        return found if {"request", "batch_finished"} <= set(found) else None

    found = wait_for(lines, "the batch's lines")
    for event in ("request", "batch_finished"):
        assert (found[event]["records"], found[event]["ok"], found[event]["failed"]) == (3, 2, 1)
    assert found["request"]["bytes_in"] == len(body)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/v1/clean", {"json": {"text": 1}}, 422),
        ("POST", "/v1/clean", {"content": b"{", "headers": {"content-type": "text/plain"}}, 415),
        ("POST", "/v1/clean", {"content": b"x" * (4 * 1024 * 1024 + 1)}, 413),
        ("POST", "/v1/batch?include=nope", {"content": b"{}"}, 422),
        ("POST", "/v1/batch", {"content": b"x", "headers": {"content-type": "image/png"}}, 415),
        ("GET", "/no/such/route", {}, 404),
    ],
)
def test_every_error_body_carries_the_request_id(
    client: httpx.Client, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    response = client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["detail"]


# -- probes and contract -----------------------------------------------------------------------


def test_livez_and_readyz(client: httpx.Client) -> None:
    assert client.get("/livez").json() == {"status": "ok", "deployments": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["deployments"] == {"TextCleaner": "ok", "WordCounter": "ok"}


def test_openapi_has_batch_examples_and_error_bodies(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    batch = spec["paths"]["/v1/batch"]["post"]
    for media, example in BATCH_EXAMPLES.items():
        assert batch["requestBody"]["content"][media]["examples"]["reviews"] == example
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert response.get("content"), f"{path} {status} has no documented body"
    assert "request_id" in spec["components"]["schemas"]["ErrorBody"]["properties"]
    assert "securitySchemes" not in spec.get("components", {})  # no API keys on this service


def test_the_documented_batch_example_is_what_the_service_answers(client: httpx.Client) -> None:
    example = BATCH_EXAMPLES["application/x-ndjson"]["value"]
    response = client.post(
        "/v1/batch", content=example.encode(), headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 200
    answered = [orjson.loads(line) for line in response.content.splitlines()]
    documented = [orjson.loads(line) for line in BATCH_RESULT_EXAMPLE.splitlines()]
    answered[-1].pop("nodes", None)  # which machines did the work: differs per cluster
    assert answered == documented


# -- what HAProxy answers itself (README, "Operating it") --------------------------------------


def test_a_header_past_haproxys_buffer_gets_haproxys_html_400(client: httpx.Client) -> None:
    # Ray 2.60 lets no error file be configured for 400 (only 502/503/504, fixed by Serve):
    # this pins what a client gets, as the README documents it.
    response = client.get("/livez", headers={"X-Big": "a" * 20_000})
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/html"
    assert "400 Bad request" in response.text
    assert "x-request-id" not in response.headers
    # Under HAProxy's 16 KB buffer, the application answers as usual.
    assert client.get("/livez", headers={"X-Big": "a" * 8_000}).status_code == 200


# -- metrics -----------------------------------------------------------------------------------

# Exported only once their event has happened, which this test does not cause: a chunk or a
# real-time call sent again after a replica failure (tests/reliability/test_faults.py), an
# exception inside a deployment, a bulk job (issue #13). The static check
# (tests/deploy/test_grafana.py) still matches them against their definitions.
EVENT_ONLY = {
    "ray_cleanserve_batch_chunk_retries_total",
    "ray_cleanserve_realtime_retries_total",
    "ray_serve_deployment_error_counter_total",
    *(f"ray_{name}_total" for name in JOB_METRICS),
}


def exported(service: Service) -> str:
    headers = {"Authorization": f"Bearer {serve_admin.ray_token()}"}
    nodes = httpx.get(
        f"{service.dashboard_url}/nodes?view=summary", headers=headers, timeout=30
    ).json()
    texts = []
    for node in nodes["data"]["summary"]:
        port = node["raylet"]["metricsExportPort"]
        texts.append(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text)
    return "\n".join(texts)


def test_every_dashboard_query_reads_exported_metrics_and_labels(
    client: httpx.Client, service: Service
) -> None:
    if service.log == Path("/dev/null"):
        pytest.skip("a service started elsewhere: its metrics port is not known here")
    # Traffic on every route and outcome the panels show.
    client.post("/v1/clean", json={"text": "x"})
    client.post("/v1/count", json={"text": "x"})
    client.post("/v1/analyze", json={"text": "x"})
    client.post("/v1/clean", json={"text": 1})
    client.post(
        "/v1/batch",
        content=b'{"text": "a"}\n{"text": 1}\n',
        headers={"content-type": "application/x-ndjson"},
    )
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    wanted: dict[str, set[str]] = {}
    for _, target in targets(dashboard):
        expr = target["expr"]
        labels = {
            label.strip()
            for group in re.findall(r"by \(([^)]*)\)", expr)
            for label in group.split(",")
        } - {"le"}
        for name in re.findall(r"\bray_[a-z0-9_]+", expr):
            wanted.setdefault(name, set()).update(labels)

    def missing() -> dict[str, set[str]]:
        text = exported(service)
        gaps = {}
        for name, labels in wanted.items():
            if name in EVENT_ONLY:
                continue
            samples = re.findall(rf"^{name}\{{([^}}]*)\}}", text, re.M)
            seen = {pair.split("=", 1)[0] for sample in samples for pair in sample.split(",")}
            if not samples or not labels <= seen:
                gaps[name] = labels - seen if samples else {"(not exported)"}
        return gaps

    # Ray's metrics agent exports what replicas reported at its last interval (~10 s).
    deadline = time.monotonic() + 60
    while (gaps := missing()) and time.monotonic() < deadline:
        time.sleep(2)
    assert gaps == {}
