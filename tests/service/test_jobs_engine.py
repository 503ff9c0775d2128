"""The job's work unit without Ray: a group of files in, a shard and a partial summary out."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from serve_app.core.pipeline import BulkOptions
from serve_app.core.records.base import ParseOptions
from serve_app.service import job_tasks, jobs
from serve_app.service.storage import InputFile, Storage, StorageConfig


def test_files_are_grouped_by_size_in_order() -> None:
    files = [InputFile(f"/d/{i}", size) for i, size in enumerate([5, 5, 5, 20, 1, 1])]
    groups = jobs.plan_groups(files, target_bytes=10)
    assert [[f.uri for f in group] for group in groups] == [
        ["/d/0", "/d/1"],
        ["/d/2"],
        ["/d/3"],
        ["/d/4", "/d/5"],
    ]
    assert jobs.plan_groups([], 10) == []


def make_spec(tmp: Path, **overrides: object) -> tuple[Storage, jobs.JobSpec]:
    storage = Storage(StorageConfig(roots=(str(tmp),)))
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    spec = jobs.JobSpec(id="t", files=(), output=str(out), storage=storage.config)
    return storage, jobs.dataclasses.replace(spec, **overrides)  # type: ignore[arg-type]


def inputs(tmp: Path) -> list[InputFile]:
    (tmp / "a.jsonl").write_bytes(b'{"id": 1, "text": "Hello  hello"}\n{bad json\n{"text": 5}\n')
    (tmp / "b.json").write_bytes(orjson.dumps([{"id": "x", "text": "物流很快"}]))
    (tmp / "c.csv.gz").write_bytes(gzip.compress(b"text,id\nfast fast,7\n"))
    (tmp / "d.json.gz").write_bytes(b"not gzip at all")
    return [
        InputFile(str(tmp / n), (tmp / n).stat().st_size)
        for n in ("a.jsonl", "b.json", "c.csv.gz", "d.json.gz")
    ]


def test_a_group_writes_one_shard_with_every_record_and_error_rows(tmp_path: Path) -> None:
    storage, spec = make_spec(tmp_path)
    files = inputs(tmp_path)
    result = jobs.process_group(storage, spec, 3, files)
    assert result.shard == "part-00003.ndjson"
    rows = [
        orjson.loads(line) for line in (tmp_path / "out" / result.shard).read_bytes().splitlines()
    ]
    assert [(r["source"].rsplit("/", 1)[1], r["index"], "error" in r) for r in rows] == [
        ("a.jsonl", 0, False),
        ("a.jsonl", 1, True),
        ("a.jsonl", 2, True),
        ("b.json", 0, False),
        ("c.csv.gz", 0, False),
        ("d.json.gz", 0, True),
    ]
    assert rows[0]["word_counts"] == {"hello": 2}
    assert rows[3]["id"] == "x" and rows[4]["id"] == "7"
    assert "gzip" in rows[5]["error"]
    assert (result.records, result.failed, result.files) == (6, 3, 4)
    assert result.bytes == sum(f.size for f in files)
    assert result.summary.records == 6 and result.summary.ok == 3
    assert [p.name for p in (tmp_path / "out").iterdir()] == [result.shard]


def test_a_group_run_again_replaces_its_shard(tmp_path: Path) -> None:
    storage, spec = make_spec(tmp_path)
    files = inputs(tmp_path)
    first = jobs.process_group(storage, spec, 0, files)
    before = (tmp_path / "out" / first.shard).read_bytes()
    again = jobs.process_group(storage, spec, 0, files)
    assert [p.name for p in (tmp_path / "out").iterdir()] == [again.shard]
    assert (tmp_path / "out" / again.shard).read_bytes() == before


def test_summary_only_writes_only_error_rows(tmp_path: Path) -> None:
    storage, spec = make_spec(tmp_path, options=BulkOptions(include=frozenset()))
    (tmp_path / "ok.ndjson").write_bytes(b'{"text": "a b"}\n')
    clean = jobs.process_group(storage, spec, 0, [InputFile(str(tmp_path / "ok.ndjson"), 16)])
    assert clean.shard == "" and clean.summary.total_words == 2
    assert list((tmp_path / "out").iterdir()) == []


def test_parquet_in_and_out(tmp_path: Path) -> None:
    import pyarrow as pa

    pq.write_table(
        pa.table({"body": ["great value", None], "sku": [10, 11]}), tmp_path / "in.parquet"
    )
    storage, spec = make_spec(
        tmp_path,
        output_format="parquet",
        parse=ParseOptions(text_field="body", id_field="sku"),
        options=BulkOptions(include=frozenset({"word_counts", "char_count"})),
    )
    size = (tmp_path / "in.parquet").stat().st_size
    result = jobs.process_group(storage, spec, 1, [InputFile(str(tmp_path / "in.parquet"), size)])
    table = pq.read_table(tmp_path / "out" / "part-00001.parquet")
    assert table.column_names == ["index", "source", "id", "char_count", "word_counts", "error"]
    rows = table.to_pylist()
    assert rows[0]["id"] == "10" and rows[0]["word_counts"] == [("great", 1), ("value", 1)]
    assert rows[1]["error"] and rows[1]["index"] == 1
    assert (result.records, result.failed) == (2, 1)


@pytest.mark.parametrize("kind", ["ndjson", "csv"])
def test_a_forced_format_ignores_the_extension(tmp_path: Path, kind: str) -> None:
    data = b'{"text": "a"}\n' if kind == "ndjson" else b"text\na\n"
    (tmp_path / "data.txt").write_bytes(data)
    storage, spec = make_spec(tmp_path, format=kind)
    result = jobs.process_group(
        storage, spec, 0, [InputFile(str(tmp_path / "data.txt"), len(data))]
    )
    assert (result.records, result.failed) == (1, 0)


def test_a_group_carries_the_review_analytics(tmp_path: Path) -> None:
    from serve_app.core.analysis.dedup import DedupOptions
    from serve_app.core.analysis.review import AnalysisOptions

    options = BulkOptions(
        analysis=AnalysisOptions(language=True, sentiment=True),
        dedup=DedupOptions(boilerplate=True),
    )
    storage, spec = make_spec(tmp_path, options=options)
    (tmp_path / "r.jsonl").write_bytes(
        b'{"text": "\\u8d28\\u91cf\\u5f88\\u597d"}\n{"text": "Great value, would buy again"}\n'
        b'{"text": "\\u9ed8\\u8ba4\\u597d\\u8bc4"}\n'
    )
    files = [InputFile(str(tmp_path / "r.jsonl"), (tmp_path / "r.jsonl").stat().st_size)]
    result = jobs.process_group(storage, spec, 0, files)
    rows = [
        orjson.loads(line) for line in (tmp_path / "out" / result.shard).read_bytes().splitlines()
    ]
    assert [r["language"] for r in rows] == ["zh", "en", "zh"]
    assert [r.get("boilerplate", False) for r in rows] == [False, False, True]
    summary = result.summary.to_dict()
    assert summary["languages"] == {"zh": 2, "en": 1} and summary["boilerplate"] == 1
    assert sum(summary["sentiment"]["labels"].values()) == 3


# -- merging partial summaries ------------------------------------------------------------


def test_merging_ranges_equals_one_sequential_pass() -> None:
    """Summary.merge is associative, first-occurrence order included."""
    from serve_app.core.summary import Summary

    parts = []
    for words in (["b", "a"], ["c", "a"], ["d", "b"], ["e", "c"], ["a", "f"]):
        part = Summary()
        part.add_words(char_count=3, words=words)
        parts.append(part)
    sequential = Summary()
    for part in parts:
        sequential.merge(Summary.from_state(part.to_state()))
    left = Summary().merge(parts[0]).merge(parts[1])
    right = Summary().merge(parts[2]).merge(parts[3]).merge(parts[4])
    ranges = Summary().merge(left).merge(right)
    assert ranges.to_state() == sequential.to_state()
    assert list(ranges.word_counts) == list(sequential.word_counts)
    assert ranges.top_words(6) == sequential.top_words(6)


# -- the ray-tasks engine's summary: split by word in each group, each part reduced apart ------


def test_the_parts_reduced_apart_give_the_summary_of_one_pass(tmp_path: Path) -> None:
    from serve_app.core import summary_parts
    from serve_app.core.summary import Summary

    texts = [" ".join(f"w{(i * 7 + k) % 50}" for k in range(i % 9 + 1)) for i in range(60)]
    for n in range(3):
        lines = (orjson.dumps({"text": text}) for text in texts[n * 20 : (n + 1) * 20])
        (tmp_path / f"{n}.jsonl").write_bytes(b"\n".join(lines))
    files = tuple(
        InputFile(str(tmp_path / f"{n}.jsonl"), (tmp_path / f"{n}.jsonl").stat().st_size)
        for n in range(3)
    )
    storage, spec = make_spec(tmp_path, files=files, options=BulkOptions(include=frozenset()))
    expected = Summary()
    groups = []
    for n, item in enumerate(files):  # a group per file
        expected.merge(jobs.process_group(storage, spec, n, [item]).summary)
        group = {"group": n, "files": orjson.dumps([[item.uri, item.size]]).decode()}
        row, packs = job_tasks._group_task(spec, group, 4)
        assert row["records"] == 20 and len(packs[0]) == 4
        groups.append(packs)
    assert len(groups) == 3
    heads = [job_tasks._reduce_task(5, part, *groups) for part in range(4)]
    assert all(0 < head["unique_words"] < 50 for head in heads)  # every part has some words
    assert summary_parts.combine(heads, 5) == expected.to_dict(5)


def test_a_summary_part_per_part_bytes_and_at_least_one_per_worker() -> None:
    files = tuple(InputFile(f"/d/{i}", 100) for i in range(10))
    spec = jobs.JobSpec(id="t", files=files, output="/o", storage=StorageConfig(roots=("/",)))
    parts = jobs.dataclasses.replace
    assert job_tasks.summary_part_count(parts(spec, summary_part_bytes=300)) == 4
    assert job_tasks.summary_part_count(parts(spec, summary_part_bytes=10**6)) == spec.max_workers
    assert job_tasks.summary_part_count(parts(spec, files=(), max_workers=1)) == 1
