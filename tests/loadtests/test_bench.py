"""The benchmark's pure parts: parsing, the corpus, the seed's script, ratios and targets.
No service, no load, no timing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from loadtests.bench import (
    bulk,
    corpus,
    floor,
    loadgen,
    memory,
    procs,
    profile,
    report,
    seed_wordcount,
)
from loadtests.bench.targets import (
    MEMORY_FLAT_RATIO,
    Target,
    evaluate,
    memory_flat_ratio,
    ratio,
    same_summary,
    with_bulk_ratios,
    with_realtime_ratios,
)

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:38000/v1/analyze
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.34ms    5.67ms 210.00ms   91.00%
    Req/Sec     2.60k   300.00     3.10k    70.00%
  Latency Distribution
     50%   11.20ms
     75%   14.00ms
     90%   18.50ms
     99%  850.00us
  26012 requests in 10.01s, 9.87MB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 120
Requests/sec:   2598.60
Transfer/sec:      0.99MB
"""


# --- wrk ---------------------------------------------------------------------------------------


def test_wrk_output_parses_into_counts_and_percentiles() -> None:
    result = loadgen.parse_wrk(WRK_OUTPUT, cpu_s=1.5)
    assert result.tool == "wrk"
    assert result.connections == 32
    assert result.requests == 26012
    assert result.duration_s == pytest.approx(10.01)
    assert result.p50_ms == pytest.approx(11.2)
    assert result.p99_ms == pytest.approx(0.85)  # microseconds are converted
    assert (result.non_2xx, result.socket_errors, result.errors) == (120, 7, 127)
    assert result.rps == pytest.approx((26012 - 120) / 10.01)  # 2xx only
    assert result.cpu_s == 1.5


def test_wrk_output_without_errors_has_none() -> None:
    clean = "\n".join(
        line for line in WRK_OUTPUT.splitlines() if not line.strip().startswith(("Socket", "Non"))
    )
    result = loadgen.parse_wrk(clean)
    assert (result.non_2xx, result.socket_errors) == (0, 0)


@pytest.mark.parametrize(
    ("value", "unit", "ms"),
    [("850.00", "us", 0.85), ("1.5", "ms", 1.5), ("2.00", "s", 2000.0), ("1.00", "m", 60000.0)],
)
def test_wrk_time_units(value: str, unit: str, ms: float) -> None:
    assert loadgen.to_ms(value, unit) == pytest.approx(ms)


def test_wrk_output_without_a_distribution_is_refused() -> None:
    without = WRK_OUTPUT.split("  Latency Distribution")[0] + "  26012 requests in 10.01s\n"
    with pytest.raises(loadgen.LoadError, match="--latency"):
        loadgen.parse_wrk(without)
    with pytest.raises(loadgen.LoadError):
        loadgen.parse_wrk("unable to connect to 127.0.0.1:38000 Connection refused")


def test_no_answer_at_all_has_no_percentiles() -> None:
    output = WRK_OUTPUT.replace("26012 requests", "0 requests")
    result = loadgen.parse_wrk(output)
    assert (result.p50_ms, result.p99_ms, result.rps) == (None, None, 0.0)


def test_the_wrk_script_posts_the_body_verbatim_even_with_closing_brackets() -> None:
    body = '{"text": "物流 ]] ]=] 👍"}'.encode()
    script = loadgen.wrk_script(body)
    assert 'wrk.method = "POST"' in script
    assert 'wrk.headers["Content-Type"] = "application/json"' in script
    assert "wrk.body = [==[" + body.decode() + "]==]" in script


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert loadgen.percentile(values, 50) == 50.0
    assert loadgen.percentile(values, 99) == 99.0
    assert loadgen.percentile([7.0], 99) == 7.0


def test_the_review_body_is_short_mixed_text_with_an_emoji_and_a_tag() -> None:
    assert 100 <= len(loadgen.REVIEW) <= 200
    assert "<b>" in loadgen.REVIEW and "👍" in loadgen.REVIEW and "物流" in loadgen.REVIEW


# --- corpus ------------------------------------------------------------------------------------

SMALL = corpus.CorpusSpec(files=6, min_bytes=5_000, max_bytes=12_000, seed=7)


def test_the_corpus_is_deterministic_and_the_seed_matters(tmp_path: Path) -> None:
    first = corpus.write(SMALL, tmp_path / "a")
    second = corpus.write(SMALL, tmp_path / "b")
    assert [p.read_bytes() for p in first.paths] == [p.read_bytes() for p in second.paths]
    other = corpus.write(corpus.CorpusSpec(files=6, min_bytes=5_000, max_bytes=12_000, seed=8),
                         tmp_path / "c")  # fmt: skip
    assert [p.read_bytes() for p in other.paths] != [p.read_bytes() for p in first.paths]


def test_corpus_files_are_seed_shaped_and_within_bounds(tmp_path: Path) -> None:
    spec = corpus.CorpusSpec(files=12, seed=3)  # the default 50-500 KB bounds
    made = corpus.write(spec, tmp_path)
    sizes = [p.stat().st_size for p in made.paths]
    assert len(sizes) == 12 and sum(sizes) == made.total_bytes
    assert all(spec.min_bytes <= size <= spec.max_bytes for size in sizes)
    assert max(sizes) - min(sizes) > 100_000  # spread over the range
    texts = [json.loads(p.read_text(encoding="utf-8"))["text"] for p in made.paths]
    assert all(set(json.loads(p.read_text(encoding="utf-8"))) == {"text"} for p in made.paths)
    joined = "".join(texts)
    for sign in ("<b>", "http", "👍", "\n"):
        assert sign in joined
    assert any("\u4e00" <= ch <= "\u9fff" for ch in joined)
    assert made.pattern.endswith("*.json")


def test_a_corpus_spec_refuses_impossible_bounds() -> None:
    with pytest.raises(ValueError):
        corpus.CorpusSpec(files=0)
    with pytest.raises(ValueError):
        corpus.CorpusSpec(min_bytes=10_000, max_bytes=10_100)


# --- the seed's script -------------------------------------------------------------------------


def _write_json(path: Path, text: str) -> None:
    path.write_text(json.dumps({"text": text}, ensure_ascii=False), encoding="utf-8")


def test_the_seed_script_matches_a_hand_computed_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_json(tmp_path / "a.json", "Good  good\nGOOD good!\n")
    _write_json(tmp_path / "b.json", " 物流很快 good 👍 good ")
    first = seed_wordcount.process_file(str(tmp_path / "a.json"))
    assert first["char_count"] == len("Good  good GOOD good!") == 21
    assert first["word_counts"] == {"Good": 1, "good": 1, "GOOD": 1, "good!": 1}

    assert seed_wordcount.main([str(tmp_path / "*.json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["files"] == 2
    assert printed["total_chars"] == 21 + 16
    assert printed["total_words"] == 8
    assert printed["unique_words"] == 6
    # ties keep first occurrence, file by file in sorted order
    assert printed["top_words"] == [
        ["good", 3], ["Good", 1], ["GOOD", 1], ["good!", 1], ["物流很快", 1], ["👍", 1],
    ]  # fmt: skip


def test_the_core_pipeline_in_seed_mode_agrees_with_the_seed_script(tmp_path: Path) -> None:
    from loadtests.bench import core_pipeline

    made = corpus.write(SMALL, tmp_path)
    paths = [str(p) for p in made.paths]
    seed = seed_wordcount.aggregate(seed_wordcount.process_file(p) for p in paths)
    result, written = core_pipeline.run(paths, core_pipeline.MODES["seed"])
    summary = result.to_dict()
    assert same_summary(seed, summary)
    assert written > 0  # every record's row was encoded, as a bulk path writes it
    assert summary["total_words"] == seed["total_words"]


# --- what `cleanserve batch` prints and writes -------------------------------------------------

BATCH_TABLE = """\
                    cleanserve batch: 10 file(s)
┌──────────────┬────────────────────────────────────────────────────────────┐
│ records      │ 10                                                         │
│ ok           │ 10                                                         │
│ failed       │ 0                                                          │
│ total_chars  │ 1,792,285                                                  │
│ total_words  │ 241,154                                                    │
│ unique_words │ 17,832                                                     │
│ top_words    │ the (10,968), a (6,863), :) (3,904), (x) (3), 很好 (12)      │
└──────────────┴────────────────────────────────────────────────────────────┘
"""


def test_the_batch_table_parses_into_a_summary() -> None:
    assert bulk.parse_batch_table(BATCH_TABLE) == {
        "records": 10,
        "ok": 10,
        "failed": 0,
        "total_chars": 1_792_285,
        "total_words": 241_154,
        "unique_words": 17_832,
        "top_words": [["the", 10968], ["a", 6863], [":)", 3904], ["(x)", 3], ["很好", 12]],
    }


def test_per_record_rows_add_up_to_a_summary(tmp_path: Path) -> None:
    rows = tmp_path / "out.jsonl"
    rows.write_bytes(
        b"".join(
            orjson.dumps(row) + b"\n"
            for row in (
                {
                    "text": "a b a",
                    "char_count": 5,
                    "word_count": 3,
                    "word_counts": {"a": 2, "b": 1},
                },
                {"error": "no text field"},
                {"text": "b", "char_count": 1, "word_count": 1, "word_counts": {"b": 1}},
            )
        )
    )
    summary = bulk.summary_from_rows(rows).to_dict()
    assert summary["records"] == 3 and summary["failed"] == 1
    assert summary["total_chars"] == 6
    assert summary["top_words"] == [["a", 2], ["b", 2]]


def _run(name: str, seconds: float, mode: str = "seed") -> bulk.BulkRun:
    return bulk.BulkRun(name, name, mode, seconds, seconds, 10_000_000, 1, "process peak")


def test_the_median_round_is_kept_with_every_round() -> None:
    runs = [_run("x", 3.0), _run("x", 1.0), _run("x", 2.0), _run("x", 9.0)]
    median = bulk.median_run(runs)
    assert median.seconds == 2.0
    assert median.extra["rounds_s"] == [3.0, 1.0, 2.0, 9.0]
    assert _run("x", 4.0).mb_per_s == pytest.approx(2.5)
    assert _run("x", 4.0).mb_per_cpu_s is None  # not measured
    with_cpu = bulk.BulkRun("x", "x", "seed", 4.0, 4.0, 10_000_000, 1, "process peak", cpu_s=2.0)
    assert with_cpu.to_dict()["mb_per_cpu_s"] == pytest.approx(5.0)


# --- ratios and targets ------------------------------------------------------------------------


def _point(system: str, rps: float, p99: float, endpoint: str = "/v1/analyze") -> dict[str, Any]:
    return {"system": system, "endpoint": endpoint, "connections": 32, "rps": rps, "p99_ms": p99}


def _bulk(name: str, mb_per_s: float, mode: str = "seed") -> dict[str, Any]:
    return {"name": name, "mode": mode, "mb_per_s": mb_per_s}


def test_ratio_is_none_without_a_usable_baseline() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(3.0, 0.0) is None
    assert ratio(None, 2.0) is None
    assert ratio(3.0, None) is None


def test_realtime_ratios_are_against_plain_uvicorn_at_the_same_point() -> None:
    points = with_realtime_ratios(
        [
            _point("uvicorn-1", 1000, 20),
            _point("service", 600, 40),
            _point("uvicorn-1", 2000, 10, endpoint="/v1/clean"),
            _point("service", 500, 5, endpoint="/v1/clean"),
        ]
    )
    by = {(p["system"], p["endpoint"]): p for p in points}
    assert by["service", "/v1/analyze"]["rps_x"] == pytest.approx(0.6)
    assert by["service", "/v1/analyze"]["p99_x"] == pytest.approx(2.0)
    assert by["service", "/v1/clean"]["rps_x"] == pytest.approx(0.25)
    assert by["uvicorn-1", "/v1/clean"]["rps_x"] == 1.0


def test_bulk_ratios_compare_with_each_baseline_and_the_core_of_the_same_mode() -> None:
    runs = with_bulk_ratios(
        [
            _bulk("seed-single", 30),
            _bulk("seed-ray", 10),
            _bulk("core-seed", 60),
            _bulk("core-standard", 2, "standard"),
            _bulk("batch-seed", 45),
            _bulk("batch-standard", 3, "standard"),
        ]
    )
    by = {r["name"]: r for r in runs}
    assert by["batch-seed"]["x_seed_single"] == pytest.approx(1.5)
    assert by["batch-seed"]["x_seed_ray"] == pytest.approx(4.5)
    assert by["batch-seed"]["x_core"] == pytest.approx(0.75)
    assert by["batch-standard"]["x_core"] == pytest.approx(1.5)
    assert by["seed-single"]["x_seed_single"] is None  # not against itself


def test_targets_pass_and_miss_on_their_thresholds() -> None:
    results = {
        "realtime": {"points": [_point("uvicorn-1", 1000, 20), _point("service", 500, 50.0)]},
        "bulk": {
            "runs": [
                _bulk("seed-single", 30),
                _bulk("seed-ray", 10),
                _bulk("core-standard", 2, "standard"),
                _bulk("batch-seed", 20),
                {**_bulk("batch-standard", 3, "standard"), "extra": {"ingress_cpu_share": 0.15}},
                {**_bulk("batch-seed", 20), "name": "batch-x", "extra": {"ingress_cpu_share": 0.1}},
            ]
        },
        "memory": {
            "uploads": [{"bytes": 10**9, "peak_bytes": 140}, {"bytes": 10**8, "peak_bytes": 100}]
        },
    }
    status = {t.key: (t.status, t.measured) for t in evaluate(results)}
    assert status["analyze_rps_32"] == ("PASS", 0.5)  # the threshold itself passes
    assert status["analyze_p99_32"] == ("PASS", 50.0)
    assert status["batch_seed_vs_seed_ray"] == ("PASS", 2.0)
    assert status["batch_seed_vs_seed_single"][0] == "MISS"
    assert status["batch_seed_summary_vs_seed_single"][0] == "n/a"
    assert status["batch_ingress_cpu_share"] == ("PASS", 0.15)
    assert status["batch_standard_vs_core"] == ("PASS", 1.5)
    assert status["memory_flat"] == ("MISS", 1.4)


def test_the_ingress_share_is_of_the_service_cpu_during_the_upload() -> None:
    assert bulk.ingress_cpu_share({"Ingress": 0.3, "WordCounter": 1.5, "raylet": 0.2}) == 0.15
    assert bulk.ingress_cpu_share({}) is None


def test_targets_without_measurements_are_not_applicable() -> None:
    targets = evaluate({})
    assert {t.status for t in targets} == {"n/a"}
    assert Target("p99", "", 51.0, 50.0, higher_is_better=False).status == "MISS"


def test_memory_is_flat_by_largest_over_smallest_upload() -> None:
    assert memory_flat_ratio(None) is None
    assert memory_flat_ratio({"uploads": [{"bytes": 1, "peak_bytes": 5}]}) is None
    uploads = [{"bytes": 10**9, "peak_bytes": 120}, {"bytes": 10**8, "peak_bytes": 100}]
    assert memory_flat_ratio({"uploads": uploads}) == pytest.approx(1.2)
    assert 1.2 < MEMORY_FLAT_RATIO


def test_summaries_compare_on_chars_unique_words_and_ordered_top_words() -> None:
    seed = {"total_chars": 5, "unique_words": 2, "top_words": [["a", 2], ["b", 1]], "files": 2}
    assert same_summary(
        seed, {"total_chars": 5, "unique_words": 2, "top_words": [("a", 2), ("b", 1)]}
    )
    assert not same_summary(
        seed, {"total_chars": 5, "unique_words": 2, "top_words": [["b", 1], ["a", 2]]}
    )
    assert not same_summary(seed, None)


# --- memory uploads ----------------------------------------------------------------------------


def test_sizes_parse_in_decimal_units() -> None:
    assert memory.parse_sizes("100MB,1GB") == [100_000_000, 1_000_000_000]
    assert memory.parse_sizes("512 kb, 2") == [512_000, 2]
    with pytest.raises(ValueError):
        memory.parse_sizes("lots")


def test_upload_headers_parse() -> None:
    assert memory.parse_headers(["x-request-disconnect-disabled: ?1", "A:b"]) == {
        "x-request-disconnect-disabled": "?1",
        "A": "b",
    }
    with pytest.raises(ValueError):
        memory.parse_headers(["no colon"])


def test_the_ndjson_body_is_generated_to_size_in_pieces() -> None:
    pool = memory.record_pool(seed=1, size=50)
    sent = memory.Sent()

    async def collect() -> list[bytes]:
        return [piece async for piece in memory.ndjson_body(3_000_000, pool, sent)]

    pieces = asyncio.run(collect())
    body = b"".join(pieces)
    assert len(body) == sent.bytes >= 3_000_000
    assert max(map(len, pieces)) < memory.PIECE_BYTES + 10_000  # never the whole body at once
    lines = body.splitlines()
    assert len(lines) == sent.records
    records = [orjson.loads(line) for line in (lines[0], lines[50], lines[-1])]
    assert records[0]["id"] != records[1]["id"] and records[0]["text"] == records[1]["text"]


# --- profiles and the report -------------------------------------------------------------------


def test_py_spy_raw_stacks_summarize_into_frames_and_categories(tmp_path: Path) -> None:
    raw = tmp_path / "analyze-WordCounter-1.txt"
    raw.write_text(
        "Thread.run (threading.py:982) 6\n"
        "main (x.py:1);Worker.main_loop (ray/_private/worker.py:1069) 2\n"
        "Thread.run (threading.py:982);clean (serve_app/core/cleaning.py:79);"
        "is_bad (ftfy/badness.py:420) 2\n",
        encoding="utf-8",
    )
    got = profile.summarize(raw, replica="WordCounter", pid=1)
    assert got.samples == 10
    assert got.self_top[0] == ("Thread.run (threading.py:982)", 0.6)
    assert dict(got.total_top)["Thread.run (threading.py:982)"] == pytest.approx(0.8)
    categories = dict(got.categories)
    assert categories["app: serve_app and the libraries it calls"] == pytest.approx(0.2)
    assert categories["native: Ray core worker (main_loop)"] == pytest.approx(0.2)
    assert "WordCounter" in profile.markdown("t", [got])


def test_framework_code_under_the_apps_middleware_is_not_the_apps_work() -> None:
    middleware = "BearerAuth.__call__ (serve_app/service/guards.py:79)"
    assert profile.category([middleware, "Router.__call__ (starlette/routing.py:683)"]) == (
        "HTTP: uvicorn / Starlette / FastAPI"
    )
    assert profile.category([middleware, "count (serve_app/core/counting.py:1)"]) == profile.APP
    assert profile.category(["_count (serve_app/core/counting.py:1)", "Counter.update (x)"]) == (
        profile.APP
    )


def test_the_report_renders_tables_and_the_plot(tmp_path: Path) -> None:
    points = with_realtime_ratios(
        [
            {
                **_point("uvicorn-1", 1000, 20),
                "p50_ms": 5.0,
                "errors": 0,
                "cores": {"uvicorn": 1.0},
            },
            {**_point("service", 500, 40), "p50_ms": 9.0, "errors": 3, "cores": {"Ingress": 0.5}},
        ]
    )
    results = {
        "command": "python -m loadtests.bench --quick",
        "started": "2026-01-01 00:00",
        "environment": {"cpus": 2, "memory_gib": 24.0, "python": "3.11", "ray": "2.60.0"},
        "loadavg_start": (1.0, 1.0, 1.0),
        "loadavg_end": (2.0, 1.0, 1.0),
        "realtime": {"points": points, "duration_s": 3, "warmup_s": 1, "tool": "wrk"},
        "bulk": {"runs": []},
        "checks": [{"ok": True, "what": "same"}, {"ok": False, "what": "differs"}],
    }
    text = report.markdown(results, evaluate(results))
    assert "| /v1/analyze | 32 | service | 500 | 0.50x |" in text
    assert "| /v1/analyze p99 at 32 connections | 40.0 ms | ≤ 50 ms | PASS |" in text
    assert "- ✔ same\n- ✘ differs" in text
    assert "## Caveat" not in text  # load average 2 on 2 CPUs
    busy = report.markdown({**results, "loadavg_end": (9.0, 5.0, 3.0)}, evaluate(results))
    assert "## Caveat" in busy
    assert report.plot(points, tmp_path / "realtime.png")
    assert (tmp_path / "realtime.png").stat().st_size > 10_000


def test_the_serve_floor_runs_beside_the_service_with_its_config_untouched() -> None:
    import yaml
    from ray.serve.schema import ServeDeploySchema

    service = yaml.safe_load(procs.SERVE_CONFIG.read_text(encoding="utf-8"))
    config = floor.config_with_floor(service)
    ServeDeploySchema.model_validate(config)  # what `cleanserve up --config` deploys
    apps = {app["name"]: app for app in config["applications"]}
    assert apps["cleanserve"] == service["applications"][0]
    assert (
        apps["floor"]["route_prefix"]
        == floor.ROUTE_PREFIX
        != service["applications"][0]["route_prefix"]
    )
    assert {k: v for k, v in config.items() if k != "applications"} == {
        k: v for k, v in service.items() if k != "applications"
    }


def test_the_summary_only_batch_is_the_seed_mode_command_without_record_lines(
    tmp_path: Path,
) -> None:
    data = corpus.Corpus(tmp_path, (), 0)
    full = bulk.batch_command(data, "http://x", tmp_path / "o", "seed")
    summary = bulk.batch_command(data, "http://x", tmp_path / "o", "seed", summary_only=True)
    assert summary == [*full, "--summary-only"]
    assert json.loads(full[full.index("--options") + 1]) == bulk.SEED_OPTIONS
