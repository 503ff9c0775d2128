"""The benchmark's CPU accounting: a process that ends during a measurement still counts, and
each process is named by what it became."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from loadtests.bench import procs

# A session leader that starts a child in its session; the child burns CPU and ends; then the
# leader says so in a file and waits to be ended.
_LEADER = textwrap.dedent(
    """
    import subprocess, sys, time
    time.sleep(0.3)
    burn = "import time\\nend = time.process_time() + 0.4\\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    open(sys.argv[1], "w").close()
    time.sleep(60)
    """
)


def _cpu_of_a_child_that_ends(tmp_path: Path, interval_s: float) -> float:
    done = tmp_path / f"done-{interval_s}"
    leader = subprocess.Popen([sys.executable, "-c", _LEADER, str(done)], start_new_session=True)
    try:
        with procs.CpuTracker(leader.pid, interval_s=interval_s) as tracker:
            deadline = time.monotonic() + 30
            while not done.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        assert done.exists()
        return sum(tracker.seconds().values())
    finally:
        leader.kill()
        leader.wait()


def test_a_process_that_ends_before_the_measurement_keeps_its_cpu(tmp_path: Path) -> None:
    assert _cpu_of_a_child_that_ends(tmp_path, interval_s=0.05) >= 0.3
    # Only a snapshot at each end (an interval longer than the measurement) misses it.
    assert _cpu_of_a_child_that_ends(tmp_path, interval_s=600) < 0.2


class _FakeProcess:
    def __init__(self, pid: int, timeline: list[tuple[str, float]]) -> None:
        self.pid = pid
        self.timeline = timeline  # (label, cpu seconds so far), one per sample
        self.at = 0

    def cpu_times(self) -> Any:
        return SimpleNamespace(user=self.timeline[self.at][1], system=0.0)


def test_a_worker_is_named_by_what_it_became(monkeypatch: pytest.MonkeyPatch) -> None:
    replica = _FakeProcess(1, [("python", 0.0), ("IDLE", 0.5), ("WordCounter", 2.0)])
    task = _FakeProcess(2, [("IDLE", 0.0), ("_group_task", 1.0), ("IDLE", 3.0)])
    idle = _FakeProcess(3, [("IDLE", 0.0), ("IDLE", 0.0), ("IDLE", 0.25)])
    fakes = [replica, task, idle]
    monkeypatch.setattr(procs, "session_processes", lambda sid: fakes)
    monkeypatch.setattr(procs, "label", lambda proc: proc.timeline[proc.at][0])
    tracker = procs.CpuTracker(0, prefer=lambda name: name == "_group_task")
    tracker.sample()  # the first sample is the start
    for step in (1, 2):
        for fake in fakes:
            fake.at = step
        tracker.sample()
    assert tracker.seconds() == {"_group_task": 3.0, "WordCounter": 2.0, "IDLE": 0.25}


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("ray::ServeReplica:cleanserve:Ingress", "Ingress"),
        ("ray::ServeReplica:cleanserve:WordCounter.initialize_and_get_metadata", "WordCounter"),
        (
            "SERVE_REPLICA::cleanserve#WordCounter#mnznvd65:ServeReplica:cleanserve:WordCounter",
            "WordCounter",
        ),
        ("ray::ServeController.listen_for_change", None),
        ("ray::IDLE", None),
    ],
)
def test_a_replica_is_named_by_its_deployment(title: str, name: str | None) -> None:
    assert procs.replica_name(title) == name
