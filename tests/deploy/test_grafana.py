"""deploy/grafana-dashboard.json queries metrics that exist, under the names Ray exports them.

Ray exports every metric with a `ray_` prefix; a Counter gains `_total`, a Histogram is read
through `_bucket` (or `_sum`/`_count`), a Gauge keeps its name. The names and kinds come from the
source that defines them: serve_app/service/metrics.py and the installed Ray Serve, not from memory.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import ray.serve

from serve_app import package_data
from serve_app.service import metrics

DASHBOARD = package_data.path(package_data.GRAFANA_DASHBOARD)
SERVICE_SOURCE = Path(metrics.__file__).parent
CUSTOM_METRICS = SERVICE_SOURCE / "metrics.py"
# Job metrics (issue #13) come from the job actors (ray.util.metrics), outside any Serve
# application: no `application` tag. Their panels are accepted under these names and kinds
# until the jobs module defines them; from then on its source is checked like the rest.
JOB_METRICS = {
    "cleanserve_job_records": "Counter",
    "cleanserve_job_bytes": "Counter",
    "cleanserve_jobs": "Counter",
}
SERVE_SOURCE = Path(ray.serve.__file__).parent
SUFFIXES = {"Counter": ("_total",), "Histogram": ("_bucket", "_sum", "_count"), "Gauge": ("",)}
# Serve's own metrics the dashboard must show beside the service's.
SERVE_METRICS = {
    "ray_serve_num_http_requests_total",
    "ray_serve_http_request_latency_ms_bucket",
    "ray_serve_deployment_request_counter_total",
    "ray_serve_deployment_processing_latency_ms_bucket",
    "ray_serve_deployment_replica_healthy",
    "ray_serve_replica_processing_queries",
}
_DEFINITION = re.compile(r'metrics\.(Counter|Gauge|Histogram)\(\s*(?:name\s*=\s*)?f?"([^"]+)"')
_METRIC = re.compile(r"\bray_[a-z0-9_]+")


def definitions(sources: Iterator[Path]) -> list[tuple[str, re.Pattern[str]]]:
    """(kind, exported-name pattern) for each metric defined in `sources`; f-string fields
    such as serve_num_{protocol_name}_requests match any lowercase word."""
    found = []
    for path in sources:
        for kind, name in _DEFINITION.findall(path.read_text(encoding="utf-8")):
            found.append((kind, _pattern(kind, name)))
    return found


def _pattern(kind: str, name: str) -> re.Pattern[str]:
    body = re.sub(r"\\\{[^}]*\\\}", "[a-z]+", re.escape(name))
    suffixes = "|".join(re.escape(s) for s in SUFFIXES[kind])
    return re.compile(rf"ray_{body}(?:{suffixes})")


def own_metrics() -> list[tuple[str, re.Pattern[str]]]:
    defined = definitions(SERVICE_SOURCE.rglob("*.py"))
    pending = [
        (kind, _pattern(kind, name))
        for name, kind in JOB_METRICS.items()
        if not any(p.pattern.startswith(f"ray_{name}(?:") for _, p in defined)
    ]
    return defined + pending


def known_metrics() -> list[tuple[str, re.Pattern[str]]]:
    serve = (p for p in SERVE_SOURCE.rglob("*.py") if "tests" not in p.parts)
    return own_metrics() + definitions(serve)


def targets(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target


def unknown_metrics(dashboard: Mapping[str, Any]) -> list[str]:
    known = known_metrics()
    return [
        f"{title}: {name}"
        for title, target in targets(dashboard)
        for name in _METRIC.findall(target["expr"])
        if not any(pattern.fullmatch(name) for _, pattern in known)
    ]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def test_prometheus_is_a_template_variable(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    for _, target in targets(dashboard):
        assert target["datasource"]["uid"] == "${datasource}"


def test_every_queried_metric_exists(dashboard: dict[str, Any]) -> None:
    assert unknown_metrics(dashboard) == []


def test_every_custom_metric_is_shown(dashboard: dict[str, Any]) -> None:
    shown = {name for _, t in targets(dashboard) for name in _METRIC.findall(t["expr"])}
    for kind, pattern in own_metrics():
        assert any(pattern.fullmatch(name) for name in shown), (kind, pattern.pattern)


def test_serve_metrics_are_shown_beside_them(dashboard: dict[str, Any]) -> None:
    shown = {name for _, t in targets(dashboard) for name in _METRIC.findall(t["expr"])}
    assert SERVE_METRICS <= shown


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("ray_cleanserve_texts_processed_total", "ray_cleanserve_texts_processed"),
        ("ray_cleanserve_core_seconds_bucket", "ray_cleanserve_core_seconds_total"),
        ("ray_serve_num_http_requests_total", "ray_serve_num_http_request_total"),
        ("ray_serve_replica_processing_queries", "ray_serve_replica_processing_queries_total"),
    ],
)
def test_the_check_catches_a_wrong_name(dashboard: dict[str, Any], old: str, new: str) -> None:
    broken = copy.deepcopy(dashboard)
    for panel in broken["panels"]:
        for target in panel.get("targets", []):
            target["expr"] = target["expr"].replace(old, new)
    assert any(new in problem for problem in unknown_metrics(broken))


def test_every_query_is_scoped_to_the_selected_application(dashboard: dict[str, Any]) -> None:
    for title, target in targets(dashboard):
        for name, selector in re.findall(r"(ray_[a-z0-9_]+)\{([^}]*)\}", target["expr"]):
            assert 'application=~"$application"' in selector, title
        for name in _METRIC.findall(target["expr"]):
            if not any(name.startswith(f"ray_{job}") for job in JOB_METRICS):
                assert f"{name}{{" in target["expr"], f"{title}: {name} has no selector"


def test_job_metrics_keep_the_kinds_the_panels_read() -> None:
    for kind, pattern in definitions(SERVICE_SOURCE.rglob("*.py")):
        for name, expected in JOB_METRICS.items():
            if pattern.pattern.startswith(f"ray_{name}(?:"):
                assert kind == expected, name
