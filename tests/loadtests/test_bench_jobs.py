from __future__ import annotations

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
        ("MapWorker(MapBatches(FileGroupWorker))", True),
        ("JobRunner", False),
        ("IDLE", False),
        ("raylet", False),
    ],
)
def test_worker_processes_are_told_by_their_title(label: str, worker: bool) -> None:
    assert jobs.is_worker(label) is worker


def run(name: str, mb_per_s: float, mode: str = "seed", share: float | None = None) -> dict:  # type: ignore[type-arg]
    return {
        "name": name,
        "mode": mode,
        "seconds": 100 / mb_per_s,
        "mb_per_s": mb_per_s,
        "mb_per_cpu_s": mb_per_s / 2,
        "extra": {} if share is None else {"coordination_share": share},
    }


def test_targets_and_report_use_ratios_from_the_same_run() -> None:
    runs = {
        "seed-single": run("seed-single", 10.0),
        "seed-ray": run("seed-ray", 6.0),
        "core-standard": run("core-standard", 2.0, "standard"),
        "job-seed": run("job-seed", 13.0, share=0.03),
        "job-standard": run("job-standard", 3.0, "standard", share=0.08),
    }
    checks = {t.key: t for t in jobs.targets(runs)}
    assert checks["job_seed_vs_seed_single"].measured == pytest.approx(1.3)
    assert checks["job_seed_vs_seed_single"].status == "PASS"
    assert checks["job_seed_vs_seed_ray"].measured == pytest.approx(13 / 6)
    assert checks["job_standard_vs_core"].status == "MISS"  # 1.5x < 1.6x
    assert checks["job_coordination"].measured == pytest.approx(0.08)
    assert checks["job_coordination"].status == "MISS"
    text = jobs.report(
        {"command": "x", "corpus": {"files": 2, "bytes": 100}, "loadavg": (1, 1, 1), "runs": runs},
        list(checks.values()),
    )
    assert "| job-seed | 7.69 | 13.00 | 6.50 | 1.30x | 2.17x | – | 3.0% | 11.0x | 22.1x |" in text
    assert "| job, seed mode vs the seed script (MB/s) | 1.300x | 1.3x | met |" in text
