"""Where the replicas spend their CPU: py-spy on every Serve replica of the service during a
load, summarized as the top frames (self: the frame on CPU; total: the frame anywhere on the
stack). Sampling costs CPU, so it runs during an extra, unmeasured repeat of a load.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from loadtests.bench import procs

_SITE = re.compile(r"^.*?/(?:site|dist)-packages/")


@dataclass(frozen=True, slots=True)
class Profile:
    replica: str
    pid: int
    samples: int
    self_top: list[tuple[str, float]]
    total_top: list[tuple[str, float]]
    categories: list[tuple[str, float]]
    raw: Path


# A sample whose stack runs through the app's own code is the app's work, whatever library it
# is in at that moment; the rest is the cost of serving it, classified by the frame on CPU.
# Python frames whose own time is native code: uvloop's loop and gRPC's poller under a
# thread's run(), Ray's C++ core worker under the main thread's task loop.
_CATEGORIES = (
    (lambda leaf: leaf.startswith("Thread.run "), "native: event loop / gRPC (under Thread.run)"),
    (lambda leaf: leaf.startswith("Worker.main_loop "), "native: Ray core worker (main_loop)"),
    (lambda leaf: "(ray/serve/" in leaf, "Ray Serve (Python)"),
    (lambda leaf: "(ray/" in leaf, "Ray (Python: metrics, serialization, ...)"),
    (lambda leaf: "(grpc/" in leaf, "gRPC (Python)"),
    (
        lambda leaf: any(f"({lib}/" in leaf for lib in ("uvicorn", "starlette", "fastapi")),
        "HTTP: uvicorn / Starlette / FastAPI",
    ),
    (lambda leaf: "(pydantic" in leaf, "pydantic"),
)


APP = "app: serve_app and the libraries it calls"
OTHER = "other (stdlib, asyncio, threading, ...)"


def category(frames: list[str]) -> str:
    """By the frame on CPU; a library's or the stdlib's frame counts as the app's when the app
    called it (ftfy, regex, rjieba, Counter), not when only the app's middleware is on the
    stack, as it is for every request."""
    leaf = frames[-1]
    if "(serve_app/" in leaf:
        return APP
    for matches, name in _CATEGORIES:
        if matches(leaf):
            return name
    if "(asyncio/" not in leaf and any("(serve_app/" in frame for frame in frames):
        return APP
    return OTHER


def available() -> bool:
    return shutil.which("py-spy") is not None


def replica_pids(sid: int) -> dict[int, str]:
    pids = {}
    for proc in procs.session_processes(sid):
        with contextlib.suppress(psutil.Error, IndexError):
            if replica := procs.replica_name(proc.cmdline()[0]):
                pids[proc.pid] = replica
    return pids


@contextlib.contextmanager
def recording(sid: int, *, seconds: float, outdir: Path, tag: str) -> Iterator[list[Profile]]:
    """Record every replica for `seconds` while the body runs; the profiles are in the yielded
    list once the block is left."""
    outdir.mkdir(parents=True, exist_ok=True)
    running: list[tuple[str, int, Path, subprocess.Popen[bytes]]] = []
    for pid, replica in sorted(replica_pids(sid).items()):
        raw = outdir / f"{tag}-{replica}-{pid}.txt"
        cmd = [
            "py-spy", "record", "--pid", str(pid), "--duration", f"{seconds:.0f}",
            "--rate", "100", "--format", "raw", "--nonblocking", "--output", str(raw),
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        running.append((replica, pid, raw, proc))
    profiles: list[Profile] = []
    try:
        yield profiles
    finally:
        for replica, pid, raw, proc in running:
            try:
                proc.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(timeout=10)
            if raw.exists():
                profiles.append(summarize(raw, replica=replica, pid=pid))


def _frame(frame: str) -> str:
    return _SITE.sub("", frame.strip())


def summarize(raw: Path, *, replica: str, pid: int, top: int = 12) -> Profile:
    """py-spy's raw format: one `frame;frame;...;leaf count` line per distinct stack."""
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    category_counts: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        # The first frame is the thread ("process 123:..." / "thread (0x..)"): not code.
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += n
        self_counts[frames[-1]] += n
        category_counts[category(frames)] += n
        for frame in set(frames):
            total_counts[frame] += n

    def shares(counts: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, n / samples) for frame, n in counts.most_common(top)] if samples else []

    return Profile(
        replica,
        pid,
        samples,
        shares(self_counts),
        shares(total_counts),
        shares(category_counts),
        raw,
    )


# What runs while each profile is taken: tag -> title.
TITLES = {
    "analyze": "/v1/analyze, 32 connections",
    "batch": "/v1/batch standard, first 15 s",
}


def from_folder(folder: Path) -> dict[str, list[Profile]]:
    """The raw stacks a run kept (tag-replica-pid.txt), summarized again."""
    found: dict[str, list[Profile]] = {}
    for tag in TITLES:
        for raw in sorted(folder.glob(f"{tag}-*-*.txt")):
            _, replica, pid = raw.stem.rsplit("-", 2)
            found.setdefault(tag, []).append(summarize(raw, replica=replica, pid=int(pid)))
    return found


def category_lines(title: str, profiles: list[Profile]) -> list[str]:
    return [
        f"{title}, {p.replica}: "
        + ", ".join(f"{name} {share:.0%}" for name, share in p.categories if share >= 0.01)
        for p in profiles
    ]


def markdown(title: str, profiles: list[Profile]) -> str:
    lines = [f"### {title}", ""]
    for profile in profiles:
        lines += [
            f"**{profile.replica}** (pid {profile.pid}, {profile.samples} samples on CPU at "
            f"100 Hz; raw stacks: `{profile.raw.name}`): "
            + ", ".join(f"{name} {share:.0%}" for name, share in profile.categories),
            "",
            "| self | frame | | total | frame |",
            "|---:|---|---|---:|---|",
        ]
        for (s_frame, s_share), (t_frame, t_share) in zip(
            profile.self_top, profile.total_top, strict=False
        ):
            lines.append(f"| {s_share:.0%} | `{s_frame}` | | {t_share:.0%} | `{t_frame}` |")
        lines.append("")
    return "\n".join(lines)
