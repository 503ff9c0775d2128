"""A short Locust run against the session's service: every answer correct, reports written.

It judges correctness, not speed (tests never assert on wall-clock time): the thresholds file
it passes allows no failed request and sets no latency limit.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, Service

pytestmark = pytest.mark.loadtest


def test_a_short_steady_run_answers_every_request_correctly(
    service: Service, service_url: str, tmp_path: Path
) -> None:
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text("max_fail_ratio = 0.0\n", encoding="utf-8")
    results = tmp_path / "loadtest"
    cmd = [
        sys.executable, "-m", "serve_app.ops.cli", "loadtest",
        "--url", service_url,
        "--dashboard-url", service.dashboard_url,
        "--shape", "steady", "-u", "8", "-r", "8", "-t", "30s",
        "--thresholds", str(thresholds),
        "--results", str(results),
        "--", "--bulk-mb", "1",
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    output = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, output

    summary = json.loads((results / "summary.json").read_text(encoding="utf-8"))
    endpoints = {row["name"]: row for row in summary["endpoints"]}
    assert endpoints["Aggregated"]["requests"] > 0, output
    assert {name: row["failures"] for name, row in endpoints.items() if row["failures"]} == {}
    for name in ("/v1/analyze", "/v1/clean", "/v1/batch"):
        assert endpoints[name]["requests"] > 0, name
    for name in ("report.html", "loadtest.png", "locust_stats.csv", "locust_stats_history.csv"):
        assert (results / name).stat().st_size > 0, name
