"""Bulk runs: the seed's two scripts, the core pipeline in one process and `cleanserve batch`,
each timed on the same corpus with its peak RSS.

Scripts time their own work (after imports, warm-up and `ray.init`); `cleanserve batch` is timed
as a user sees it, the whole command, so the comparison never favours the service.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from loadtests.bench import procs
from loadtests.bench.corpus import Corpus
from serve_app.core.summary import Summary
from serve_app.ops.loadtest.service import tail

SEED_OPTIONS: dict[str, Any] = {
    "clean": {"preset": "minimal"},
    "count": {"tokenizer": "whitespace", "lowercase": False},
}
MODE_OPTIONS: dict[str, dict[str, Any] | None] = {"seed": SEED_OPTIONS, "standard": None}
# Only for the seed's Ray script: its own throwaway cluster needs no token (the service keeps
# RAY_AUTH_MODE=token).
SEED_RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""}


@dataclass(slots=True)
class BulkRun:
    name: str
    label: str
    mode: str  # "seed" or "standard": the options the run's results follow
    seconds: float
    wall_s: float
    input_bytes: int
    peak_rss_bytes: int
    rss_note: str
    cpu_s: float | None = None  # CPU time of every process doing the work
    summary: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mb_per_s(self) -> float:
        return self.input_bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_cpu_s(self) -> float | None:
        return self.input_bytes / 1e6 / self.cpu_s if self.cpu_s else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mb_per_s": self.mb_per_s, "mb_per_cpu_s": self.mb_per_cpu_s}


class BulkError(RuntimeError):
    pass


def _last_json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise BulkError(f"no JSON result line in:\n{text[-2000:]}")


def _script(
    name: str,
    label: str,
    mode: str,
    cmd: list[str],
    corpus: Corpus,
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    session_rss: bool = False,
) -> BulkRun:
    measured = procs.run_measured(cmd, log=workdir / f"{name}.log", env=env)
    if measured.returncode != 0:
        raise BulkError(f"{name} exited {measured.returncode}:\n{tail(workdir / f'{name}.log')}")
    result = _last_json_line(measured.stdout)
    seconds = float(result.pop("elapsed_s"))
    extra: dict[str, Any] = {}
    if "init_s" in result:
        extra["ray_init_s"] = result.pop("init_s")
        extra["seconds_with_init"] = seconds + extra["ray_init_s"]
    return BulkRun(
        name=name,
        label=label,
        mode=mode,
        seconds=seconds,
        wall_s=measured.wall_s,
        input_bytes=corpus.total_bytes,
        peak_rss_bytes=measured.session_peak_bytes if session_rss else measured.max_rss_bytes,
        rss_note="sum over its Ray session, sampled" if session_rss else "process peak",
        # Including start-up (and for Ray, its cluster's processes that it reaped).
        cpu_s=measured.cpu_s,
        summary=result,
        extra=extra,
    )


def seed_single(corpus: Corpus, workdir: Path) -> BulkRun:
    cmd = [sys.executable, "-m", "loadtests.bench.seed_wordcount", corpus.pattern]
    return _script("seed-single", "seed script, one process", "seed", cmd, corpus, workdir)


def seed_ray(corpus: Corpus, workdir: Path) -> BulkRun:
    cmd = [sys.executable, "-m", "loadtests.bench.seed_ray", corpus.pattern]
    return _script(
        "seed-ray",
        "seed script, ray.remote per file",
        "seed",
        cmd,
        corpus,
        workdir,
        env=SEED_RAY_ENV,
        session_rss=True,
    )


def core(corpus: Corpus, workdir: Path, mode: str) -> BulkRun:
    cmd = [sys.executable, "-m", "loadtests.bench.core_pipeline", corpus.pattern, "--mode", mode]
    return _script(
        f"core-{mode}", f"core pipeline, one process ({mode})", mode, cmd, corpus, workdir
    )


def batch_command(
    corpus: Corpus, url: str, out: Path, mode: str, *, summary_only: bool = False
) -> list[str]:
    cmd = [sys.executable, "-m", "serve_app.ops.cli", "batch", corpus.pattern, "--out", str(out)]
    cmd += ["--url", url]
    if (options := MODE_OPTIONS[mode]) is not None:
        cmd += ["--options", json.dumps(options)]
    return [*cmd, "--summary-only"] if summary_only else cmd


def service_batch(
    corpus: Corpus,
    workdir: Path,
    *,
    url: str,
    service_sid: int,
    mode: str,
    summary_only: bool = False,
    name: str | None = None,
) -> BulkRun:
    """`cleanserve batch` on the corpus. summary_only: the seed script's own output (the
    aggregates, no line per record); the targets use the run with every record's line."""
    name = name or f"batch-{mode}" + ("-summary" if summary_only else "")
    out = workdir / f"{name}.jsonl"
    cmd = batch_command(corpus, url, out, mode, summary_only=summary_only)
    # A wide, plain console: the summary table must come out on one line per row.
    env = {"COLUMNS": "100000", "TERM": "dumb", "NO_COLOR": "1"}
    # Sampled, not two snapshots: autoscaling can stop a WordCounter before the upload ends.
    with procs.RssSampler(service_sid) as service_rss, procs.CpuTracker(service_sid) as cpu:
        measured = procs.run_measured(cmd, log=workdir / f"{name}.log", env=env)
    cores = cpu.cores()
    if measured.returncode != 0:
        raise BulkError(f"{name} exited {measured.returncode}:\n{tail(workdir / f'{name}.log')}")
    summary = parse_batch_table(measured.stdout)
    extra: dict[str, Any] = {
        "command": cmd,
        "service_idle_rss_bytes": service_rss.idle_bytes,
        "service_peak_increase_bytes": service_rss.peak_bytes - service_rss.idle_bytes,
        "service_peak_split_bytes": service_rss.peak_split,
        "client_peak_rss_bytes": measured.max_rss_bytes,
        "client_cpu_s": measured.cpu_s,
        "service_cores": cores,
        "ingress_cpu_share": ingress_cpu_share(cores),
        "replicas_after": procs.replica_counts(service_sid),
        "out_bytes": out.stat().st_size if out.exists() else 0,
    }
    if mode == "seed" and not summary_only:
        extra["rows_summary"] = summary_from_rows(out).to_dict()
    out.unlink(missing_ok=True)  # results can be as large as the corpus
    return BulkRun(
        name=name,
        label=f"/v1/batch via cleanserve batch ({mode}{', summary only' if summary_only else ''})",
        mode=mode,
        seconds=measured.wall_s,
        wall_s=measured.wall_s,
        input_bytes=corpus.total_bytes,
        peak_rss_bytes=service_rss.peak_bytes,
        rss_note="sum over the service's session, sampled every 0.2 s",
        cpu_s=sum(cores.values()) * measured.wall_s + measured.cpu_s,  # service + client
        summary=summary,
        extra=extra,
    )


INGRESS = "Ingress"


def ingress_cpu_share(cores: dict[str, float]) -> float | None:
    """The ingress's CPU seconds over those of every process of the service, during an upload:
    how much of the work is left in the one process that every upload goes through."""
    total = sum(cores.values())
    return cores.get(INGRESS, 0.0) / total if total > 0 else None


_COUNT_ROW = re.compile(
    r"\b(records|ok|failed|total_chars|total_words|unique_words)\b[^0-9\n]*([0-9][0-9,]*)"
)
_TOP_ROW = re.compile(r"\btop_words\b(.*)$", re.MULTILINE)
# Words from `str.split()` and UAX #29 hold no whitespace: "word (1,234)".
_TOP_WORD = re.compile(r"(\S+) \(([0-9][0-9,]*)\)")


def parse_batch_table(text: str) -> dict[str, Any]:
    """The summary `cleanserve batch` prints, as a dict like the service's summary line."""
    summary: dict[str, Any] = {
        key: int(value.replace(",", "")) for key, value in _COUNT_ROW.findall(text)
    }
    top = _TOP_ROW.search(text)
    summary["top_words"] = (
        [[word, int(n.replace(",", ""))] for word, n in _TOP_WORD.findall(top[1])] if top else []
    )
    return summary


def summary_from_rows(path: Path) -> Summary:
    """The summary of what the service sent back per record (rows carry their full counts when
    no top_k is asked for)."""
    summary = Summary()
    if not path.exists():
        return summary
    with path.open("rb") as handle:
        for line in handle:
            row = orjson.loads(line)
            if "error" in row:
                summary.add_failure()
                continue
            summary.add_result(
                char_count=row["char_count"],
                word_count=row["word_count"],
                word_counts=row["word_counts"],
            )
    return summary


def median_run(runs: list[BulkRun]) -> BulkRun:
    """The run of median time (the faster of the middle two), with every round's seconds."""
    ordered = sorted(runs, key=lambda run: run.seconds)
    median = ordered[(len(ordered) - 1) // 2]
    median.extra["rounds_s"] = [run.seconds for run in runs]
    return median


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))
