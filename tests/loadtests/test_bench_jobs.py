from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from loadtests.bench import jobs


def test_amdahl_projects_from_the_serial_fraction() -> None:
    assert jobs.amdahl(0.0, 16) == pytest.approx(16.0)
    assert jobs.amdahl(0.05, 16) == pytest.approx(1 / (0.05 + 0.95 / 16))
    assert jobs.amdahl(1.0, 64) == pytest.approx(1.0)
    assert jobs.amdahl(None, 16) is None


@pytest.mark.parametrize(
    ("label", "worker"),
    [
        ("_group_task", True),
        ("_reduce_task", True),
        ("MapWorker(MapBatches(FileGroupWorker))", True),
        ("JobRunner", False),
        ("IDLE", False),
        ("raylet", False),
    ],
)
def test_worker_processes_are_told_by_their_title(label: str, worker: bool) -> None:
    assert jobs.is_worker(label) is worker


def run(
    name: str,
    mb_per_s: float,
    mode: str = "seed",
    share: float | None = None,
    ingress: float | None = None,
) -> dict:  # type: ignore[type-arg]
    extra = {} if share is None else {"coordination_share": share}
    if share is not None:
        extra["coordination_share_beyond_idle"] = share / 2
    if ingress is not None:
        extra["ingress_cpu_share"] = ingress
    return {
        "name": name,
        "mode": mode,
        "seconds": 100 / mb_per_s,
        "mb_per_s": mb_per_s,
        "mb_per_cpu_s": mb_per_s / 2,
        "extra": extra,
    }


def test_targets_and_report_use_ratios_from_the_same_run() -> None:
    runs = {
        "seed-single": run("seed-single", 10.0),
        "seed-ray": run("seed-ray", 6.0),
        "core-standard": run("core-standard", 2.0, "standard"),
        "job-seed-summary": run("job-seed-summary", 13.0, share=0.03),
        "job-seed": run("job-seed", 9.0, share=0.04),
        "job-standard": run("job-standard", 3.0, "standard", share=0.08),
        "batch-seed": run("batch-seed", 11.0, ingress=0.12),
        "batch-standard": run("batch-standard", 3.2, "standard", ingress=0.2),
        # The service's first upload is shown, never a target's measurement.
        jobs.FIRST_UPLOAD: run(jobs.FIRST_UPLOAD, 20.0, ingress=0.3),
    }
    checks = {t.key: t for t in jobs.targets(runs)}
    # seed mode against the seed script: summary only, its own output
    assert checks["job_seed_vs_seed_single"].measured == pytest.approx(1.3)
    assert checks["job_seed_vs_seed_single"].status == "PASS"
    assert checks["job_seed_vs_seed_ray"].measured == pytest.approx(13 / 6)
    assert checks["job_seed_rows_vs_seed_single"].status == "MISS"  # 0.9x < 1.0x
    assert checks["job_standard_vs_core"].status == "MISS"  # 1.5x < 1.6x
    assert checks["job_coordination"].measured == pytest.approx(0.08)
    assert checks["job_coordination"].status == "MISS"
    assert checks["batch_seed_vs_seed_single"].measured == pytest.approx(1.1)
    assert checks["batch_seed_summary_vs_seed_single"].measured is None  # not run
    assert checks["batch_standard_vs_core"].status == "PASS"  # 1.6x >= 1.5x
    assert checks["batch_ingress_share"].measured == pytest.approx(0.2)
    assert checks["batch_ingress_share"].status == "MISS"
    text = jobs.report(
        {"command": "x", "corpus": {"files": 2, "bytes": 100}, "loadavg": (1, 1, 1), "runs": runs},
        list(checks.values()),
    )
    row = (
        "| job-seed-summary | 7.69 | 13.00 | 6.50 | 1.30x | 2.17x | – | 3.0% | 1.5% | 11.0x "
        "| 22.1x |"
    )
    assert row in text
    assert "| job, seed mode, summary only vs the seed script | 1.300x | 1.3x | met |" in text
    assert f"| {jobs.FIRST_UPLOAD} | " in text and "not a target" in text


def test_the_memory_table_shows_the_largest_process_and_the_largest_private_part() -> None:
    memory = [
        {
            "bytes": 99e6,
            "state": "SUCCEEDED",
            "seconds": 3.5,
            "largest_process": "_group_task",
            "largest_process_peak_bytes": 334 * 2**20,
            "largest_private_process": "_group_task",
            "largest_private_bytes": 250 * 2**20,
            "session_peak_bytes": 4000 * 2**20,
        }
    ]
    results = {"command": "x", "corpus": {"files": 2, "bytes": 100}, "loadavg": (1, 1, 1)}
    text = jobs.report({**results, "runs": {}, "memory": memory}, [])
    assert "| 99 | SUCCEEDED | 3.5 | _group_task | 334 | 250 (_group_task) | 4,000 |" in text


def test_the_service_gets_fallback_proxy_ports_of_its_own(tmp_path: Path) -> None:
    """Serve's fallback proxy binds fixed ports (8500, 9000) with SO_REUSEPORT: the benchmark's
    service must not share them with another service on the machine."""
    args = argparse.Namespace(job_engine=None)
    first = jobs.service_env(args, tmp_path, [tmp_path])
    second = jobs.service_env(args, tmp_path, [tmp_path])
    assert first["CLEANSERVE_JOB_ROOTS"] == str(tmp_path)
    ports = [
        env[f"RAY_SERVE_FALLBACK_PROXY_{kind}_PORT"]
        for env in (first, second)
        for kind in ("HTTP", "GRPC")
    ]
    assert "8500" not in ports and "9000" not in ports
