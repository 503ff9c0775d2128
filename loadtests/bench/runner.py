"""One benchmark run: starts what it measures, measures it, and keeps the results."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shlex
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from loadtests.bench import bulk, corpus, floor, loadgen, memory, procs, profile, realtime
from loadtests.bench.targets import find, same_summary
from serve_app.ops.loadtest.service import Ports, running, up_command

FLOOR = "serve-floor"


class Bench:
    def __init__(self, args: argparse.Namespace, out: Path) -> None:
        self.args = args
        self.out = out
        self.notes: list[str] = []
        self.checks: list[dict[str, Any]] = []
        self.points: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []
        self.answers: dict[str, Any] = {}
        self.memory: dict[str, Any] | None = None
        self.profiles_md: list[str] = []
        self.profile_categories: list[str] = []
        self.corpus: corpus.Corpus | None = None
        self.tool = ""

    def section(self, name: str, work: Callable[[], None]) -> None:
        """A failed section is reported and the run goes on: the other numbers still count."""
        print(f"\n== {name}", flush=True)
        try:
            work()
        except Exception as exc:  # the report says what failed; the run stays useful
            traceback.print_exc()
            self.notes.append(f"{name} failed: {exc!r}"[:2000])

    def check(self, ok: bool, what: str) -> None:
        self.checks.append({"ok": ok, "what": what})
        print(f"  {'✔' if ok else '✘'} {what}", flush=True)

    def start(
        self,
        stack: contextlib.ExitStack,
        name: str,
        cmd: list[str],
        url: str,
        timeout_s: float,
        env: dict[str, str] | None = None,
    ) -> realtime.System | None:
        print(f"  {name}: {shlex.join(cmd)}", flush=True)
        try:
            proc = stack.enter_context(
                running(cmd, url, log=self.out / f"{name}.log", timeout_s=timeout_s, env=env)
            )
        except Exception as exc:  # the others still run; the report says this one did not
            traceback.print_exc()
            self.notes.append(f"starting {name} failed: {exc!r}"[:2000])
            return None
        return realtime.System(name, url, proc.pid)

    def run(self, tmp: Path) -> None:
        args = self.args
        with contextlib.ExitStack() as stack:
            service = None
            if not args.skip_realtime or not args.skip_bulk or args.memory:
                ports = Ports(
                    args.port,
                    args.dashboard_port,
                    args.haproxy_metrics_port,
                    args.haproxy_stats_port,
                )
                print("\n== starting the service", flush=True)
                # For real time, the Serve floor (loadtests.bench.floor) runs beside the
                # service, importable by the replicas from this checkout.
                config, env = None, None
                if not args.skip_realtime:
                    config = tmp / "serve_config_with_floor.yaml"
                    service_config = yaml.safe_load(procs.SERVE_CONFIG.read_text("utf-8"))
                    config.write_text(yaml.safe_dump(floor.config_with_floor(service_config)))
                    paths = [str(procs.REPO), os.environ.get("PYTHONPATH", "")]
                    env = {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}
                service = self.start(
                    stack,
                    "service",
                    up_command(ports, config),
                    f"http://127.0.0.1:{ports.port}",
                    timeout_s=300,
                    env=env,
                )
            if service is not None:
                workers_at_start = procs.ray_workers(service.sid)
            if not args.skip_realtime:
                with contextlib.ExitStack() as plain:  # the plain baselines live for this only
                    self.section("real time", lambda: self.realtime_points(plain, service))
                if service is not None and args.profile:
                    self.section("profile: /v1/analyze", lambda: self.profile_realtime(service))
            if not args.skip_bulk:
                self.section("bulk: corpus", lambda: self.make_corpus(tmp))
                if self.corpus is not None:
                    self.bulk_runs(service)
                    if service is not None and args.profile:
                        self.section("profile: /v1/batch", lambda: self.profile_batch(service))
            if service is not None and args.memory:
                self.section("memory", lambda: self.memory_uploads(service))
            if service is not None:
                self.note_restarts(workers_at_start, procs.ray_workers(service.sid))

    def note_restarts(self, before: dict[int, str], after: dict[int, str]) -> None:
        # Autoscaling ends TextCleaner and WordCounter replicas and Ray ends idle workers; these
        # end only when something kills them.
        watched = {"ServeController", "ProxyActor", "HAProxyManager", "Ingress"}
        gone = sorted(name for pid, name in before.items() if pid not in after)
        if set(gone) & watched:
            self.notes.append(
                f"service processes ended during the run: {', '.join(gone)} (replaced: "
                f"{', '.join(sorted(n for p, n in after.items() if p not in before)) or 'none'}); "
                "look in the Ray session's raylet.out for OOM kills (its memory monitor watches "
                "the whole machine, other work included)"
            )
            print(f"  note: {self.notes[-1]}", flush=True)

    # -- real time ------------------------------------------------------------------------------

    def realtime_points(self, plain: contextlib.ExitStack, service: realtime.System | None) -> None:
        self.tool = loadgen.choose_tool(self.args.loadgen)
        print(f"  load generator: {loadgen.describe(self.tool)}", flush=True)
        one, many = (int(p) for p in self.args.baseline_ports.split(","))
        systems = []
        for workers, port in ((1, one), (self.args.workers, many)):
            cmd = procs.uvicorn_command(port, workers)
            started = self.start(plain, f"uvicorn-{workers}", cmd, f"http://127.0.0.1:{port}", 60)
            if started is not None:
                systems.append(started)
        if service is not None:
            systems.append(service)
            floor_url = service.url + floor.ROUTE_PREFIX
            if procs.healthy(floor_url):
                systems.append(realtime.System(FLOOR, floor_url, service.sid))
            else:
                self.notes.append(f"the Serve floor did not answer at {floor_url}/healthz")
        for system in systems:
            self.answers[system.name] = realtime.sample_answers(system.url, self._endpoints)
        self.points = realtime.measure(
            systems,
            tool=self.tool,
            endpoints=self._endpoints,
            connections=[int(c) for c in self.args.connections.split(",")],
            duration_s=self.args.duration,
            warmup_s=self.args.warmup,
        )

    @property
    def _endpoints(self) -> list[str]:
        return [e.strip() for e in self.args.endpoints.split(",") if e.strip()]

    def profile_realtime(self, service: realtime.System) -> None:
        seconds = max(self.args.duration, 5)
        body = realtime.request_body()
        url = f"{service.url}/v1/analyze"
        with profile.recording(service.sid, seconds=seconds, outdir=self.out, tag="analyze") as got:
            loadgen.run(self.tool, url, body, connections=32, duration_s=seconds)
        self._profiled(profile.TITLES["analyze"], got)

    # -- bulk -----------------------------------------------------------------------------------

    def make_corpus(self, tmp: Path) -> None:
        spec = corpus.CorpusSpec(files=self.args.files, seed=self.args.seed)
        self.corpus = corpus.write(spec, self.args.corpus or tmp / "corpus")
        print(
            f"  corpus: {len(self.corpus.paths)} files, {self.corpus.total_bytes / 1e6:.1f} MB "
            f"in {self.corpus.directory}",
            flush=True,
        )

    def bulk_runs(self, service: realtime.System | None) -> None:
        """Every job once per round, in rounds: a busy minute on the machine falls on one round
        of each job, and the median round is reported."""
        data = self.corpus
        assert data is not None
        print("\n  seed ray.remote script: RAY_AUTH_MODE=disabled (its own throwaway cluster)")
        jobs: list[tuple[str, Callable[[], bulk.BulkRun]]] = [
            ("seed-single", lambda: bulk.seed_single(data, self.out)),
            ("seed-ray", lambda: bulk.seed_ray(data, self.out)),
            ("core-seed", lambda: bulk.core(data, self.out, "seed")),
            ("core-standard", lambda: bulk.core(data, self.out, "standard")),
        ]
        if service is not None:
            for mode in ("seed", "standard"):
                jobs.append((f"batch-{mode}", functools.partial(self.batch, service, mode)))
            jobs.append(
                ("batch-seed-summary", functools.partial(self.batch, service, "seed", True))
            )
        rounds: dict[str, list[bulk.BulkRun]] = {}
        for round_no in range(1, self.args.repeat + 1):
            for name, job in jobs:

                def one(name: str = name, job: Callable[[], bulk.BulkRun] = job) -> None:
                    run = job()
                    rounds.setdefault(name, []).append(run)
                    print(format_run(run), flush=True)

                self.section(f"bulk: {name}, round {round_no}", one)
        self.runs = [bulk.median_run(runs).to_dict() for runs in rounds.values()]

    def batch(
        self, service: realtime.System, mode: str, summary_only: bool = False
    ) -> bulk.BulkRun:
        assert self.corpus is not None
        return bulk.service_batch(
            self.corpus,
            self.out,
            url=service.url,
            service_sid=service.sid,
            mode=mode,
            summary_only=summary_only,
        )

    def profile_batch(self, service: realtime.System) -> None:
        assert self.corpus is not None
        seconds = 15  # as profile.TITLES["batch"] says
        workdir = self.out / "profile"
        workdir.mkdir(exist_ok=True)
        with profile.recording(service.sid, seconds=seconds, outdir=self.out, tag="batch") as got:
            bulk.service_batch(
                self.corpus, workdir, url=service.url, service_sid=service.sid, mode="standard"
            )
        self._profiled(profile.TITLES["batch"], got)

    def _profiled(self, title: str, profiles: list[profile.Profile]) -> None:
        self.profiles_md.append(profile.markdown(title, profiles))
        self.profile_categories += profile.category_lines(title, profiles)
        print(*self.profile_categories[-len(profiles) :], sep="\n", flush=True)

    # -- memory ---------------------------------------------------------------------------------

    def memory_uploads(self, service: realtime.System) -> None:
        pool = memory.record_pool(self.args.seed)
        options = bulk.MODE_OPTIONS[self.args.memory_mode]
        headers = memory.parse_headers(self.args.upload_header)
        self.memory = {
            "mode": self.args.memory_mode,
            "options": options,
            "headers": headers,
            "uploads": [],
        }
        for size in memory.parse_sizes(self.args.memory_sizes):
            upload = memory.upload(
                service.url,
                total_bytes=size,
                service_sid=service.sid,
                pool=pool,
                options=options,
                headers=headers,
            )
            self.memory["uploads"].append(upload)
            print(
                f"  {upload['bytes'] / 1e6:8,.0f} MB  {upload['seconds']:7.1f} s  "
                f"{upload['mb_per_s']:6.2f} MB/s  idle {upload['idle_bytes'] / 2**20:,.0f} MiB  "
                f"peak {upload['peak_bytes'] / 2**20:,.0f} MiB  "
                f"(+{upload['peak_increase_bytes'] / 2**20:,.0f} MiB)",
                flush=True,
            )
            self.check(
                upload["summary_records"] == upload["records"] and not upload["summary_failed"],
                f"{upload['bytes'] / 1e6:,.0f} MB upload: the summary counts every record sent "
                f"({upload['summary_records']:,} of {upload['records']:,}, "
                f"{upload['summary_failed']} failed)",
            )

    # -- checks ---------------------------------------------------------------------------------

    def correctness(self) -> None:
        base = self.answers.get("uvicorn-1", {})
        for endpoint, answer in self.answers.get("service", {}).items():
            if endpoint in base:
                self.check(
                    answer == base[endpoint], f"service {endpoint} answers as the plain baseline"
                )
        seed = find(self.runs, name="seed-single")
        if seed is not None:
            for name, what in (
                ("seed-ray", "seed ray.remote script"),
                ("core-seed", "core pipeline, seed options"),
                ("batch-seed", "/v1/batch seed-compatible summary"),
                ("batch-seed-summary", "/v1/batch seed-compatible, --summary-only"),
            ):
                run = find(self.runs, name=name)
                if run is not None:
                    self.check(
                        same_summary(seed["summary"], run["summary"]),
                        f"{what} = seed script (total_chars, unique_words, top_words)",
                    )
            batch_seed = find(self.runs, name="batch-seed")
            if batch_seed is not None:
                self.check(
                    same_summary(seed["summary"], batch_seed["extra"].get("rows_summary")),
                    "/v1/batch seed-compatible per-record results add up to the seed script's",
                )
        core_std = find(self.runs, name="core-standard")
        batch_std = find(self.runs, name="batch-standard")
        if core_std is not None and batch_std is not None:
            self.check(
                same_summary(core_std["summary"], batch_std["summary"]),
                "/v1/batch standard summary = core pipeline, standard options",
            )


def format_run(run: bulk.BulkRun) -> str:
    share = run.extra.get("ingress_cpu_share")
    return (
        f"  {run.label:<44} {run.seconds:8.2f} s {run.mb_per_s:8.2f} MB/s  "
        f"peak RSS {run.peak_rss_bytes / 2**20:8,.0f} MiB"
        + (f"  ingress {share:.1%} of the service's CPU" if share is not None else "")
    )
