"""The soak run's arithmetic, and its 1-minute CI variant against the session's service."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from serve_app.ops.loadtest.soak import Sample, per_process_slopes, slope_per_hour, verdict
from tests.support import REPO, Service


def test_slope_is_mb_per_hour_of_a_least_squares_fit() -> None:
    # +1 MB a minute, with noise that cancels out: 60 MB/h.
    points = [(t * 60.0, 100.0 + t + (0.5 if t % 2 else -0.5)) for t in range(11)]
    assert slope_per_hour(points) == pytest.approx(60.0, abs=3)
    assert slope_per_hour([(0.0, 5.0), (3600.0, 5.0)]) == 0.0
    assert slope_per_hour([(0.0, 5.0)]) == 0.0


def test_a_process_that_comes_or_goes_is_no_slope_of_its_own() -> None:
    samples = [Sample(t, 1, "raylet", 100.0) for t in (0.0, 60.0, 120.0)]
    samples += [Sample(120.0, 2, "ray::ServeReplica", 300.0)]  # started at the end
    assert per_process_slopes(samples) == {"raylet (1)": 0.0}
    # The total does jump: the verdict reports it, as it would a leak.
    assert verdict(samples)["total_mb_last"] == 400.0


@pytest.mark.loadtest
def test_a_one_minute_soak_has_no_failed_request(service: Service, tmp_path: Path) -> None:
    if service.sid is None:
        pytest.skip("a service started elsewhere: its processes are not known here")
    results = tmp_path / "soak"
    cmd = [
        sys.executable, "-m", "serve_app.ops.loadtest.soak",
        "--url", service.url, "--service-pid", str(service.sid),
        "--dashboard-url", service.dashboard_url,
        "--minutes", "1", "--probe-s", "15", "--sample-s", "2", "--bulk-mb", "0.5",
        "--results", str(results),
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), done.stderr
    outcome = json.loads((results / "soak.json").read_text(encoding="utf-8"))
    print(f"\n1-minute soak: {json.dumps(outcome)}")  # the figures for the README (pytest -s)
    assert outcome["failures"] == 0, outcome
    assert outcome["requests"] > 0 and outcome["capacity_probe_failures"] == 0
    memory = outcome["memory"]
    # Every Ray process of the service was sampled, all along: GCS, raylet, replicas, HAProxy.
    assert memory["processes"] >= 8 and memory["samples"] >= 20
