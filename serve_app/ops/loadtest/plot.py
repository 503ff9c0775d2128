"""One PNG per run: throughput, latency and replicas per deployment on a shared time axis."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from serve_app.ops.loadtest.report import AGGREGATED


def _series(
    rows: Sequence[dict[str, Any]], name: str, column: str, t0: float, *, positive: bool = False
) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        value = row[column]
        if row["Name"] == name and not math.isnan(value) and (value > 0 or not positive):
            xs.append(row["Timestamp"] - t0)
            ys.append(row[column])
    return xs, ys


RATE_WINDOW_S = 5.0


def rate(
    rows: Sequence[dict[str, Any]], total_column: str, t0: float, *, window_s: float = RATE_WINDOW_S
) -> tuple[list[float], list[float]]:
    """Per-second rate of a cumulative column of the "Aggregated" rows, over a trailing window.
    Locust's own Requests/s column averages 10 s and lags 2 s: too slow to line up with
    replica changes."""
    points = [
        (row["Timestamp"], row[total_column])
        for row in rows
        if row["Name"] == AGGREGATED and not math.isnan(row[total_column])
    ]
    xs, ys = [], []
    start = 0
    for t, total in points:
        while points[start][0] < t - window_s:
            start += 1
        t_start, total_start = points[start]
        if t > t_start:
            xs.append(t - t0)
            ys.append((total - total_start) / (t - t_start))
    return xs, ys


def draw(
    history: Sequence[dict[str, Any]],
    replicas: Sequence[dict[str, Any]] | None,
    out: Path,
    *,
    title: str,
    deployments: Sequence[str] = ("TextCleaner", "WordCounter"),
) -> Path:
    """`history`: report.read_history rows; `replicas`: replicas.read_samples rows, or None when
    they could not be sampled (the chart then says so instead of showing a flat line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timestamps = [row["Timestamp"] for row in history if row["Name"] == AGGREGATED]
    t0 = min(timestamps) if timestamps else 0.0
    panels = 3
    fig, axes = plt.subplots(panels, 1, figsize=(11, 9), sharex=True, constrained_layout=True)
    load, latency, scale = axes

    xs, rps = rate(history, "Total Request Count", t0)
    load.plot(xs, rps, color="tab:blue", label=f"requests/s ({RATE_WINDOW_S:.0f} s window)")
    xs_fail, fails = rate(history, "Total Failure Count", t0)
    if any(fails):
        load.plot(xs_fail, fails, color="tab:red", label="failures/s")
    load.set_ylabel("requests/s")
    users_axis = load.twinx()
    xs_users, users = _series(history, AGGREGATED, "User Count", t0)
    users_axis.step(xs_users, users, where="post", color="grey", alpha=0.6, label="users")
    users_axis.set_ylabel("users")
    lines = load.get_legend_handles_labels()
    more = users_axis.get_legend_handles_labels()
    load.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize="small")
    load.set_title(title)
    load.grid(alpha=0.3)

    names = sorted({row["Name"] for row in history} - {AGGREGATED})
    for name in names:
        xs_p, p95 = _series(history, name, "95%", t0, positive=True)
        if p95:
            latency.plot(xs_p, p95, label=name, linewidth=1)
    # Locust writes 0 for a second without requests: not a latency, and not drawable on a log axis.
    xs_p, p95 = _series(history, AGGREGATED, "95%", t0, positive=True)
    latency.plot(xs_p, p95, color="black", linewidth=2, label="all requests")
    latency.set_yscale("log")
    latency.set_ylabel("p95 ms (last 10 s)")
    latency.legend(loc="upper left", fontsize="small", ncol=2)
    latency.grid(alpha=0.3, which="both")

    if replicas:
        by_deployment: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in replicas:
            by_deployment[row["deployment"]].append(row)
        shown = [d for d in deployments if d in by_deployment] or sorted(by_deployment)
        for index, name in enumerate(shown):
            rows = by_deployment[name]
            # Offset the lines a little so equal counts stay visible side by side.
            offset = (index - (len(shown) - 1) / 2) * 0.04
            xs_r = [row["timestamp"] - t0 for row in rows]
            line = scale.step(
                xs_r,
                [row["running"] + offset for row in rows],
                where="post",
                label=f"{name} running",
            )[0]
            targets = [
                (x, row["target"])
                for x, row in zip(xs_r, rows, strict=True)
                if row["target"] is not None
            ]
            if targets:
                scale.step(
                    [x for x, _ in targets],
                    [t + offset for _, t in targets],
                    where="post",
                    linestyle=":",
                    color=line.get_color(),
                    label=f"{name} target",
                )
        top = max(max(row["running"], row["target"] or 0) for row in replicas)
        scale.set_ylim(0, top + 1)
        scale.yaxis.get_major_locator().set_params(integer=True)
        scale.legend(loc="upper left", fontsize="small", ncol=2)
    else:
        scale.text(
            0.5,
            0.5,
            "replicas not sampled (no access to the Serve REST API)",
            ha="center",
            va="center",
            transform=scale.transAxes,
        )
    scale.set_ylabel("replicas")
    scale.set_xlabel("seconds since the load started")
    scale.grid(alpha=0.3)

    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
