"""`cleanserve job submit|status|list|cancel`: the /v1/jobs client with a progress bar."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("CLEANSERVE_URL", "http://127.0.0.1:8000"),
        help="the service's base URL (default: $CLEANSERVE_URL, else http://127.0.0.1:8000)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("CLEANSERVE_API_KEY"),
        help="bearer token, when the service has API keys (default: $CLEANSERVE_API_KEY)",
    )
    actions = parser.add_subparsers(dest="action", required=True, help="what to do")
    submit = actions.add_parser("submit", help="start a job on files the service can read")
    submit.add_argument("inputs", nargs="+", help="paths, directories, quoted globs, s3:// URIs")
    submit.add_argument("--out", required=True, help="output directory or s3:// prefix")
    submit.add_argument(
        "--output-format", choices=("ndjson", "parquet"), help="shard format (default: ndjson)"
    )
    submit.add_argument("--options", help='JSON, as /v1/analyze: {"clean": {...}, "count": {...}}')
    submit.add_argument(
        "--format",
        choices=("auto", "json", "ndjson", "csv", "parquet"),
        help="input format (default: auto, by extension)",
    )
    submit.add_argument("--text-field", help="the field or column with the text (default: text)")
    submit.add_argument("--id-field", help="the field or column with the id (default: id)")
    submit.add_argument("--summary-only", action="store_true", help="no row per good record")
    submit.add_argument("--top-words", type=int, help="words in the summary (default: 10)")
    submit.add_argument("--overwrite", action="store_true", help="replace an earlier run's output")
    submit.add_argument("--wait", action="store_true", help="show progress until the job ends")
    for name, what in (("status", "a job's state"), ("cancel", "stop a job")):
        action = actions.add_parser(name, help=what)
        action.add_argument("id", help="the job id `cleanserve job submit` printed")
    status = actions.choices["status"]
    status.add_argument("--wait", action="store_true", help="show progress until the job ends")
    actions.add_parser("list", help="every job the service knows")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from serve_app.ops.job_client import JobClient, JobClientError

    console = Console(stderr=True)
    try:
        with JobClient(args.url, api_key=args.api_key) as client:
            if args.action == "submit":
                options = json.loads(args.options) if args.options else None
                job = client.submit(
                    args.inputs,
                    args.out,
                    output_format=args.output_format,
                    options=options,
                    format=args.format,
                    text_field=args.text_field,
                    id_field=args.id_field,
                    include=[] if args.summary_only else None,
                    top_words=args.top_words,
                    overwrite=args.overwrite or None,
                )
                print(job["id"], flush=True)
                return _follow(client, job, console) if args.wait else 0
            if args.action == "status":
                job = client.status(args.id)
                return _follow(client, job, console) if args.wait else _show(job, console)
            if args.action == "cancel":
                return _show(client.cancel(args.id), console)
            for job in client.list():
                progress = job["progress"]
                print(
                    f"{job['id']}  {job['state']:<9}  {progress['files_done']:>6}/"
                    f"{progress['files_total']:<6} files  {progress['records']:>10,} records  "
                    f"{job['output']}"
                )
            return 0
    except (JobClientError, json.JSONDecodeError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2


def _follow(client: Any, job: dict[str, Any], console: Any) -> int:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.fields[state]:<9}"),
        TextColumn("{task.fields[files]} files"),
        TextColumn("{task.fields[records]:>11,} records"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    with bar:
        task = bar.add_task("job", total=1, state="", files="", records=0)

        def show(update: dict[str, Any]) -> None:
            progress = update["progress"]
            bar.update(
                task,
                total=max(progress["bytes_total"], 1),
                completed=progress["bytes"],
                state=update["state"],
                files=f"{progress['files_done']}/{progress['files_total']}",
                records=progress["records"],
            )

        show(job)
        job = client.wait(job["id"], on_update=show)
    return _show(job, console)


def _show(job: dict[str, Any], console: Any) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from serve_app.ops.job_client import exit_code

    table = Table(title=f"job {job['id']}: {job['state']}", show_header=False)
    table.add_row("output", escape(job["output"]))
    summary = job.get("summary") or {}
    progress = job["progress"]
    rows = {**progress, **{k: v for k, v in summary.items() if k != "top_words"}}
    for key, value in rows.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    if top := summary.get("top_words"):
        table.add_row("top_words", ", ".join(f"{escape(w)} ({c:,})" for w, c in top))
    if job.get("error"):
        table.add_row("error", escape(job["error"]))
    Console().print(table)
    if failed := summary.get("failed"):
        console.print(f"[yellow]{failed:,} record(s) failed[/yellow]; see their error rows")
    elif job["state"] in ("FAILED", "CANCELLED"):
        console.print(f"[red]job {job['state'].lower()}[/red]")
    return exit_code(job) if job["state"] not in ("PENDING", "RUNNING") else 0
