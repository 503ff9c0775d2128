"""Memory growth of the replicas under repeated load: a leak, or the allocators' warm-up?

    python -m serve_app.ops.loadtest.memgrowth --rounds 30      # starts a service, free ports

The soak (soak.py) sees resident memory rise; RSS alone cannot say why. Each round here sends
the soak's mix (short /v1/analyze, /v1/clean and /v1/count requests, a few 20-200 KB texts, a
1 MB /v1/batch upload) and then asks every replica, from a driver connected to the cluster
(Ray's `__ray_call__` runs a function inside an actor), for:

- rss: its resident set;
- python: bytes Python allocated and has not freed (tracemalloc, started after a warm-up
  round): a leak of Python objects grows this with every round;
- heap_used / heap_free: glibc's heap in use and held free (mallinfo2), over every arena;
- arrow: bytes held by Arrow's memory pool (jemalloc), where pyarrow is loaded.

At the end: each measure's slope per 1,000 requests over the second half of the rounds, the
source lines whose live allocations grew most since the warm-up, and what `malloc_trim(0)`
gives back to the system in each replica. Rows in results/memgrowth-<time>/memgrowth.json.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import re
import sys
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

APP = "cleanserve"
MB = 2**20
_baseline: tracemalloc.Snapshot | None = None  # in each replica, once tracing starts


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _libc() -> Any:
    return ctypes.CDLL("libc.so.6")


# -- run inside a replica (through __ray_call__, whose first argument is the actor) -------------


def start_tracing(actor: Any = None) -> None:
    global _baseline
    gc.collect()
    if not tracemalloc.is_tracing():
        tracemalloc.start(1)
    _baseline = tracemalloc.take_snapshot()


def measure(actor: Any = None) -> dict[str, float]:
    import psutil

    libc = _libc()
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    arrow = sys.modules.get("pyarrow")
    process = psutil.Process()
    cpu = process.cpu_times()
    return {
        "rss": process.memory_info().rss / MB,
        "python": tracemalloc.get_traced_memory()[0] / MB if tracemalloc.is_tracing() else 0.0,
        "heap_used": (info.uordblks + info.hblkhd) / MB,
        "heap_free": info.fordblks / MB,
        "arrow": arrow.total_allocated_bytes() / MB if arrow is not None else 0.0,
        "cpu_s": cpu.user + cpu.system,  # its slope: CPU seconds per 1,000 requests
    }


def growth(actor: Any = None, top: int = 8) -> list[tuple[str, float, int]]:
    """The lines whose live allocations grew most since start_tracing: (where, MB, blocks)."""
    if _baseline is None:
        return []
    gc.collect()
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    now = tracemalloc.take_snapshot().filter_traces(ignore)
    stats = now.compare_to(_baseline.filter_traces(ignore), "lineno")[:top]
    return [(str(s.traceback[0]), round(s.size_diff / MB, 3), s.count_diff) for s in stats]


def trim(actor: Any = None) -> dict[str, float]:
    gc.collect()
    before = measure()
    _libc().malloc_trim(0)
    after = measure()
    return {"rss_before": before["rss"], "rss_after": after["rss"]}


# -- the driver -------------------------------------------------------------------------------


def replicas() -> dict[str, Any]:
    """Every live replica of the application: {"WordCounter#abc": actor handle}."""
    import ray
    from ray.util.state import list_actors

    found = {}
    for actor in list_actors(filters=[("state", "=", "ALIVE")], limit=1000):
        if (actor.class_name or "").startswith(f"ServeReplica:{APP}:") and actor.name:
            short = actor.name.split("#", 1)[1]  # SERVE_REPLICA::cleanserve#WordCounter#abc
            found[short] = ray.get_actor(actor.name, namespace="serve")
    return found


def on_every(handles: dict[str, Any], fn: Any, *args: Any) -> dict[str, Any]:
    import ray

    refs = {name: handle.__ray_call__.remote(fn, *args) for name, handle in handles.items()}
    return {name: ray.get(ref, timeout=120) for name, ref in refs.items()}


def one_round(client: httpx.Client, round_no: int, *, short: int, bulk_mb: float) -> int:
    """The soak's mix, 8 at a time; returns the number of requests sent."""
    from serve_app.ops.loadtest.textgen import ReviewGenerator, ndjson_records

    gen = ReviewGenerator(seed=round_no)
    calls: list[tuple[str, dict[str, Any]]] = []
    for i in range(short):
        path = ("/v1/analyze", "/v1/analyze", "/v1/clean", "/v1/count")[i % 4]
        calls.append((path, {"text": gen.short()}))
    calls += [("/v1/analyze", {"text": gen.long()}) for _ in range(3)]

    def post(call: tuple[str, dict[str, Any]]) -> None:
        client.post(call[0], json=call[1], timeout=120).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, calls))
    body = ndjson_records(int(bulk_mb * 1_000_000), seed=round_no)
    response = client.post(
        "/v1/batch?include=none",
        content=body,
        headers={"content-type": "application/x-ndjson"},
        timeout=300,
    )
    response.raise_for_status()
    assert b'"summary"' in response.content.splitlines()[-1]
    return len(calls) + 1


def slope_per_thousand(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (requests, MB) points, in MB per 1,000 requests."""
    from serve_app.ops.loadtest.soak import slope_per_hour

    return slope_per_hour(points) / 3600 * 1000  # the same fit, x in requests, not seconds


def report(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each replica's slope of each measure, per 1,000 requests, over the second half."""
    half = rows[len(rows) // 2 :]
    slopes: dict[str, dict[str, float]] = {}
    for name in half[0]["replicas"]:
        slopes[name] = {
            measure_name: round(
                slope_per_thousand(
                    [(row["requests"], row["replicas"][name][measure_name]) for row in half]
                ),
                2,
            )
            for measure_name in half[0]["replicas"][name]
        }
    return slopes


def run(url: str, ray_address: str, *, rounds: int, short: int, bulk_mb: float) -> dict[str, Any]:
    # The launcher's clusters use token authentication; Ray reads the mode when it loads.
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    # Other Ray clusters may run on this machine: name ours, for the state API too.
    os.environ["RAY_ADDRESS"] = ray_address
    import ray

    ray.init(address=ray_address, log_to_driver=False)
    try:
        return _measured_rounds(url, rounds=rounds, short=short, bulk_mb=bulk_mb)
    finally:
        ray.shutdown()  # before the service stops: a driver whose GCS is gone aborts


def _measured_rounds(url: str, *, rounds: int, short: int, bulk_mb: float) -> dict[str, Any]:
    # By module, not __main__: the replicas import these (serve_app is theirs too) instead of
    # unpickling copies, which ctypes structures refuse.
    from serve_app.ops.loadtest.memgrowth import growth, measure, start_tracing, trim

    handles = replicas()
    rows: list[dict[str, Any]] = []
    sent = 0
    with httpx.Client(base_url=url) as client:
        sent += one_round(client, -1, short=short, bulk_mb=bulk_mb)  # warm-up, not traced
        on_every(handles, start_tracing)
        for round_no in range(rounds):
            sent += one_round(client, round_no, short=short, bulk_mb=bulk_mb)
            row = {"round": round_no, "requests": sent, "replicas": on_every(handles, measure)}
            rows.append(row)
            print(_row_line(row), flush=True)
    return {
        "rows": rows,
        "slopes_per_1000_requests": report(rows),
        "growth_since_warmup": on_every(handles, growth),
        "malloc_trim": on_every(handles, trim),
    }


def _row_line(row: dict[str, Any]) -> str:
    cells = []
    for name, m in sorted(row["replicas"].items()):
        short_name = re.sub(r"#.*", "", name)[:4] + name[-3:]
        cells.append(
            f"{short_name} rss {m['rss']:.0f} py {m['python']:.1f} heap {m['heap_used']:.0f}"
            f"+{m['heap_free']:.0f} arrow {m['arrow']:.0f}"
        )
    return f"round {row['round']:>3} requests {row['requests']:>6}  " + " | ".join(cells)


@contextlib.contextmanager
def _service(results: Path, extra_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """`cleanserve up` on free ports (other services may run here); its URL and GCS address."""
    from serve_app.ops.loadtest.service import Ports, free_port, running, up_command

    ports = Ports(free_port(), free_port(), free_port(), free_port())
    url = f"http://127.0.0.1:{ports.port}"
    log = results / "service.log"
    # Serve's fallback proxy binds fixed ports with SO_REUSEPORT: give it free ones as well.
    env = {
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
        **extra_env,
    }
    with running(up_command(ports), url, log=log, env=env):
        # /healthz answers a moment before `cleanserve up` prints the cluster's address.
        deadline = time.monotonic() + 30
        while not (match := re.search(r"Ray cluster: (\S+)", log.read_text(errors="replace"))):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no Ray address in {log}")
            time.sleep(0.2)
        yield url, match.group(1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running service (default: start one on free ports)")
    parser.add_argument("--ray-address", help="with --url: its GCS address (`cleanserve up` says)")
    parser.add_argument("--rounds", type=int, default=30, help="measured rounds (default: 30)")
    parser.add_argument("--short", type=int, default=400, help="short requests a round (400)")
    parser.add_argument("--bulk-mb", type=float, default=1.0, help="the upload a round (1 MB)")
    parser.add_argument("--results", type=Path, help="default: results/memgrowth-<time>")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment for the service it starts, e.g. MALLOC_ARENA_MAX=2 (repeatable)",
    )
    args = parser.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results = (args.results or Path("results") / f"memgrowth-{stamp}").resolve()
    results.mkdir(parents=True, exist_ok=True)
    env = dict(item.split("=", 1) for item in args.env)
    with _service(results, env) if args.url is None else _given(args) as (url, ray_address):
        outcome = run(url, ray_address, rounds=args.rounds, short=args.short, bulk_mb=args.bulk_mb)
    (results / "memgrowth.json").write_text(json.dumps(outcome, indent=2), encoding="utf-8")
    print(json.dumps({k: v for k, v in outcome.items() if k != "rows"}, indent=2))
    return 0


@contextlib.contextmanager
def _given(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    if not args.ray_address:
        raise SystemExit("--url needs --ray-address")
    yield args.url.rstrip("/"), args.ray_address


if __name__ == "__main__":
    sys.exit(main())
