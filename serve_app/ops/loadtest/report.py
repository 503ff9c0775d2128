"""Read Locust's CSV reports, judge them against thresholds and sum a run up (summary.json).
Pure: no Locust, no HTTP.

Thresholds come from a TOML file (thresholds.toml, package data) and command-line overrides;
names are Locust's request names (the locustfile's `name=`), "*" is the default for every endpoint.
Latency limits apply per endpoint, never to "Aggregated", which mixes 10 ms requests with
multi-second bulk uploads; the failure ratio applies to every row.
"""

from __future__ import annotations

import csv
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

AGGREGATED = "Aggregated"
DEFAULT_KEY = "*"


@dataclass(frozen=True, slots=True)
class EndpointStats:
    name: str
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    rps: float

    @property
    def fail_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    max_fail_ratio: float = 0.0
    p95_ms: Mapping[str, float] = field(default_factory=dict)
    p99_ms: Mapping[str, float] = field(default_factory=dict)

    def limit(self, which: Mapping[str, float], name: str) -> float | None:
        return which.get(name, which.get(DEFAULT_KEY))


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:  # "N/A" when an endpoint saw no request
        return math.nan


def read_stats(path: Path) -> list[EndpointStats]:
    """Rows of Locust's PREFIX_stats.csv, "Aggregated" last."""
    with path.open(newline="", encoding="utf-8") as file:
        return [
            EndpointStats(
                name=row["Name"],
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                p50_ms=_number(row["50%"]),
                p95_ms=_number(row["95%"]),
                p99_ms=_number(row["99%"]),
                rps=_number(row["Requests/s"]),
            )
            for row in csv.DictReader(file)
        ]


def read_history(path: Path) -> list[dict[str, Any]]:
    """Rows of PREFIX_stats_history.csv with numbers as floats (NaN for "N/A")."""
    with path.open(newline="", encoding="utf-8") as file:
        rows = []
        for row in csv.DictReader(file):
            parsed: dict[str, Any] = {"Name": row["Name"], "Type": row["Type"]}
            for key, value in row.items():
                if key not in parsed:
                    parsed[key] = _number(value)
            rows.append(parsed)
        return rows


def load_thresholds(path: Path) -> Thresholds:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return Thresholds(
        max_fail_ratio=float(data.get("max_fail_ratio", 0.0)),
        p95_ms={str(k): float(v) for k, v in data.get("p95_ms", {}).items()},
        p99_ms={str(k): float(v) for k, v in data.get("p99_ms", {}).items()},
    )


def parse_limit(text: str) -> tuple[str, float]:
    """ "NAME=MS" (NAME may be "*" or contain "="; the last "=" splits) -> (NAME, MS)."""
    name, sep, value = text.rpartition("=")
    if not sep or not name:
        raise ValueError(f"expected NAME=MILLISECONDS, got {text!r}")
    try:
        limit = float(value)
    except ValueError:
        raise ValueError(f"{value!r} in {text!r} is not a number of milliseconds") from None
    if limit <= 0:
        raise ValueError(f"a limit must be positive: {text!r}")
    return name, limit


def with_overrides(
    base: Thresholds,
    *,
    max_fail_ratio: float | None = None,
    p95: Iterable[tuple[str, float]] = (),
    p99: Iterable[tuple[str, float]] = (),
) -> Thresholds:
    return replace(
        base,
        max_fail_ratio=base.max_fail_ratio if max_fail_ratio is None else max_fail_ratio,
        p95_ms={**base.p95_ms, **dict(p95)},
        p99_ms={**base.p99_ms, **dict(p99)},
    )


def violations(stats: Iterable[EndpointStats], thresholds: Thresholds) -> list[str]:
    """Every missed threshold, as a sentence; empty when the run passes."""
    found: list[str] = []
    for row in stats:
        if row.fail_ratio > thresholds.max_fail_ratio:
            found.append(
                f"{row.name}: {row.failures} of {row.requests} requests failed "
                f"({row.fail_ratio:.2%} > {thresholds.max_fail_ratio:.2%})"
            )
        if row.name == AGGREGATED or row.requests == 0:
            continue
        for label, measured, limits in (
            ("p95", row.p95_ms, thresholds.p95_ms),
            ("p99", row.p99_ms, thresholds.p99_ms),
        ):
            limit = thresholds.limit(limits, row.name)
            if limit is not None and measured > limit:
                found.append(f"{row.name}: {label} {measured:,.0f} ms > {limit:,.0f} ms")
    return found


def summary_rows(stats: Iterable[EndpointStats]) -> list[list[str]]:
    """The summary table's cells: endpoint, requests, failures, p50, p95, p99, req/s."""

    def ms(value: float) -> str:
        return "-" if math.isnan(value) else f"{value:,.0f}"

    return [
        [
            row.name,
            f"{row.requests:,}",
            f"{row.failures:,}" + (f" ({row.fail_ratio:.1%})" if row.failures else ""),
            ms(row.p50_ms),
            ms(row.p95_ms),
            ms(row.p99_ms),
            "-" if math.isnan(row.rps) else f"{row.rps:,.1f}",
        ]
        for row in stats
    ]


SUMMARY_HEADER = ["endpoint", "requests", "failures", "p50 ms", "p95 ms", "p99 ms", "req/s"]


def scaling_events(samples: Sequence[dict[str, Any]], t0: float) -> list[dict[str, Any]]:
    """Every change of a deployment's running replicas: {t_s, deployment, from, to}."""
    events: list[dict[str, Any]] = []
    last: dict[str, int] = {}
    for row in samples:
        name, running = row["deployment"], row["running"]
        if name in last and last[name] != running:
            events.append(
                {
                    "t_s": round(row["timestamp"] - t0, 1),
                    "deployment": name,
                    "from": last[name],
                    "to": running,
                }
            )
        last[name] = running
    return events


def _number_or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def build_summary(
    *,
    url: str,
    shape: str,
    stats: Sequence[EndpointStats],
    history: Sequence[dict[str, Any]],
    samples: Sequence[dict[str, Any]] | None,
    replica_problem: str | None,
    thresholds: Thresholds,
    violations: list[str],
    locust_rc: int,
    files: dict[str, Path],
) -> dict[str, Any]:
    """What summary.json holds: the run's figures, its verdict and where its files are."""
    t0 = min((row["Timestamp"] for row in history), default=0.0)
    max_replicas: dict[str, int] = {}
    for row in samples or []:
        max_replicas[row["deployment"]] = max(
            max_replicas.get(row["deployment"], 0), row["running"]
        )
    users = [row["User Count"] for row in history if not math.isnan(row["User Count"])]
    return {
        "url": url,
        "shape": shape,
        "peak_users": int(max(users, default=0)),
        "locust_exit_code": locust_rc,
        "endpoints": [
            {
                "name": row.name,
                "requests": row.requests,
                "failures": row.failures,
                "p50_ms": _number_or_none(row.p50_ms),
                "p95_ms": _number_or_none(row.p95_ms),
                "p99_ms": _number_or_none(row.p99_ms),
                "rps": _number_or_none(row.rps),
            }
            for row in stats
        ],
        "thresholds": {
            "max_fail_ratio": thresholds.max_fail_ratio,
            "p95_ms": dict(thresholds.p95_ms),
            "p99_ms": dict(thresholds.p99_ms),
        },
        "violations": violations,
        "replicas": {
            "sampled": samples is not None,
            "skipped_because": replica_problem,
            "max": max_replicas,
            "events": scaling_events(samples, t0) if samples else [],
        },
        "files": {key: str(path) for key, path in files.items()},
    }
