"""Both job engines on one corpus, in a Ray of their own: the same summary as the core in one
process, top words and their ties included (the ray-tasks engine merges partial summaries in a
tree of tasks; Ray Data's driver merges them as rows arrive)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from loadtests.bench import corpus
from serve_app.ops.launcher import end_session
from tests.support import REPO

pytestmark = pytest.mark.cluster


def run(cmd: list[str], timeout_s: float) -> list[dict[str, object]]:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout_s)
    finally:
        end_session(proc.pid)  # its Ray, whatever ray.shutdown() left
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    return [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]


def test_both_engines_give_the_summary_of_one_sequential_pass(tmp_path: Path) -> None:
    data = corpus.write(corpus.CorpusSpec(files=24, seed=5), tmp_path / "corpus")
    assert data.total_bytes > 5 << 20  # groups of at least 1 MB: more than FAN_IN groups
    temp = tempfile.mkdtemp(prefix="/tmp/cs-engines-")  # short: Ray's socket paths
    try:
        engines = run(
            [sys.executable, "-m", "loadtests.bench.job_engines", data.pattern,
             str(tmp_path / "out"), "--mode", "seed", "--temp-dir", temp],
            timeout_s=400,
        )  # fmt: skip
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    [core] = run(
        [sys.executable, "-m", "loadtests.bench.core_pipeline", data.pattern, "--mode", "seed"],
        timeout_s=200,
    )
    expected = {k: v for k, v in core.items() if k not in ("elapsed_s", "output_bytes")}
    assert expected["records"] == 24
    assert [e["engine"] for e in engines] == ["ray-data", "ray-tasks"]
    for engine in engines:
        got = {k: v for k, v in engine.items() if k not in ("engine", "elapsed_s")}
        assert got == expected, engine["engine"]
