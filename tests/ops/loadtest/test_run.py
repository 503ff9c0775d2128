import argparse
from pathlib import Path

import pytest

from serve_app.ops.loadtest import plot, profiles, report, run


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("30s", 30), ("3m", 180), ("1h20m", 4800), ("1h30m10s", 5410)]
)
def test_parse_timespan(text: str, seconds: float) -> None:
    assert run.parse_timespan(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "3x"])
def test_parse_timespan_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        run.parse_timespan(text)


def test_conf_value_reads_the_shipped_locust_conf() -> None:
    assert run.conf_value(run.LOCUST_CONF, "host") == "http://127.0.0.1:8000"
    assert run.conf_value(run.LOCUST_CONF, "headless") == "false"
    assert run.conf_value(run.LOCUST_CONF, "no-such-key") is None


def test_expected_duration() -> None:
    assert run.expected_duration_s(parse("-t", "45s")) == 45
    assert run.expected_duration_s(parse()) == run.parse_timespan(
        run.conf_value(run.LOCUST_CONF, "run-time") or ""
    )
    assert run.expected_duration_s(parse("--shape", "step", "-t", "5s")) == profiles.duration_s(
        profiles.STEP
    )


def test_the_locust_command_is_headless_with_reports(tmp_path: Path) -> None:
    cmd = run.locust_command(
        parse("-u", "8", "-t", "30s"), url="http://127.0.0.1:1", results=tmp_path
    )
    assert cmd[1:3] == ["-m", "locust"]
    for flag in ("--headless", "--csv-full-history"):
        assert flag in cmd
    assert cmd[cmd.index("--csv") + 1] == str(tmp_path / run.CSV_PREFIX)
    assert cmd[cmd.index("--html") + 1] == str(tmp_path / "report.html")
    assert cmd[cmd.index("--host") + 1] == "http://127.0.0.1:1"
    assert cmd[cmd.index("--users") + 1] == "8" and cmd[cmd.index("--run-time") + 1] == "30s"


def test_step_and_spike_set_their_own_users_and_time(tmp_path: Path) -> None:
    cmd = run.locust_command(
        parse("--shape", "step", "-u", "8", "-t", "9s"), url="u", results=tmp_path
    )
    assert cmd[cmd.index("--shape") + 1] == "step"
    assert "--users" not in cmd and "--run-time" not in cmd


def test_arguments_after_a_double_dash_go_to_locust(tmp_path: Path) -> None:
    cmd = run.locust_command(parse("--", "--bulk-mb", "1", "ReviewUser"), url="u", results=tmp_path)
    assert cmd[-3:] == ["--bulk-mb", "1", "ReviewUser"]


def test_scaling_events_are_the_changes_per_deployment() -> None:
    samples = [
        {"timestamp": 100.0, "deployment": "A", "running": 1},
        {"timestamp": 100.0, "deployment": "B", "running": 1},
        {"timestamp": 102.0, "deployment": "A", "running": 2},
        {"timestamp": 102.0, "deployment": "B", "running": 1},
        {"timestamp": 140.5, "deployment": "A", "running": 1},
    ]
    assert report.scaling_events(samples, t0=100.0) == [
        {"t_s": 2.0, "deployment": "A", "from": 1, "to": 2},
        {"t_s": 40.5, "deployment": "A", "from": 2, "to": 1},
    ]


def history() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for t in range(10):
        for name in ("Aggregated", "/v1/clean"):
            rows.append(
                {"Timestamp": 1000.0 + t, "Name": name, "Type": "", "User Count": 4.0,
                 "Total Request Count": 10.0 * t, "Total Failure Count": 0.0, "95%": 20.0 + t}
            )  # fmt: skip
    return rows


def test_the_chart_is_drawn_with_and_without_replicas(tmp_path: Path) -> None:
    samples = [
        {
            "timestamp": 1000.0 + t,
            "deployment": name,
            "running": 1 + (t > 4),
            "target": 2,
            "starting": 0,
        }
        for t in range(10)
        for name in ("TextCleaner", "WordCounter")
    ]
    for out, replicas in ((tmp_path / "with.png", samples), (tmp_path / "without.png", None)):
        plot.draw(history(), replicas, out, title="test")
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rates_come_from_the_cumulative_counts_over_a_trailing_window() -> None:
    rows = [
        {"Timestamp": 100.0 + t, "Name": "Aggregated", "Total Request Count": 10.0 * t}
        for t in range(8)
    ] + [{"Timestamp": 101.0, "Name": "/v1/clean", "Total Request Count": 999.0}]
    xs, ys = plot.rate(rows, "Total Request Count", t0=100.0, window_s=5)
    assert xs == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert ys == [10.0] * 7
