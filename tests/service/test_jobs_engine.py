"""The job's work unit without Ray: a group of files in, a shard and a partial summary out."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from serve_app.core.pipeline import BulkOptions
from serve_app.core.records.base import ParseOptions
from serve_app.service import jobs
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


# -- merging partial summaries (the ray-tasks engine's tree) -----------------------------------


def tree_root(groups: int, arrival: list[int]) -> tuple[object, list[list[object]]]:
    """The root of a SummaryTree over `groups` leaves added in `arrival` order, where a merge
    is a list of its parts: the nesting shows which ranges were merged together."""
    merges: list[list[object]] = []

    def merge(parts: list[object]) -> object:
        merges.append(parts)
        return ("merged", tuple(parts))

    tree = jobs.SummaryTree(groups, merge)
    for group in arrival:
        assert tree.root() is None or groups == 1
        tree.add(group, group)
    return tree.root(), merges


def leaves(node: object) -> list[int]:
    if isinstance(node, int):
        return [node]
    assert isinstance(node, tuple) and node[0] == "merged"
    return [leaf for part in node[1] for leaf in leaves(part)]


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 5, 16, 17, 33])
@pytest.mark.parametrize("seed", range(5))
def test_the_tree_merges_every_group_once_in_order_whatever_the_arrival(
    groups: int, seed: int
) -> None:
    import random

    arrival = list(range(groups))
    random.Random(seed).shuffle(arrival)
    root, merges = tree_root(groups, arrival)
    assert leaves(root) == list(range(groups))  # each once, ranges in order
    assert all(2 <= len(parts) <= jobs.SummaryTree.FAN_IN for parts in merges)


def test_no_group_has_no_root() -> None:
    assert jobs.SummaryTree(0, lambda parts: parts).root() is None


def test_merging_ranges_equals_one_sequential_pass() -> None:
    """Summary.merge is associative, first-occurrence order included: the tree's premise."""
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
    tree = Summary().merge(left).merge(right)
    assert tree.to_state() == sequential.to_state()
    assert list(tree.word_counts) == list(sequential.word_counts)
    assert tree.top_words(6) == sequential.top_words(6)
