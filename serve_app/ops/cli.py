"""The `cleanserve` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from serve_app import __version__
from serve_app.ops.exit_codes import BATCH_EPILOG, JOB_EPILOG, ExitCode


def _up(args: argparse.Namespace) -> int:
    from serve_app.ops.launcher import (
        DeployError,
        LaunchOptions,
        serve_logs_dir,
        serve_until_signal,
    )

    options = LaunchOptions(
        config=Path(args.config),
        host=args.host,
        port=args.port,
        dashboard_port=args.dashboard_port,
        haproxy_metrics_port=args.haproxy_metrics_port,
        haproxy_stats_port=args.haproxy_stats_port,
        num_cpus=args.num_cpus,
        # Every replica and job actor reads its settings from the environment Ray starts with.
        env={"CLEANSERVE_JOB_ROOTS": args.job_roots} if args.job_roots else {},
    )

    def ready(url: str) -> None:
        import ray

        print(f"Ray cluster: {ray.get_runtime_context().gcs_address}", flush=True)
        print(f"Ray dashboard: http://127.0.0.1:{args.dashboard_port}", flush=True)
        print(f"Service logs (JSON lines): {serve_logs_dir()}", flush=True)
        print(f"cleanserve is up at {url}  (API docs: {url}/docs; Ctrl-C stops it)", flush=True)

    try:
        serve_until_signal(options, on_ready=ready)
    except (DeployError, TimeoutError) as exc:
        print(f"cleanserve up: {exc}", file=sys.stderr, flush=True)
        return 1
    print("cleanserve stopped; every process it started has ended.", flush=True)
    return 0


def missing_extra(extra: str, *modules: str) -> bool:
    """Say which extra to install when a command's modules are not there (the base install
    is the service's; clients and load tests bring their own)."""
    import importlib.util

    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"this command needs {', '.join(missing)}: pip install 'cleanserve[{extra}]'",
            file=sys.stderr,
        )
    return bool(missing)


def _batch(args: argparse.Namespace) -> int:
    if missing_extra("client", "aiohttp", "rich"):
        return ExitCode.USAGE
    import asyncio
    import contextlib

    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.table import Table

    from serve_app.ops.batch_client import BatchClientError, expand_inputs, run_batch

    console = Console(stderr=True)
    try:
        options = json.loads(args.options) if args.options else None
        files = expand_inputs(args.inputs)
    except (json.JSONDecodeError, BatchClientError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return ExitCode.USAGE
    if not files:
        console.print("[red]error:[/red] no input files matched")
        return ExitCode.USAGE

    bar = Progress(
        TextColumn("[bold]{task.fields[records]:>9,} records"),
        TextColumn("{task.fields[rate]:>8,.0f} rec/s"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(args.out, "wb")) if args.out else None
        stack.enter_context(bar)
        task = bar.add_task("upload", total=1, records=0, rate=0.0)
        started = time.monotonic()

        def show(progress: Any) -> None:
            elapsed = max(time.monotonic() - started, 1e-9)
            bar.update(
                task,
                total=progress.total_bytes,
                completed=progress.sent_bytes,
                records=progress.records,
                rate=progress.records / elapsed,
            )

        try:
            result = asyncio.run(
                run_batch(
                    files,
                    url=args.url,
                    out=out,
                    options=options,
                    summary_only=args.summary_only,
                    top_words=args.top_words,
                    api_key=args.api_key,
                    on_progress=show,
                )
            )
        except BatchClientError as exc:
            bar.stop()
            console.print(f"[red]error:[/red] {exc}")
            return ExitCode.FAILED
    summary = result.summary or {}
    table = Table(title=f"cleanserve batch: {len(files)} file(s)", show_header=False)
    for key in ("records", "ok", "failed", "total_chars", "total_words", "unique_words"):
        table.add_row(key, f"{summary.get(key, 0):,}")
    # Words are data, not rich markup: "[/b]" would raise, "[b]x" would be eaten.
    top = summary.get("top_words", [])
    table.add_row("top_words", ", ".join(f"{escape(w)} ({c:,})" for w, c in top))
    for key, value in analytics_rows(summary):
        table.add_row(key, value)
    Console().print(table)
    if args.out:
        console.print(f"results: {args.out}")
    if failed := summary.get("failed", 0):
        where = f" in {args.out}" if args.out else " (--out keeps them)"
        console.print(
            f"[red]{failed:,} of {summary.get('records', 0):,} record(s) failed[/red]; "
            f"see their error lines{where}"
        )
        return ExitCode.RECORDS_FAILED
    return ExitCode.OK


def _job(args: argparse.Namespace) -> int:
    if missing_extra("client", "httpx", "rich"):
        return ExitCode.USAGE
    from serve_app.ops.job_cli import run

    return run(args)


def _manifest(args: argparse.Namespace) -> int:
    from serve_app.ops.manifest import (
        RAYSERVICE_PATH,
        Target,
        render,
        render_serve_config,
        stale_diff,
    )

    config = Path(args.config).read_text(encoding="utf-8")
    if args.serve_config:
        sys.stdout.write(render_serve_config(config))
        return 0
    target = Target(
        **{name: value for name, value in _target_args(args).items() if value is not None}
    )
    # The packaged manifest is for the default target; one for your image or namespace is
    # yours to keep, so it goes to stdout unless --out says where.
    default_out = "-" if target != Target() else str(RAYSERVICE_PATH)
    out = args.out or default_out
    if args.check:
        if out == "-":
            print("--check needs --out: the manifest to compare", file=sys.stderr)
            return 2
        path = Path(out)
        committed = path.read_text(encoding="utf-8") if path.exists() else None
        if diff := stale_diff(config, committed, target):
            sys.stderr.writelines(diff)
            print(f"{path} is stale: run `cleanserve manifest` and commit it", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    text = render(config, target)
    if out == "-":
        sys.stdout.write(text)
        return 0
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


def _target_args(args: argparse.Namespace) -> dict[str, str | None]:
    return {
        "image": args.image,
        "namespace": args.namespace,
        "operator_namespace": args.operator_namespace,
        "prometheus_namespace": args.prometheus_namespace,
    }


def _loadtest(args: argparse.Namespace) -> int:
    if missing_extra("loadtest", "locust", "matplotlib", "httpx", "rich"):
        return 2
    from serve_app.ops.loadtest.run import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    from serve_app.ops.launcher import DEFAULT_CONFIG

    parser = argparse.ArgumentParser(prog="cleanserve", description=__doc__)
    parser.add_argument("--version", action="version", version=f"cleanserve {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start Ray and the service on this machine")
    up.add_argument("--config", default=str(DEFAULT_CONFIG), help="a Serve config file")
    up.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    up.add_argument("--port", type=int, default=8000, help="HTTP port (default: 8000)")
    up.add_argument(
        "--dashboard-port", type=int, default=8265, help="Ray dashboard port (default: 8265)"
    )
    up.add_argument(
        "--haproxy-metrics-port",
        type=int,
        default=9101,
        help="HAProxy's Prometheus listener (default: 9101; two services on one machine need "
        "different ones)",
    )
    up.add_argument(
        "--haproxy-stats-port",
        type=int,
        default=8404,
        help="HAProxy's stats page (default: 8404)",
    )
    up.add_argument("--num-cpus", type=int, default=None, help="CPUs for Ray (default: all)")
    up.add_argument(
        "--job-roots",
        default=os.environ.get("CLEANSERVE_JOB_ROOTS"),
        help="colon-separated directories and s3:// prefixes jobs may use (CLEANSERVE_JOB_ROOTS)",
    )
    up.set_defaults(run=_up)

    batch = commands.add_parser(
        "batch",
        help="clean and count files through a running service, with a progress bar",
        description="Upload files to /v1/batch as one streamed request; the summary is printed "
        "at the end.",
        epilog=BATCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument(
        "inputs", nargs="+", help="files, directories or quoted globs ('data/*.json')"
    )
    batch.add_argument("--out", help="write the per-record NDJSON results here")
    batch.add_argument(
        "--url",
        default=os.environ.get("CLEANSERVE_URL", "http://127.0.0.1:8000"),
        help="the service's base URL (default: $CLEANSERVE_URL, else http://127.0.0.1:8000)",
    )
    batch.add_argument("--options", help='JSON, as /v1/analyze: {"clean": {...}, "count": {...}}')
    batch.add_argument("--summary-only", action="store_true", help="only the summary comes back")
    batch.add_argument(
        "--top-words",
        type=int,
        default=10,
        help="how many of the most frequent words the summary lists (default: 10)",
    )
    batch.add_argument(
        "--api-key",
        default=os.environ.get("CLEANSERVE_API_KEY"),
        help="bearer token, when the service has API keys (default: $CLEANSERVE_API_KEY; "
        "prefer the variable: a command line is visible to other users)",
    )
    batch.set_defaults(run=_batch)

    job = commands.add_parser(
        "job",
        help="bulk jobs on files where they lie, on the whole cluster",
        epilog=JOB_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from serve_app.ops.job_cli import add_arguments as add_job_arguments

    add_job_arguments(job)
    job.set_defaults(run=_job)

    manifest = commands.add_parser(
        "manifest", help="generate deploy/rayservice.yaml (KubeRay) from serve_config.yaml"
    )
    manifest.add_argument("--config", default=str(DEFAULT_CONFIG), help="a Serve config file")
    manifest.add_argument(
        "--out",
        help="the manifest, or - for stdout (default: the packaged deploy/rayservice.yaml; "
        "stdout with --image or a namespace)",
    )
    manifest.add_argument("--image", help="the image to run (default: cleanserve:<version>)")
    manifest.add_argument("--namespace", help="metadata.namespace of every object")
    manifest.add_argument(
        "--operator-namespace", help="where the KubeRay operator runs (default: ray-system)"
    )
    manifest.add_argument(
        "--prometheus-namespace",
        help="where Prometheus runs, for the metrics rule (default: prometheus-system)",
    )
    manifest.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if --out is stale"
    )
    manifest.add_argument(
        "--serve-config",
        action="store_true",
        help="print only the cluster-sized Serve config, for `serve deploy` without KubeRay",
    )
    manifest.set_defaults(run=_manifest)

    loadtest = commands.add_parser(
        "loadtest",
        help="Locust load test: service, replica chart, thresholds (the loadtest extra)",
        description="Headless Locust run; results (CSV, HTML, PNG) in results/loadtest-*/.",
    )
    from serve_app.ops.loadtest.run import add_arguments

    add_arguments(loadtest)
    loadtest.set_defaults(run=_loadtest)
    return parser


def analytics_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary lines that review-analytics options add, when they were asked for."""
    from rich.markup import escape

    rows: list[tuple[str, str]] = []
    for key in ("duplicates", "boilerplate"):
        if key in summary:
            rows.append((key, f"{summary[key]:,}"))
    if languages := summary.get("languages"):
        rows.append(("languages", ", ".join(f"{escape(k)} ({n:,})" for k, n in languages.items())))
    if sentiment := summary.get("sentiment"):
        labels = ", ".join(f"{label} {n:,}" for label, n in sentiment["labels"].items())
        rows.append(("sentiment", f"{labels}; mean score {sentiment['mean_score']:+.3f}"))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
