"""Ratios to baselines and the issue's targets. Pure: results dicts in, numbers and verdicts out.

A realtime point is {"system", "endpoint", "connections", "rps", "p50_ms", "p99_ms", ...}; a bulk
run is {"name", "mb_per_s", ...}; memory is {"uploads": [{"bytes", "peak_bytes", ...}, ...]}.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

REALTIME_BASELINE = "uvicorn-1"
# Each bulk run against each baseline it is compared with: key -> baseline run name.
BULK_BASELINES = {
    "x_seed_single": "seed-single",
    "x_seed_ray": "seed-ray",
    "x_core": "core-{mode}",
}
MEMORY_FLAT_RATIO = 1.3
INGRESS_CPU_SHARE = 0.15


@dataclass(frozen=True, slots=True)
class Target:
    key: str
    description: str
    measured: float | None
    threshold: float
    higher_is_better: bool = True
    unit: str = "x"

    @property
    def status(self) -> str:
        if self.measured is None:
            return "n/a"
        ok = (
            self.measured >= self.threshold
            if self.higher_is_better
            else self.measured <= self.threshold
        )
        return "PASS" if ok else "MISS"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None or baseline <= 0:
        return None
    return value / baseline


def find(items: Iterable[Mapping[str, Any]], **match: Any) -> Mapping[str, Any] | None:
    for item in items:
        if all(item.get(key) == value for key, value in match.items()):
            return item
    return None


def value(item: Mapping[str, Any] | None, key: str) -> float | None:
    return None if item is None else item.get(key)


def with_realtime_ratios(
    points: Sequence[Mapping[str, Any]], baseline: str = REALTIME_BASELINE
) -> list[dict[str, Any]]:
    """Each point plus `rps_x` (req/s over the baseline's) and `p99_x` (p99 over the baseline's),
    against the baseline's point at the same endpoint and connections."""
    out = []
    for point in points:
        base = find(
            points,
            system=baseline,
            endpoint=point["endpoint"],
            connections=point["connections"],
        )
        out.append(
            {
                **point,
                "rps_x": ratio(point.get("rps"), value(base, "rps")),
                "p99_x": ratio(point.get("p99_ms"), value(base, "p99_ms")),
            }
        )
    return out


def with_bulk_ratios(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each run plus its speed (MB/s) over each baseline's; `core-{mode}` is the core pipeline
    with the run's own options."""
    out = []
    for run in runs:
        ratios: dict[str, float | None] = {}
        for key, baseline in BULK_BASELINES.items():
            name = baseline.format(mode=run.get("mode", ""))
            base = value(find(runs, name=name), "mb_per_s")
            ratios[key] = None if name == run["name"] else ratio(run.get("mb_per_s"), base)
        out.append({**run, **ratios})
    return out


def memory_flat_ratio(memory: Mapping[str, Any] | None) -> float | None:
    """The peak RSS of the largest upload over that of the smallest."""
    uploads = sorted((memory or {}).get("uploads", []), key=lambda u: u["bytes"])
    if len(uploads) < 2:
        return None
    return ratio(uploads[-1]["peak_bytes"], uploads[0]["peak_bytes"])


def ingress_share(runs: Iterable[Mapping[str, Any]]) -> float | None:
    """The largest ingress CPU share over the /v1/batch runs."""
    shares = [
        share
        for run in runs
        if (share := run.get("extra", {}).get("ingress_cpu_share")) is not None
    ]
    return max(shares) if shares else None


def evaluate(results: Mapping[str, Any]) -> list[Target]:
    points = results.get("realtime", {}).get("points", [])
    runs = results.get("bulk", {}).get("runs", [])
    service = find(points, system="service", endpoint="/v1/analyze", connections=32)
    plain = find(points, system=REALTIME_BASELINE, endpoint="/v1/analyze", connections=32)

    def speedup(name: str, baseline: str) -> float | None:
        return ratio(
            value(find(runs, name=name), "mb_per_s"), value(find(runs, name=baseline), "mb_per_s")
        )

    return [
        Target(
            "analyze_rps_32",
            "/v1/analyze req/s at 32 connections vs plain uvicorn, one process",
            ratio(value(service, "rps"), value(plain, "rps")),
            0.5,
        ),
        Target(
            "analyze_p99_32",
            "/v1/analyze p99 at 32 connections",
            value(service, "p99_ms"),
            50.0,
            higher_is_better=False,
            unit="ms",
        ),
        Target(
            "batch_seed_vs_seed_ray",
            "/v1/batch seed mode vs the seed's ray.remote script (MB/s)",
            speedup("batch-seed", "seed-ray"),
            2.0,
        ),
        Target(
            "batch_seed_vs_seed_single",
            "/v1/batch seed mode, every record's line, vs the seed's single-process script (MB/s)",
            speedup("batch-seed", "seed-single"),
            1.0,
        ),
        Target(
            "batch_seed_summary_vs_seed_single",
            "/v1/batch seed mode, summary only, vs the seed's single-process script (MB/s)",
            speedup("batch-seed-summary", "seed-single"),
            1.3,
        ),
        Target(
            "batch_seed_summary_vs_seed_ray",
            "/v1/batch seed mode, summary only, vs the seed's ray.remote script (MB/s)",
            speedup("batch-seed-summary", "seed-ray"),
            2.0,
        ),
        Target(
            "batch_ingress_cpu_share",
            "the ingress's share of the service's CPU seconds during an upload (largest run)",
            ingress_share(runs),
            INGRESS_CPU_SHARE,
            higher_is_better=False,
        ),
        Target(
            "batch_standard_vs_core",
            "/v1/batch standard mode vs the core pipeline in one process (MB/s)",
            speedup("batch-standard", "core-standard"),
            1.5,
        ),
        Target(
            "memory_flat",
            "service peak RSS, largest upload (1 GB) vs smallest (100 MB)",
            memory_flat_ratio(results.get("memory")),
            MEMORY_FLAT_RATIO,
            higher_is_better=False,
        ),
    ]


SUMMARY_KEYS = ("total_chars", "unique_words", "top_words")


def same_summary(expected: Mapping[str, Any], actual: Mapping[str, Any] | None) -> bool:
    """Do two batch summaries agree on total chars, unique words and the top words (in order)?"""
    if actual is None:
        return False
    return all(_plain(expected.get(key)) == _plain(actual.get(key)) for key in SUMMARY_KEYS)


def _plain(value: Any) -> Any:
    # JSON gives lists where Python code built tuples: compare the data, not the container.
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
