import math
from pathlib import Path

import pytest

from serve_app.ops.loadtest import report
from serve_app.ops.loadtest.report import EndpointStats, Thresholds

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)


def stats_csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "locust_stats.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def endpoint(
    name: str, *, requests: int = 100, failures: int = 0, p95: float = 50, p99: float = 80
) -> EndpointStats:
    return EndpointStats(name, requests, failures, p50_ms=10, p95_ms=p95, p99_ms=p99, rps=10.0)


def test_read_stats_reads_locusts_csv(tmp_path: Path) -> None:
    path = stats_csv(
        tmp_path,
        "POST,/v1/analyze,120,2,18,40.1,7.2,344.0,625.3,25.8,0.1,18,30,45,57,100,140,220,300,340,340,340",
        "POST,/v1/count,0,0,0,0,0,0,0,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A",
        ",Aggregated,120,2,18,40.1,7.2,344.0,625.3,25.8,0.1,18,30,45,57,100,140,220,300,340,340,340",
    )
    analyze, count, total = report.read_stats(path)
    assert (analyze.name, analyze.requests, analyze.failures) == ("/v1/analyze", 120, 2)
    assert (analyze.p50_ms, analyze.p95_ms, analyze.p99_ms, analyze.rps) == (18, 140, 300, 25.8)
    assert analyze.fail_ratio == pytest.approx(2 / 120)
    assert math.isnan(count.p95_ms) and count.fail_ratio == 0.0
    assert total.name == report.AGGREGATED


def test_a_run_within_every_limit_passes() -> None:
    limits = Thresholds(p95_ms={"*": 100}, p99_ms={"*": 200})
    assert report.violations([endpoint("/v1/clean"), endpoint(report.AGGREGATED)], limits) == []


def test_any_failure_misses_a_zero_failure_ratio() -> None:
    found = report.violations([endpoint("/v1/clean", failures=1)], Thresholds(max_fail_ratio=0.0))
    assert found == ["/v1/clean: 1 of 100 requests failed (1.00% > 0.00%)"]
    assert (
        report.violations([endpoint("/v1/clean", failures=1)], Thresholds(max_fail_ratio=0.01))
        == []
    )


def test_a_named_limit_beats_the_default() -> None:
    limits = Thresholds(p95_ms={"*": 100, "/v1/batch": 5000})
    rows = [endpoint("/v1/clean", p95=150), endpoint("/v1/batch", p95=4000)]
    assert report.violations(rows, limits) == ["/v1/clean: p95 150 ms > 100 ms"]


def test_p99_is_checked_and_unnamed_endpoints_without_default_are_free() -> None:
    limits = Thresholds(p99_ms={"/v1/count": 50})
    rows = [endpoint("/v1/count", p99=80), endpoint("/v1/clean", p99=10_000)]
    assert report.violations(rows, limits) == ["/v1/count: p99 80 ms > 50 ms"]


def test_latency_is_never_judged_on_aggregated_or_on_endpoints_without_requests() -> None:
    limits = Thresholds(p95_ms={"*": 1}, p99_ms={"*": 1})
    rows = [endpoint(report.AGGREGATED, p95=900, p99=900), endpoint("/v1/count", requests=0)]
    assert report.violations(rows, limits) == []


def test_aggregated_failures_count_too() -> None:
    found = report.violations([endpoint(report.AGGREGATED, failures=3)], Thresholds())
    assert len(found) == 1 and found[0].startswith("Aggregated:")


def test_parse_limit() -> None:
    assert report.parse_limit("/v1/analyze=250") == ("/v1/analyze", 250.0)
    assert report.parse_limit("*=1e3") == ("*", 1000.0)
    assert report.parse_limit("/v1/batch?include=none=10") == ("/v1/batch?include=none", 10.0)
    for bad in ("/v1/analyze", "=5", "/v1/x=fast", "/v1/x=0"):
        with pytest.raises(ValueError):
            report.parse_limit(bad)


def test_overrides_replace_single_entries() -> None:
    base = Thresholds(max_fail_ratio=0.0, p95_ms={"*": 100, "/v1/batch": 5000})
    merged = report.with_overrides(base, max_fail_ratio=0.01, p95=[("/v1/batch", 9000)])
    assert merged.max_fail_ratio == 0.01
    assert merged.p95_ms == {"*": 100, "/v1/batch": 9000}
    assert report.with_overrides(base).max_fail_ratio == 0.0


def test_the_shipped_thresholds_load() -> None:
    limits = report.load_thresholds(Path(report.__file__).with_name("thresholds.toml"))
    assert limits.max_fail_ratio == 0.0
    assert "*" in limits.p95_ms and "*" in limits.p99_ms
    assert limits.limit(limits.p95_ms, "/v1/batch") > limits.limit(limits.p95_ms, "/v1/clean")  # type: ignore[operator]


def test_summary_rows_format_numbers_and_missing_values() -> None:
    rows = report.summary_rows(
        [
            endpoint("/v1/clean", requests=1234, failures=2),
            EndpointStats("/v1/count", 0, 0, *[math.nan] * 4),
        ]
    )
    assert rows[0] == ["/v1/clean", "1,234", "2 (0.2%)", "10", "50", "80", "10.0"]
    assert rows[1] == ["/v1/count", "0", "0", "-", "-", "-", "-"]
    assert len(report.SUMMARY_HEADER) == len(rows[0])


def test_read_history_turns_na_into_nan(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(
        "Timestamp,User Count,Type,Name,Requests/s,Failures/s,95%\n"
        "100,0,,Aggregated,0.0,0.0,N/A\n"
        "101,4,POST,/v1/clean,3.5,0.0,20\n",
        encoding="utf-8",
    )
    first, second = report.read_history(path)
    assert first["Name"] == "Aggregated" and math.isnan(first["95%"])
    assert second["Timestamp"] == 101 and second["95%"] == 20 and second["Type"] == "POST"


def test_build_summary_collects_figures_verdict_and_replica_changes(tmp_path: Path) -> None:
    history = [
        {"Timestamp": 100.0, "Name": report.AGGREGATED, "User Count": 0.0},
        {"Timestamp": 101.0, "Name": report.AGGREGATED, "User Count": 8.0},
    ]
    samples = [
        {"timestamp": 99.0, "deployment": "TextCleaner", "running": 1},
        {"timestamp": 130.0, "deployment": "TextCleaner", "running": 2},
    ]
    summary = report.build_summary(
        url="http://127.0.0.1:1",
        shape="step",
        stats=[EndpointStats("/v1/count", 0, 0, *[math.nan] * 4)],
        history=history,
        samples=samples,
        replica_problem=None,
        thresholds=Thresholds(p95_ms={"*": 100}),
        violations=["x"],
        locust_rc=0,
        files={"chart": tmp_path / "loadtest.png"},
    )
    assert summary["peak_users"] == 8
    assert summary["endpoints"][0]["p95_ms"] is None  # NaN is not JSON
    assert summary["replicas"]["max"] == {"TextCleaner": 2}
    assert summary["replicas"]["events"] == [
        {"t_s": 30.0, "deployment": "TextCleaner", "from": 1, "to": 2}
    ]
    assert summary["violations"] == ["x"] and summary["thresholds"]["p95_ms"] == {"*": 100}
