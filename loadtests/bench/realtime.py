"""Real-time points: every system (the service and the plain baselines) at each endpoint and
number of connections, with the CPU each process used meanwhile.

All systems run at once and take turns point by point, in an order that rotates: on a machine
shared with other work, the noise then falls on every system alike instead of on whichever ran
during a busy minute. What the idle systems use meanwhile is recorded (`others_cores`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from loadtests.bench import loadgen, procs

ENDPOINTS = ("/v1/clean", "/v1/analyze")


@dataclass(frozen=True, slots=True)
class System:
    name: str
    url: str
    sid: int  # its process session: what its CPU and RSS are summed over


def request_body() -> bytes:
    # Default options on both endpoints: the standard preset, the `auto` tokenizer.
    return json.dumps({"text": loadgen.REVIEW}, ensure_ascii=False).encode("utf-8")


def sample_answers(base_url: str, endpoints: Sequence[str]) -> dict[str, Any]:
    """One answer per endpoint, to check that every system answers the same."""
    answers: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for endpoint in endpoints:
            try:
                response = client.post(
                    endpoint, content=request_body(), headers={"Content-Type": "application/json"}
                )
                answers[endpoint] = {"status": response.status_code, "body": response.json()}
            except (httpx.HTTPError, ValueError) as exc:
                answers[endpoint] = {"status": None, "body": repr(exc)}
    return answers


def measure(
    systems: Sequence[System],
    *,
    tool: str,
    endpoints: Sequence[str],
    connections: Sequence[int],
    duration_s: float,
    warmup_s: float,
) -> list[dict[str, Any]]:
    body = request_body()
    points = []
    turn = 0
    for endpoint in endpoints:
        for system in systems:  # caches, connections and (for the service) autoscaling
            with contextlib.suppress(loadgen.LoadError):  # a system that is down shows below
                loadgen.run(tool, system.url + endpoint, body, connections=max(connections),
                            duration_s=warmup_s)  # fmt: skip
        for conns in connections:
            for i in range(len(systems)):
                system = systems[(turn + i) % len(systems)]
                # The Serve floor shares the service's processes: not an idle other.
                others = [s for s in systems if s.sid != system.sid]
                point = measure_point(
                    system, others, tool=tool, endpoint=endpoint, conns=conns, duration_s=duration_s
                )
                print(format_point(point), flush=True)
                points.append(point)
            turn += 1
    order = {s.name: i for i, s in enumerate(systems)}
    where = {e: i for i, e in enumerate(endpoints)}
    return sorted(
        points, key=lambda p: (order[p["system"]], where[p["endpoint"]], p["connections"])
    )


def measure_point(
    system: System,
    others: Sequence[System],
    *,
    tool: str,
    endpoint: str,
    conns: int,
    duration_s: float,
) -> dict[str, Any]:
    # Sampled once a second: a point is 3-10 s of load on the same CPUs the sampler uses, and
    # a replica that autoscaling stops meanwhile still counts up to its last sample.
    trackers = [procs.CpuTracker(s.sid, interval_s=1.0) for s in (system, *others)]
    with contextlib.ExitStack() as stack:
        for tracker in trackers:
            stack.enter_context(tracker)
        try:
            result = loadgen.run(tool, system.url + endpoint, request_body(), connections=conns,
                                 duration_s=duration_s)  # fmt: skip
        except loadgen.LoadError as exc:  # down (restarting?): a failed point, not a failed run
            failed = str(exc).strip().splitlines()
            result = loadgen.LoadResult(tool, conns, duration_s, 0, 0, 0, None, None)
        else:
            failed = []
    cores, *idle = (tracker.cores() for tracker in trackers)
    system_cores = sum(cores.values())
    if result.cpu_s is not None:
        cores["loadgen"] = round(result.cpu_s / result.duration_s, 3)
    return {
        "system": system.name,
        "endpoint": endpoint,
        "connections": conns,
        "rps": result.rps,
        "requests": result.requests,
        "duration_s": result.duration_s,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "non_2xx": result.non_2xx,
        "socket_errors": result.socket_errors,
        "errors": result.errors,
        "tool": result.tool,
        # CPU per answer: what a request costs, whatever share of the machine the system got.
        "cpu_ms_per_request": system_cores * 1e3 / result.rps if result.rps else None,
        "cores": dict(sorted(cores.items(), key=lambda kv: -kv[1])),
        "others_cores": {s.name: round(sum(c.values()), 3) for s, c in zip(others, idle)},
        "replicas": procs.replica_counts(system.sid),
        **({"failed": " / ".join(failed)[:300]} if failed else {}),
    }


def format_point(point: dict[str, Any]) -> str:
    def ms(value: float | None) -> str:
        return "      –" if value is None else f"{value:7.1f}"

    if point.get("failed"):
        return (
            f"  {point['system']:<10} {point['endpoint']:<12} {point['connections']:>4} conns "
            f"FAILED: {point['failed']}"
        )
    return (
        f"  {point['system']:<10} {point['endpoint']:<12} {point['connections']:>4} conns "
        f"{point['rps']:>9,.0f} req/s  p50 {ms(point['p50_ms'])} ms  "
        f"p99 {ms(point['p99_ms'])} ms  errors {point['errors']:,}  "
        f"cores {sum(v for k, v in point['cores'].items() if k != 'loadgen'):.2f}"
    )
