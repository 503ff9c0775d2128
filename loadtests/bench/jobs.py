"""`python -m loadtests.bench --jobs`: bulk jobs (/v1/jobs) against the seed's scripts, the core
pipeline and /v1/batch, on one generated corpus, ratios from the same run.

Every row: seconds, MB/s, MB per CPU-second (CPU of every process involved: the script and
the Ray it started, or every process of the service's session plus the client), ratios to the
baselines. Job rows also split the service's CPU into the workers' (the groups' work) and the
rest (the job's driver, Ray and Serve): that rest is the serial fraction s, and Amdahl's law
projects the speed-up on N CPUs as 1 / (s + (1 - s) / N).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from loadtests.bench import bulk, corpus, procs
from loadtests.bench.targets import Target, ratio
from serve_app.ops.job_client import JobClient
from serve_app.ops.loadtest.service import Ports, free_port, running, tail, up_command

SEED = bulk.SEED_OPTIONS
WORKER_MARKERS = (
    "FileGroupWorker", "_group_task", "_reduce_task", "SignatureWorker",
    "_signature_task",
)  # fmt: skip
# The service's first upload after its start (seed mode, summary only), before the batch rows.
FIRST_UPLOAD = "batch-first-upload"
JOB_ROWS = {
    "job-seed-summary": ("seed", []),
    "job-seed": ("seed", None),
    "job-standard": ("standard", None),
}
AMDAHL_CPUS = (16, 64)
COORDINATION_MAX = 0.05


def is_worker(label: str) -> bool:
    return any(marker in label for marker in WORKER_MARKERS)


IDLE_SAMPLE_S = 5.0


def idle_cpu_per_s(sid: int) -> float:
    """CPU seconds per second that the service's processes use while no request is served."""
    with procs.CpuTracker(sid, prefer=is_worker) as tracker:
        started = time.perf_counter()
        time.sleep(IDLE_SAMPLE_S)
    return sum(tracker.seconds().values()) / (time.perf_counter() - started)


def amdahl(serial: float | None, cpus: int) -> float | None:
    if serial is None:
        return None
    return 1.0 / (serial + (1.0 - serial) / cpus)


@contextlib.contextmanager
def job_service(
    args: argparse.Namespace, out: Path, roots: Sequence[Path]
) -> Iterator[tuple[str, int]]:
    ports = Ports(
        args.port, args.dashboard_port, args.haproxy_metrics_port, args.haproxy_stats_port
    )
    url = f"http://127.0.0.1:{ports.port}"
    env = service_env(args, out, roots)
    with running(up_command(ports), url, log=out / "service.log", env=env) as proc:
        yield url, proc.pid


def service_env(args: argparse.Namespace, out: Path, roots: Sequence[Path]) -> dict[str, str]:
    env = {
        "CLEANSERVE_JOB_ROOTS": ":".join(str(r) for r in roots),
        "CLEANSERVE_JOB_STATE_DIR": str(out / "job-state"),
        # Serve's fallback proxy binds fixed ports (8500, 9000) with SO_REUSEPORT: with another
        # service on this machine, either could answer the other's requests (seen: this
        # benchmark's jobs refused by another service's job roots).
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
    }
    if args.job_engine:
        env["CLEANSERVE_JOB_ENGINE"] = args.job_engine
    return env


def warm_up(data: corpus.Corpus, outdir: Path, url: str) -> None:
    """An untimed job of a few files first, as in a service that has run one: the job registry
    starts with the first job. Every job still starts its own driver and task workers (Ray
    reuses a worker only under the same detached actor), so those costs stay in every row."""
    few = outdir / "warm-up-input"
    few.mkdir(exist_ok=True)
    for path in data.paths[:4]:
        shutil.copy(path, few / Path(path).name)
    with JobClient(url, timeout_s=300) as client:
        job = client.submit([str(few)], str(outdir / "warm-up-output"), options=SEED)
        client.wait(job["id"], poll_s=0.2)
    shutil.rmtree(few, ignore_errors=True)
    shutil.rmtree(outdir / "warm-up-output", ignore_errors=True)


def service_job(
    data: corpus.Corpus, outdir: Path, *, url: str, sid: int, name: str
) -> bulk.BulkRun:
    mode, include = JOB_ROWS[name]
    target = outdir / f"{name}-{time.monotonic_ns()}"
    idle_rate = idle_cpu_per_s(sid)
    with (
        procs.RssSampler(sid) as rss,
        procs.CpuTracker(sid, prefer=is_worker) as cpu,
        JobClient(url, timeout_s=300) as client,
    ):
        started = time.perf_counter()
        job = client.submit(
            [str(data.directory)],
            str(target),
            options=bulk.MODE_OPTIONS[mode],
            include=include,
        )
        job = client.wait(job["id"], poll_s=0.2)
        wall = time.perf_counter() - started
    seconds = cpu.seconds()
    if job["state"] != "SUCCEEDED":
        raise bulk.BulkError(f"{name}: {job['state']}: {job.get('error')}")
    workers = sum(v for k, v in seconds.items() if is_worker(k))
    total = sum(seconds.values())
    shutil.rmtree(target, ignore_errors=True)
    return bulk.BulkRun(
        name=name,
        label=f"/v1/jobs ({mode}{', summary only' if include == [] else ', every row'})",
        mode=mode,
        seconds=wall,
        wall_s=wall,
        input_bytes=data.total_bytes,
        peak_rss_bytes=rss.peak_bytes,
        rss_note="sum over the service's session, sampled every 0.2 s",
        cpu_s=total,
        summary=job["summary"],
        extra={
            "service_cpu_s": seconds,
            "worker_cpu_s": workers,
            "coordination_share": 1 - workers / total if total else None,
            # What the running service costs anyway (Serve's controller, replicas, Ray's own
            # processes), measured just before the job, taken out: what the job itself adds.
            "idle_cpu_per_s": idle_rate,
            "coordination_share_beyond_idle": (
                max(0.0, 1 - (workers + idle_rate * wall) / total) if total else None
            ),
            "peak_split_bytes": rss.peak_split,
            "progress": job["progress"],
        },
    )


def engines(data: corpus.Corpus, workdir: Path, mode: str) -> list[dict[str, Any]]:
    """The same work unit under Ray Data and plain Ray tasks, in a Ray of their own."""
    cmd = [
        sys.executable, "-m", "loadtests.bench.job_engines", data.pattern,
        str(workdir / "engines"), "--mode", mode,
    ]  # fmt: skip
    measured = procs.run_measured(cmd, log=workdir / "engines.log", env=bulk.SEED_RAY_ENV)
    if measured.returncode != 0:
        raise bulk.BulkError(
            f"job_engines exited {measured.returncode}:\n{tail(workdir / 'engines.log')}"
        )
    rows = []
    for line in measured.stdout.splitlines():
        if line.startswith("{"):
            result = json.loads(line)
            seconds = result["elapsed_s"]
            rows.append(
                {
                    "name": f"engine-{result['engine']}-{mode}",
                    "seconds": seconds,
                    "mb_per_s": data.total_bytes / 1e6 / seconds,
                    "summary": {k: result[k] for k in ("total_chars", "unique_words", "top_words")},
                }
            )
    return rows


def targets(runs: Mapping[str, Mapping[str, Any]]) -> list[Target]:
    def speed(name: str) -> float | None:
        run = runs.get(name)
        return None if run is None else run["mb_per_s"]

    shares = [
        run["extra"]["coordination_share"]
        for name, run in runs.items()
        if name.startswith("job-") and run["extra"].get("coordination_share") is not None
    ]
    ingress = [
        run["extra"]["ingress_cpu_share"]
        for name, run in runs.items()
        if name.startswith("batch-")
        and name != FIRST_UPLOAD
        and run["extra"].get("ingress_cpu_share") is not None
    ]
    # Seed mode is compared summary only, the seed script's own output (#13, #14); with a
    # row per record it is compared too, against 1.0x for uploads (#14).
    return [
        Target("job_seed_vs_seed_single", "job, seed mode, summary only vs the seed script",
               ratio(speed("job-seed-summary"), speed("seed-single")), 1.3),
        Target("job_seed_vs_seed_ray", "job, seed mode, summary only vs its ray.remote version",
               ratio(speed("job-seed-summary"), speed("seed-ray")), 2.0),
        Target("job_seed_rows_vs_seed_single", "job, seed mode, every row vs the seed script",
               ratio(speed("job-seed"), speed("seed-single")), 1.0),
        Target("job_standard_vs_core", "job, standard mode vs the core in one process",
               ratio(speed("job-standard"), speed("core-standard")), 1.6),
        Target("job_coordination", "driver and coordination share of all CPU seconds (worst job)",
               max(shares) if shares else None, COORDINATION_MAX, higher_is_better=False, unit=""),
        Target("batch_seed_summary_vs_seed_single", "/v1/batch, seed, summary only vs the script",
               ratio(speed("batch-seed-summary"), speed("seed-single")), 1.3),
        Target("batch_seed_vs_seed_single", "/v1/batch, seed, every line vs the seed script",
               ratio(speed("batch-seed"), speed("seed-single")), 1.0),
        Target("batch_standard_vs_core", "/v1/batch, standard vs the core in one process",
               ratio(speed("batch-standard"), speed("core-standard")), 1.5),
        Target("batch_ingress_share", "ingress share of the service's CPU seconds (worst upload)",
               max(ingress) if ingress else None, 0.15, higher_is_better=False, unit=""),
    ]  # fmt: skip


def memory_runs(
    args: argparse.Namespace, tmp: Path, url: str, sid: int, sizes: Sequence[int]
) -> list[dict[str, Any]]:
    """A seed-mode, summary-only job over corpora of each size: the peak RSS of every process,
    and its private part (RSS less file-backed and shared pages: libraries and the object store
    pages it mapped, which other processes count too)."""
    out = []
    for size in sizes:
        files = max(1, size // 275_000)  # the corpus's mean file size
        data = corpus.write(corpus.CorpusSpec(files=files, seed=args.seed), tmp / f"memory-{size}")
        peaks: dict[int, tuple[str, int]] = {}
        private: dict[int, tuple[str, int]] = {}
        with procs.RssSampler(sid) as rss, JobClient(url, timeout_s=300) as client:
            job = client.submit(
                [str(data.directory)], str(tmp / f"memory-out-{size}"), options=SEED, include=[]
            )
            while True:
                for proc in procs.session_processes(sid):
                    with contextlib.suppress(Exception):
                        info = proc.memory_info()
                        if info.rss > peaks.get(proc.pid, ("", 0))[1]:
                            peaks[proc.pid] = (procs.label(proc), info.rss)
                        if info.rss - info.shared > private.get(proc.pid, ("", 0))[1]:
                            private[proc.pid] = (procs.label(proc), info.rss - info.shared)
                job = client.status(job["id"])
                if job["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                    break
                time.sleep(0.2)
        largest = max(peaks.values(), key=lambda item: item[1])
        most_private = max(private.values(), key=lambda item: item[1])
        out.append(
            {
                "bytes": data.total_bytes,
                "state": job["state"],
                "seconds": job["progress"]["elapsed_s"],
                "session_peak_bytes": rss.peak_bytes,
                "largest_process": largest[0],
                "largest_process_peak_bytes": largest[1],
                "largest_private_process": most_private[0],
                "largest_private_bytes": most_private[1],
            }
        )
        shutil.rmtree(data.directory, ignore_errors=True)
        print(
            f"  {data.total_bytes / 1e6:8,.0f} MB  {job['state']}  largest process {largest[0]} "
            f"{largest[1] / 2**20:,.0f} MiB (largest private: {most_private[0]} "
            f"{most_private[1] / 2**20:,.0f} MiB), session {rss.peak_bytes / 2**20:,.0f} MiB",
            flush=True,
        )
    return out


def report(results: Mapping[str, Any], checks: Sequence[Target]) -> str:
    runs = results["runs"]
    base = {name: runs.get(name, {}).get("mb_per_s") for name in ("seed-single", "seed-ray")}
    lines = [
        "# Bulk jobs benchmark",
        "",
        f"`{results['command']}`, {results['corpus']['files']:,} files, "
        f"{results['corpus']['bytes'] / 1e6:,.1f} MB; load average {results['loadavg']}.",
        "",
        "| run | s | MB/s | MB/CPU-s | x seed | x seed-ray | x core | coord. share "
        "| beyond idle | 16 CPUs | 64 CPUs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, run in runs.items():
        share = run.get("extra", {}).get("coordination_share")
        beyond_idle = run.get("extra", {}).get("coordination_share_beyond_idle")
        core = runs.get(f"core-{run.get('mode')}", {}).get("mb_per_s")

        def fmt(value: float | None, spec: str = "{:.2f}") -> str:
            return "–" if value is None else spec.format(value)

        speed = run["mb_per_s"]
        cells = [
            name,
            fmt(run["seconds"]),
            fmt(speed),
            fmt(run.get("mb_per_cpu_s")),
            fmt(ratio(speed, base["seed-single"]), "{:.2f}x"),
            fmt(ratio(speed, base["seed-ray"]), "{:.2f}x"),
            fmt(ratio(speed, core), "{:.2f}x"),
            fmt(share, "{:.1%}"),
            fmt(beyond_idle, "{:.1%}"),
            *(fmt(amdahl(share, n), "{:.1f}x") for n in AMDAHL_CPUS),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if FIRST_UPLOAD in runs:
        lines += [
            "",
            f"`{FIRST_UPLOAD}`: the service's first upload after its start (seed, summary only),"
            " not a target; the `batch-` rows after it are uploads to a service that has served"
            " one.",
        ]
    lines += ["", "| target | measured | threshold | status |", "| --- | ---: | ---: | --- |"]
    for target in checks:
        shown = "–" if target.measured is None else f"{target.measured:.3f}{target.unit}"
        verdict = {"PASS": "met", "MISS": "not met"}.get(target.status, "n/a")
        lines.append(
            f"| {target.description} | {shown} | {target.threshold}{target.unit} | {verdict} |"
        )
    if memory := results.get("memory"):
        lines += [
            "",
            "| corpus MB | state | s | largest process | its peak MiB "
            "| largest private (process) MiB | session peak MiB |",
            "| ---: | --- | ---: | --- | ---: | ---: | ---: |",
        ]
        for m in memory:
            peak = m["largest_process_peak_bytes"] / 2**20
            private = (
                f"{m['largest_private_bytes'] / 2**20:,.0f} ({m['largest_private_process']})"
                if "largest_private_bytes" in m
                else "–"
            )
            lines.append(
                f"| {m['bytes'] / 1e6:,.0f} | {m['state']} | {m['seconds']:.1f} | "
                f"{m['largest_process']} | {peak:,.0f} | {private} | "
                f"{m['session_peak_bytes'] / 2**20:,.0f} |"
            )
    if notes := results.get("notes"):
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, out: Path, command: str) -> int:
    from loadtests.bench.memory import parse_sizes

    tmp = Path(os.path.realpath(out)) / "jobs-tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    data = corpus.write(
        corpus.CorpusSpec(files=args.files, seed=args.seed), args.corpus or tmp / "corpus"
    )
    print(f"corpus: {len(data.paths)} files, {data.total_bytes / 1e6:.1f} MB", flush=True)
    runs: dict[str, dict[str, Any]] = {}
    notes: list[str] = []

    wanted = set(args.rows.split(",")) if args.rows else None

    def keep(make: Callable[[], bulk.BulkRun], name: str, *, always: bool = False) -> None:
        """A row that fails is noted and the run goes on: the other rows still count."""
        if wanted is not None and name not in wanted and not always:
            return
        try:
            run = make()
        except Exception as exc:  # noted in the report, with what failed
            traceback.print_exc()
            notes.append(f"{name} failed: {exc!r}"[:500])
            return
        runs[run.name] = run.to_dict()
        print(
            f"  {run.name:<20} {run.seconds:8.2f} s {run.mb_per_s:8.2f} MB/s "
            f"{(run.mb_per_cpu_s or 0):6.2f} MB/CPU-s",
            flush=True,
        )

    keep(lambda: bulk.seed_single(data, out), "seed-single")
    keep(lambda: bulk.seed_ray(data, out), "seed-ray")
    keep(lambda: bulk.core(data, out, "seed"), "core-seed")
    keep(lambda: bulk.core(data, out, "standard"), "core-standard")
    try:
        engine_rows = engines(data, out, "seed") if wanted is None or "engines" in wanted else []
    except bulk.BulkError as exc:
        notes.append(f"engines failed: {exc!r}"[:500])
        engine_rows = []
    for row in engine_rows:
        print(
            f"  {row['name']:<20} {row['seconds']:8.2f} s {row['mb_per_s']:8.2f} MB/s", flush=True
        )
    memory = None
    roots = [tmp, Path(os.path.realpath(data.directory))]
    with job_service(args, out, roots) as (url, sid):
        warm_up(data, tmp, url)
        for name in JOB_ROWS:
            keep(functools.partial(service_job, data, tmp, url=url, sid=sid, name=name), name)
        batch_rows = {
            f"batch-{mode}" + ("-summary" if summary_only else ""): (mode, summary_only)
            for mode, summary_only in (("seed", True), ("seed", False), ("standard", False))
        }
        if wanted is None or wanted & {FIRST_UPLOAD, *batch_rows}:
            # The service's first upload, untimed by the targets: the rows below are uploads to
            # a service that has served one, as the job rows follow a warm-up job. A first
            # upload also pays for the replicas' first touch of the memory they work in (and
            # may start a third WordCounter): reported as its own row.
            first = functools.partial(
                bulk.service_batch,
                data, out, url=url, service_sid=sid, mode="seed", summary_only=True,
                name=FIRST_UPLOAD,
            )  # fmt: skip
            keep(first, FIRST_UPLOAD, always=True)
        for name, (mode, summary_only) in batch_rows.items():
            batch = functools.partial(
                bulk.service_batch,
                data, out, url=url, service_sid=sid, mode=mode, summary_only=summary_only,
                name=name,
            )  # fmt: skip
            keep(batch, name)
        if args.memory:
            try:
                memory = memory_runs(args, tmp, url, sid, parse_sizes(args.memory_sizes))
            except Exception as exc:  # noted in the report
                traceback.print_exc()
                notes.append(f"memory failed: {exc!r}"[:500])
    results = {
        "command": command,
        "corpus": {"files": len(data.paths), "bytes": data.total_bytes, "seed": args.seed},
        "loadavg": procs.load_average(),
        "runs": runs,
        "engines": engine_rows,
        "memory": memory,
        "notes": notes,
    }
    checks = targets(runs)
    results["targets"] = [t.to_dict() for t in checks]
    text = report(results, checks)
    (out / "jobs.md").write_text(text, encoding="utf-8")
    (out / "jobs.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print("\n" + text)
    if args.corpus is None:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0
