"""Exit statuses of `cleanserve batch` and `cleanserve job`: one scheme for both, so a script
tells "some records failed" (look at their error lines) from "the run failed" (run it again)
the same way whichever path it took.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the run or job failed, was cancelled, or the service refused or was unreachable
    USAGE = 2  # bad arguments (argparse uses 2 as well)
    RECORDS_FAILED = 3  # the run finished, but some records failed: the count is printed


def epilog(meanings: dict[ExitCode, str]) -> str:
    """An `--help` epilog listing every status, for RawDescriptionHelpFormatter."""
    rows = "".join(f"  {int(code)}  {meanings[code]}\n" for code in ExitCode)
    return f"exit status:\n{rows}"


BATCH_EPILOG = epilog(
    {
        ExitCode.OK: "every record was cleaned and counted",
        ExitCode.FAILED: "the run failed: service unreachable, an HTTP error, the stream broke\n"
        "     off or ended with an error line (the service stopping): run it again",
        ExitCode.USAGE: "bad arguments: unreadable --options, no input file",
        ExitCode.RECORDS_FAILED: "the run finished, but some records failed (the count is\n"
        "     printed; --out keeps their error lines)",
    }
)

JOB_EPILOG = epilog(
    {
        ExitCode.OK: "done: the job succeeded with no failed record (submit --wait, status),\n"
        "     is still running (status without --wait), was submitted (submit) or\n"
        "     cancelled (cancel), or the list was printed",
        ExitCode.FAILED: "the job FAILED or was CANCELLED (submit --wait, status), or the\n"
        "     service refused the request or could not be reached",
        ExitCode.USAGE: "bad arguments: unreadable --options, a missing argument",
        ExitCode.RECORDS_FAILED: "the job succeeded, but some records failed (the count is\n"
        "     printed; the output has their error rows)",
    }
)


def for_job(job: dict[str, Any]) -> ExitCode:
    """What `job submit --wait` and `job status` exit with for the job they show."""
    state = job["state"]
    if state in ("PENDING", "RUNNING"):
        return ExitCode.OK
    if state != "SUCCEEDED":
        return ExitCode.FAILED
    failed = (job.get("summary") or {}).get("failed")
    return ExitCode.RECORDS_FAILED if failed else ExitCode.OK
