"""Headless load test: service (started here unless --url), Locust, replica sampling, report.

    cleanserve loadtest --shape step                      # starts the service on default ports
    cleanserve loadtest --url http://127.0.0.1:8000 -u 8 -t 30s
    cleanserve loadtest --shape spike -- --bulk-mb 1      # after "--": passed to Locust

Locust runs in its own process (gevent monkey-patching and Ray must not share one); replicas
are read from the Serve REST API every ~2 s in a thread here. Everything lands in
results/loadtest-<time>-<shape>/ under the current directory (or --results): Locust's CSVs and
HTML report, replicas.csv, loadtest.png, the logs and summary.json. Exit status: 0 all
thresholds met, 1 a threshold missed, 2 the run itself failed (service or Locust).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from serve_app.ops.loadtest import profiles, report

# Package data, read where it is installed: Locust needs real paths (-f, --config), and
# wheels install packages as plain directories, so the resource paths are files.
_PACKAGE = resources.files(__package__ or "serve_app.ops.loadtest")
LOCUSTFILE = Path(str(_PACKAGE / "locustfile.py"))
LOCUST_CONF = Path(str(_PACKAGE / "locust.conf"))
THRESHOLDS = Path(str(_PACKAGE / "thresholds.toml"))
CSV_PREFIX = "locust"
# Past the expected end of the run: Locust's stop timeout, a bulk upload finishing, reports.
GRACE_S = 120.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("service under test")
    target.add_argument(
        "--url", help="test this running service; without it one is started (and stopped) here"
    )
    target.add_argument(
        "--dashboard-url",
        help="Ray dashboard of that service, for replica counts "
        "(default: http://127.0.0.1:<dashboard-port>)",
    )
    target.add_argument("--port", type=int, default=8000, help="HTTP port of a started service")
    target.add_argument("--dashboard-port", type=int, default=8265, help="Ray dashboard port")
    target.add_argument(
        "--haproxy-metrics-port", type=int, default=9101, help="HAProxy's Prometheus listener"
    )
    target.add_argument("--haproxy-stats-port", type=int, default=8404, help="HAProxy's stats")
    target.add_argument("--config", type=Path, help="Serve config for a started service")

    load = parser.add_argument_group("load")
    load.add_argument(
        "--shape", choices=profiles.SHAPES, default="steady", help="load shape (default: steady)"
    )
    load.add_argument("-u", "--users", type=int, help="steady: users (default: locust.conf)")
    load.add_argument("-r", "--spawn-rate", type=float, help="steady: users started per second")
    load.add_argument("-t", "--run-time", help="steady: e.g. 30s, 3m (default: locust.conf)")
    load.add_argument("--seed", type=int, help="seed for the generated texts")
    load.add_argument("--locust-conf", type=Path, default=LOCUST_CONF, help="Locust settings")
    load.add_argument("--sample-every", type=float, default=2.0, help="replica sampling, seconds")

    out = parser.add_argument_group("results and thresholds")
    out.add_argument(
        "--results", type=Path, help="output folder (default: results/loadtest-<time>-<shape>)"
    )
    out.add_argument("--thresholds", type=Path, default=THRESHOLDS, help="TOML with the defaults")
    out.add_argument("--max-fail-ratio", type=float, help="failed / requests allowed, e.g. 0.001")
    out.add_argument(
        "--max-p95-ms",
        action="append",
        default=[],
        metavar="NAME=MS",
        help='p95 limit for one endpoint (Locust name, e.g. "/v1/analyze"; "*": every endpoint); '
        "repeatable",
    )
    out.add_argument(
        "--max-p99-ms",
        action="append",
        default=[],
        metavar="NAME=MS",
        help="p99 limit for one request name (repeatable)",
    )
    parser.add_argument(
        "locust_args", nargs=argparse.REMAINDER, help='after "--": more Locust arguments'
    )


def parse_timespan(text: str) -> float:
    """Locust's run-time syntax: 90, 90s, 3m, 1h20m, 1h30m10s."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    match = re.fullmatch(r"(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?", text)
    if not match or not any(match.groups()):
        raise ValueError(f"not a time span: {text!r} (use e.g. 30s, 3m, 1h20m)")
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return hours * 3600.0 + minutes * 60.0 + seconds


def conf_value(path: Path, key: str) -> str | None:
    """A `key = value` of a Locust config file (the last one wins, as in Locust)."""
    value = None
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="utf-8").splitlines():
            name, sep, rest = line.partition("=")
            if sep and not line.lstrip().startswith("#") and name.strip() == key:
                value = rest.strip()
    return value


def expected_duration_s(args: argparse.Namespace) -> float:
    if args.shape in profiles.PROFILES:
        return profiles.duration_s(profiles.PROFILES[args.shape])
    return parse_timespan(args.run_time or conf_value(args.locust_conf, "run-time") or "60s")


def locust_command(args: argparse.Namespace, *, url: str, results: Path) -> list[str]:
    cmd = [
        sys.executable, "-m", "locust",
        "--config", str(args.locust_conf),
        "-f", str(LOCUSTFILE),
        "--headless",
        "--host", url,
        "--shape", args.shape,
        "--csv", str(results / CSV_PREFIX),
        "--csv-full-history",
        "--html", str(results / "report.html"),
    ]  # fmt: skip
    if args.shape == "steady":
        if args.users is not None:
            cmd += ["--users", str(args.users)]
        if args.spawn_rate is not None:
            cmd += ["--spawn-rate", str(args.spawn_rate)]
        if args.run_time is not None:
            cmd += ["--run-time", args.run_time]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    extra = list(args.locust_args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return cmd + extra


def _run_locust(cmd: list[str], *, log: Path, deadline_s: float) -> int:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        return proc.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        print(f"Locust ran past {deadline_s:.0f} s; stopping it", file=sys.stderr)
        proc.send_signal(signal.SIGINT)  # Locust writes its reports on SIGINT
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
    except KeyboardInterrupt:
        # The terminal's Ctrl-C reached Locust too (same process group): let it write reports.
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        if proc.poll() is None:
            proc.kill()
        raise


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from serve_app.ops.loadtest import plot
    from serve_app.ops.loadtest.replicas import ReplicaSampler, read_samples, read_token
    from serve_app.ops.loadtest.service import Ports, ServiceError, started_service

    console = Console()
    try:
        thresholds = report.with_overrides(
            report.load_thresholds(args.thresholds),
            max_fail_ratio=args.max_fail_ratio,
            p95=[report.parse_limit(text) for text in args.max_p95_ms],
            p99=[report.parse_limit(text) for text in args.max_p99_ms],
        )
        duration = expected_duration_s(args)
    except (OSError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2

    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = (args.results or Path("results") / f"loadtest-{stamp}-{args.shape}").resolve()
    results.mkdir(parents=True, exist_ok=True)
    files = {
        "report": results / "report.html",
        "chart": results / "loadtest.png",
        "replicas": results / "replicas.csv",
        "stats": results / f"{CSV_PREFIX}_stats.csv",
        "history": results / f"{CSV_PREFIX}_stats_history.csv",
        "locust_log": results / "locust.log",
        "summary": results / "summary.json",
    }

    with contextlib.ExitStack() as stack:
        if args.url:
            url = args.url.rstrip("/")
        else:
            ports = Ports(
                args.port, args.dashboard_port, args.haproxy_metrics_port, args.haproxy_stats_port
            )
            files["service_log"] = results / "service.log"
            console.print(
                f"starting the service on port {ports.port} (log: {files['service_log']})"
            )
            started = time.monotonic()
            try:
                url = stack.enter_context(
                    started_service(ports, log=files["service_log"], config=args.config)
                )
            except ServiceError as exc:
                console.print(f"[red]error:[/red] {exc}")
                return 2
            console.print(f"service healthy at {url} after {time.monotonic() - started:.0f} s")
        dashboard = args.dashboard_url or f"http://127.0.0.1:{args.dashboard_port}"

        def on_change(now: float, count: Any, previous: int | None) -> None:
            if previous is not None:
                console.print(
                    f"  {time.strftime('%H:%M:%S', time.localtime(now))}  {count.deployment}: "
                    f"{previous} -> {count.running} running replicas (target {count.target})"
                )

        sampler = ReplicaSampler(
            dashboard,
            files["replicas"],
            token=read_token(),
            every_s=args.sample_every,
            on_change=on_change,
        )
        stack.callback(sampler.stop)
        replica_problem = sampler.probe()
        if replica_problem:
            console.print(f"[yellow]replica chart skipped:[/yellow] {replica_problem}")
        else:
            sampler.start()

        cmd = locust_command(args, url=url, results=results)
        console.print(f"Locust: shape {args.shape}, about {duration:.0f} s against {url}")
        console.print(f"  log: {files['locust_log']}")
        locust_rc = _run_locust(cmd, log=files["locust_log"], deadline_s=duration + GRACE_S)
        time.sleep(min(args.sample_every, 2.0))  # one more sample after the load ends

    if not files["stats"].exists() or not files["history"].exists():
        console.print(
            f"[red]error:[/red] Locust wrote no report (exit {locust_rc}); "
            f"see {files['locust_log']}"
        )
        tail = files["locust_log"].read_text(errors="replace").splitlines()[-20:]
        console.print("\n".join(tail), markup=False)
        return 2

    stats = report.read_stats(files["stats"])
    history = report.read_history(files["history"])
    samples = (
        read_samples(files["replicas"])
        if not replica_problem and files["replicas"].exists()
        else None
    )
    plot.draw(
        history,
        samples,
        files["chart"],
        title=f"cleanserve load test: {args.shape}, {url}",
    )
    found = report.violations(stats, thresholds)

    table = Table(title=f"cleanserve load test ({args.shape})")
    for column in report.SUMMARY_HEADER:
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for cells in report.summary_rows(stats):
        table.add_row(*cells)
    console.print(table)

    summary = report.build_summary(
        url=url,
        shape=args.shape,
        stats=stats,
        history=history,
        samples=samples,
        replica_problem=replica_problem,
        thresholds=thresholds,
        violations=found,
        locust_rc=locust_rc,
        files=files,
    )
    if samples:
        console.print(
            "max running replicas: "
            + ", ".join(f"{name} {n}" for name, n in sorted(summary["replicas"]["max"].items()))
        )
    files["summary"].write_text(json.dumps(summary, indent=2), encoding="utf-8")

    console.print(f"HTML report: {files['report']}")
    console.print(f"chart:       {files['chart']}")
    console.print(f"all results: {results}")
    if found:
        console.print("[red]thresholds missed:[/red]")
        for line in found:
            console.print(f"  - {line}", markup=False)
        return 1
    console.print("[green]all thresholds met[/green]")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serve_app.ops.loadtest.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
