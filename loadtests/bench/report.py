"""results.json, summary.md and realtime.png from one run's results.

python -m loadtests.bench.report results/bench-<time>   # redraws both from results.json
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadtests.bench.targets import Target

MB = 1e6
MIB = 1 << 20


def _num(value: float | None, fmt: str = "{:,.0f}") -> str:
    return "–" if value is None else fmt.format(value)


def _x(value: float | None) -> str:
    return _num(value, "{:.2f}x")


def _mib(value: int | None) -> str:
    return _num(None if value is None else value / MIB, "{:,.0f} MiB")


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(rule) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def realtime_section(realtime: Mapping[str, Any]) -> list[str]:
    points = _side_by_side(realtime.get("points", []))
    if not points:
        return []
    lines = [
        "## Real time",
        "",
        f"Closed loop with {realtime.get('tool_version', realtime.get('tool'))}, "
        f"{realtime.get('duration_s')} s per point after a {realtime.get('warmup_s')} s warm-up "
        "per endpoint; body: a 150-character mixed English/Chinese review with an emoji, a tag "
        "and a URL, default options. req/s counts 2xx answers only; errors are non-2xx + socket "
        "errors; `x` columns are ratios to plain uvicorn, one process, at the same point "
        "(p99 x < 1 is better). CPU ms/req: CPU time of all the system's processes per 2xx "
        "answer, which a busy machine disturbs least. `serve-floor` is Serve's HTTP path alone "
        "(loadtests/bench/floor.py: the same routes and request models, answered at once, no "
        "downstream call, no text work), an application beside the service in its cluster, so "
        "its CPU includes the idle service's: what any Serve ingress design can reach here.",
        "",
    ]
    rows = [
        [
            p["endpoint"],
            str(p["connections"]),
            p["system"],
            _num(p["rps"]),
            _x(p.get("rps_x")),
            _num(p["p50_ms"], "{:.1f}"),
            _num(p["p99_ms"], "{:.1f}"),
            _x(p.get("p99_x")),
            "failed" if p.get("failed") else f"{p['errors']:,}",
            _num(cpu_ms_per_request(p), "{:.2f}"),
        ]
        for p in points
    ]
    header = [
        "endpoint", "conns", "system", "req/s", "x", "p50 ms", "p99 ms", "p99 x", "errors",
        "CPU ms/req",
    ]  # fmt: skip
    lines += table(header, rows, "lrlrrrrrrr")
    measured = [p for p in points if p.get("cores")]
    if measured:
        lines += [
            "",
            "CPU used during each point, in cores (1.0 = one core busy): by the system's "
            "processes (top 8), by the load generator (`loadgen`), and by the other systems "
            "idling meanwhile (all systems run at once and take turns, point by point).",
            "",
        ]
        rows = [
            [
                p["endpoint"],
                str(p["connections"]),
                p["system"],
                " ".join(f"{k}={v}" for k, v in p.get("replicas", {}).items()) or "–",
                ", ".join(f"{name} {cores:.2f}" for name, cores in list(p["cores"].items())[:8]),
                ", ".join(f"{k} {v:.2f}" for k, v in p.get("others_cores", {}).items()),
            ]
            for p in measured
        ]
        header = ["endpoint", "conns", "system", "replicas", "cores", "idle others"]
        lines += table(header, rows, "lrllll")
    return [*lines, ""]


def cpu_ms_per_request(point: Mapping[str, Any]) -> float | None:
    if point.get("cpu_ms_per_request") is not None:
        return float(point["cpu_ms_per_request"])
    cores = sum(v for k, v in point.get("cores", {}).items() if k != "loadgen")
    return cores * 1e3 / point["rps"] if point.get("rps") and cores else None


def _side_by_side(points: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    endpoints = {e: i for i, e in enumerate(dict.fromkeys(p["endpoint"] for p in points))}
    systems = {s: i for i, s in enumerate(dict.fromkeys(p["system"] for p in points))}
    return sorted(
        points,
        key=lambda p: (endpoints[p["endpoint"]], p["connections"], systems[p["system"]]),
    )


def bulk_section(bulk: Mapping[str, Any]) -> list[str]:
    runs = bulk.get("runs", [])
    if not runs:
        return []
    corpus = bulk.get("corpus", {})
    lines = [
        "## Bulk",
        "",
        f"Corpus: {corpus.get('files')} JSON files, {corpus.get('bytes', 0) / MB:,.1f} MB "
        f"(50-500 KB each, seed {corpus.get('seed')}). Scripts are timed on their work (after "
        "imports, warm-up and `ray.init`); `cleanserve batch` on the whole command, writing "
        "every record's result to a file. `x` columns: speed (MB/s) over the baseline's; "
        "`core` is the core pipeline with the same options. CPU s: CPU time of every process "
        "doing the work (the service's whole session plus the client; for the seed's Ray "
        "script what its driver reaped, which can undercount), so MB/CPU-s is what a "
        "busy machine disturbs least.",
        "",
    ]
    rows = [
        [
            r["label"],
            _num(r["seconds"], "{:.2f}"),
            _num(r["mb_per_s"], "{:.2f}"),
            _num(r.get("cpu_s"), "{:,.1f}"),
            _num(r.get("mb_per_cpu_s"), "{:.2f}"),
            _mib(r["peak_rss_bytes"]),
            _mib(r.get("extra", {}).get("service_peak_increase_bytes")),
            _x(r.get("x_seed_single")),
            _x(r.get("x_seed_ray")),
            _x(r.get("x_core")),
        ]
        for r in runs
    ]
    header = [
        "run", "s", "MB/s", "CPU s", "MB/CPU-s", "peak RSS", "over idle",
        "x seed 1-proc", "x seed ray", "x core",
    ]  # fmt: skip
    lines += table(header, rows)
    lines += [
        "",
        "Peak RSS: the process itself for one-process runs; the sum over every process of its "
        "session (sampled every 0.2 s) for the seed's Ray script and the service; `over idle`: "
        "the service's peak over its RSS when the batch started. Rounds (seconds): "
        + "; ".join(
            f"{r['name']} " + ", ".join(f"{s:.2f}" for s in r.get("extra", {}).get("rounds_s", []))
            for r in runs
        )
        + ". The seed's Ray script with `ray.init` counted: "
        + ", ".join(
            f"{r['extra']['seconds_with_init']:.1f} s"
            for r in runs
            if "seconds_with_init" in r.get("extra", {})
        )
        + ".",
        "",
    ]
    for r in runs:
        cores = r.get("extra", {}).get("service_cores")
        if cores:
            lines.append(
                f"- {r['label']}: service CPU in cores "
                + ", ".join(f"{k} {v:.2f}" for k, v in list(cores.items())[:8])
                + f"; replicas after: {r['extra'].get('replicas_after')}"
                + (
                    f"; ingress share of the service's CPU: {share:.1%}"
                    if (share := r["extra"].get("ingress_cpu_share")) is not None
                    else ""
                )
            )
    return [*lines, ""]


def checks_section(checks: Sequence[Mapping[str, Any]]) -> list[str]:
    if not checks:
        return []
    return [
        "## Correctness",
        "",
        *(f"- {'✔' if c['ok'] else '✘'} {c['what']}" for c in checks),
        "",
    ]


def memory_section(memory: Mapping[str, Any] | None) -> list[str]:
    uploads = (memory or {}).get("uploads", [])
    if not uploads:
        return []
    lines = [
        "## Memory",
        "",
        f"NDJSON uploads generated while sent, `include=none`, options: "
        f"{memory.get('mode') if memory else ''}"
        + (f", extra headers: {memory['headers']}" if memory and memory.get("headers") else "")
        + ". RSS: sum over every process of the service; `over idle`: over its RSS when the "
        "upload started (uploads run one after the other on one service).",
        "",
    ]
    rows = [
        [
            _num(u["bytes"] / MB, "{:,.0f} MB"),
            f"{u['records']:,}",
            _num(u["seconds"], "{:.1f}"),
            _num(u["mb_per_s"], "{:.2f}"),
            _mib(u["idle_bytes"]),
            _mib(u["peak_bytes"]),
            _mib(u["peak_increase_bytes"]),
            " ".join(f"{k}={v}" for k, v in u.get("replicas_after", {}).items()),
        ]
        for u in uploads
    ]
    header = ["upload", "records", "s", "MB/s", "idle RSS", "peak RSS", "over idle", "replicas"]
    return [*lines, *table(header, rows), ""]


def targets_section(targets: Sequence[Target]) -> list[str]:
    rows = [
        [
            t.description,
            "–"
            if t.measured is None
            else (f"{t.measured:.1f} ms" if t.unit == "ms" else f"{t.measured:.2f}x"),
            ("≥ " if t.higher_is_better else "≤ ")
            + (f"{t.threshold:g} ms" if t.unit == "ms" else f"{t.threshold:g}x"),
            t.status,
        ]
        for t in targets
    ]
    return ["## Targets", "", *table(["target", "measured", "goal", ""], rows, "lrrl"), ""]


def markdown(results: Mapping[str, Any], targets: Sequence[Target]) -> str:
    env = results["environment"]
    lines = [
        f"# cleanserve benchmark, {results['started']}",
        "",
        f"`{results['command']}`",
        "",
        f"{env['cpus']} CPUs, {env['memory_gib']:.0f} GiB, Python {env['python']}, "
        f"Ray {env['ray']}; code: {_code(env.get('code'))}. "
        f"Load average at start {_load(results['loadavg_start'])}, "
        f"at end {_load(results.get('loadavg_end'))}: other work shared this machine, so "
        "compare ratios within this run, not absolute numbers across runs.",
        "",
        *targets_section(targets),
        *checks_section(results.get("checks", results.get("bulk", {}).get("checks", []))),
        *realtime_section(results.get("realtime", {})),
        *bulk_section(results.get("bulk", {})),
        *memory_section(results.get("memory")),
    ]
    cpus = env.get("cpus", 0)
    if (
        max(results.get("loadavg_start") or [0]) > cpus
        or max(results.get("loadavg_end") or [0]) > cpus
    ):
        lines += [
            "## Caveat",
            "",
            f"The load average exceeded the {cpus} CPUs: other work competed for them. Linux "
            "shares CPU per thread, so a system of many processes (the service) gets a larger "
            "share of a contended machine than a one-process baseline; req/s and MB/s ratios "
            "then flatter the service, CPU per request and MB per CPU-second do not.",
            "",
        ]
    if results.get("profile_categories"):
        lines += [
            "## Profiles",
            "",
            "py-spy on every replica during extra, unmeasured runs; share of on-CPU samples "
            "(top frames: profile.md). On an overloaded machine a thread waiting for a CPU "
            "counts as on CPU, which inflates the native event-loop and core-worker shares.",
            "",
            *(f"- {line}" for line in results["profile_categories"]),
            "",
        ]
    if results.get("notes"):
        lines += ["## Notes", "", *(f"- {note}" for note in results["notes"]), ""]
    return "\n".join(lines)


def _code(code: Mapping[str, Any] | None) -> str:
    if not code:
        return "?"
    changed = code.get("changed", [])
    return f"{code.get('commit')}" + (f" + {len(changed)} changed paths" if changed else "")


def _load(values: Sequence[float] | None) -> str:
    return "–" if not values else " / ".join(f"{v:.2f}" for v in values)


def plot(points: Sequence[Mapping[str, Any]], path: Path) -> bool:
    if not points:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rps_ax, p99_ax, cpu_ax) = plt.subplots(1, 3, figsize=(16, 4.8))
    systems = list(dict.fromkeys(p["system"] for p in points))
    endpoints = list(dict.fromkeys(p["endpoint"] for p in points))
    styles = ["-", "--", ":", "-."]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for s_index, system in enumerate(systems):
        for e_index, endpoint in enumerate(endpoints):
            series = sorted(
                (p for p in points if p["system"] == system and p["endpoint"] == endpoint),
                key=lambda p: p["connections"],
            )
            if not series:
                continue
            conns = [p["connections"] for p in series]
            style = {
                "color": colors[s_index % len(colors)],
                "linestyle": styles[e_index % len(styles)],
                "marker": "o",
                "label": f"{system} {endpoint}",
            }
            rps_ax.plot(conns, [p["rps"] for p in series], **style)
            p99_ax.plot(conns, [p["p99_ms"] or float("nan") for p in series], **style)
            cpu = [cpu_ms_per_request(p) or float("nan") for p in series]
            cpu_ax.plot(conns, cpu, **style)
    for ax, title in (
        (rps_ax, "requests/s (2xx)"),
        (p99_ax, "p99 latency, ms"),
        (cpu_ax, "CPU ms per request (all processes)"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({p["connections"] for p in points}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("connections")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    for ax in (p99_ax, cpu_ax):
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    rps_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_json(results: Mapping[str, Any], path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")


def rerender(folder: Path) -> None:
    from loadtests.bench import profile
    from loadtests.bench.targets import evaluate

    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    if profiles := profile.from_folder(folder):
        results["profile_categories"] = [
            line
            for tag, found in profiles.items()
            for line in profile.category_lines(profile.TITLES[tag], found)
        ]
        (folder / "profile.md").write_text(
            "\n".join(
                profile.markdown(profile.TITLES[tag], found) for tag, found in profiles.items()
            ),
            encoding="utf-8",
        )
        write_json(results, folder / "results.json")
    (folder / "summary.md").write_text(markdown(results, evaluate(results)), encoding="utf-8")
    plot(results.get("realtime", {}).get("points", []), folder / "realtime.png")


if __name__ == "__main__":
    import sys

    rerender(Path(sys.argv[1]))
