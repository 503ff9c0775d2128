"""`cleanserve job submit|status|list|cancel`: the /v1/jobs client with a progress bar."""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Any

from serve_app.ops.exit_codes import JOB_EPILOG, ExitCode, for_job

if TYPE_CHECKING:  # httpx is the client extra's; the parser is built without it
    import httpx


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
    with_codes: dict[str, Any] = {
        "epilog": JOB_EPILOG,
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
    submit = actions.add_parser(
        "submit", help="start a job on files the service can read", **with_codes
    )
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
        action = actions.add_parser(name, help=what, **with_codes)
        action.add_argument("id", help="the job id `cleanserve job submit` printed")
    status = actions.choices["status"]
    status.add_argument("--wait", action="store_true", help="show progress until the job ends")
    actions.add_parser("list", help="every job the service knows")


def run(args: argparse.Namespace, *, transport: httpx.BaseTransport | None = None) -> int:
    from rich.console import Console

    from serve_app.ops.job_client import JobClient, JobClientError

    console = Console(stderr=True)
    try:
        options = json.loads(args.options) if getattr(args, "options", None) else None
    except json.JSONDecodeError as exc:
        console.print(f"[red]error:[/red] --options is not JSON: {exc}")
        return ExitCode.USAGE
    try:
        with JobClient(args.url, api_key=args.api_key, transport=transport) as client:
            if args.action == "submit":
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
                return _follow(client, job, console) if args.wait else ExitCode.OK
            if args.action == "status":
                job = client.status(args.id)
                return _follow(client, job, console) if args.wait else _show(job, console)
            if args.action == "cancel":
                _show(client.cancel(args.id), console)
                return ExitCode.OK  # the job is cancelled (or had just ended), as asked
            for job in client.list():
                progress = job["progress"]
                print(
                    f"{job['id']}  {job['state']:<9}  {progress['files_done']:>6}/"
                    f"{progress['files_total']:<6} files  {progress['records']:>10,} records  "
                    f"{job['output']}"
                )
            return ExitCode.OK
    except JobClientError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return ExitCode.FAILED


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
    code = for_job(job)
    if code == ExitCode.RECORDS_FAILED:
        console.print(
            f"[yellow]{summary['failed']:,} of {summary.get('records', 0):,} record(s) "
            "failed[/yellow]; see their error rows in the output"
        )
    elif code == ExitCode.FAILED:
        console.print(f"[red]job {job['state'].lower()}[/red]")
    return code
