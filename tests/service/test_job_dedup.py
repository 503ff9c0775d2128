"""dedup.duplicates across a job without Ray: the first pass's signatures, resolved in group
order, give every record the duplicate_of (and the summary) of one sequential pass of the core
over all records, however the files are grouped and in whatever order the groups finish."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from serve_app.core.analysis import dedup
from serve_app.core.analysis.dedup import DedupOptions
from serve_app.core.pipeline import BulkOptions, analyze_records
from serve_app.core.records import Record
from serve_app.core.summary import Summary
from serve_app.service import job_dedup, jobs
from serve_app.service.storage import InputFile, Storage, StorageConfig

LETTERS = "abcdefghijklmnopqrstuvwxyz物流很快质量不错包装"


def review(rng: random.Random, words: int = 30) -> str:
    return " ".join(
        "".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 7))) for _ in range(words)
    )


def near_copy(rng: random.Random, text: str) -> str:
    at = rng.randrange(len(text) - 1)
    return text[:at] + "Z" + text[at + 1 :]  # one letter changed: Jaccard well above 0.8


def write_corpus(
    directory: Path, *, seed: int = 7, files: int = 9, big: int = 0
) -> list[InputFile]:
    """Files of every kind, with exact, case/punctuation-only, near and cross-file duplicates,
    short texts (exact only), texts without letters, and error records; `big` records in each
    .jsonl file instead of a few."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    seen: list[str] = []
    made: list[InputFile] = []
    for n in range(files):
        texts: list[Any] = []
        for _ in range(big if big and n % 3 == 0 else rng.randint(3, 12)):
            roll = rng.random()
            if seen and roll < 0.2:
                texts.append(rng.choice(seen))
            elif seen and roll < 0.35:
                texts.append(near_copy(rng, rng.choice(seen)))
            elif seen and roll < 0.45:
                texts.append(rng.choice(seen).upper() + "!!")
            elif roll < 0.55:
                texts.append(rng.choice(["好评", "good", "GOOD!", "默认好评", "😀 ...", ""]))
            elif roll < 0.6:
                texts.append(5)  # not a text: an error row
            else:
                texts.append(review(rng))
                seen.append(texts[-1])
        if n % 3 == 0:
            path = directory / f"f{n:02d}.jsonl"
            path.write_bytes(
                b"".join(orjson.dumps({"id": k, "text": t}) + b"\n" for k, t in enumerate(texts))
                + b"{bad\n"
            )
        elif n % 3 == 1:
            path = directory / f"f{n:02d}.json"
            path.write_bytes(orjson.dumps([{"text": t} for t in texts]))
        else:
            path = directory / f"f{n:02d}.json"
            path.write_bytes(orjson.dumps({"text": texts[0]}))  # a review per file
        made.append(InputFile(str(path), path.stat().st_size))
    return made


def make_spec(
    tmp: Path, files: Sequence[InputFile], **overrides: Any
) -> tuple[Storage, jobs.JobSpec]:
    storage = Storage(StorageConfig(roots=(str(tmp),)))
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    options = BulkOptions(dedup=DedupOptions(duplicates=True, boilerplate=True))
    spec = jobs.JobSpec(
        id="t", files=tuple(files), output=str(out), storage=storage.config, options=options
    )
    return storage, dataclasses.replace(spec, **overrides)


def run_job(
    storage: Storage, spec: jobs.JobSpec, *, group_bytes: int, seed: int
) -> tuple[dict[tuple[str, int], Any], Summary]:
    """Both passes as the engines run them, the groups finishing in a shuffled order; every
    row's duplicate_of (None when it has none) and the merged summary."""
    spec = dataclasses.replace(spec, group_bytes=group_bytes)
    items = [  # as jobs.group_items, with the group size under test (it balances by workers)
        {
            "group": i,
            "files": orjson.dumps([[f.uri, f.size] for f in g]).decode(),
            "first_file": first,
        }
        for i, (g, first) in enumerate(grouped(spec.files, group_bytes))
    ]
    resolver = job_dedup.DuplicateResolver(len(items), spec.options.dedup.threshold)
    arrival = list(range(len(items)))
    random.Random(seed).shuffle(arrival)
    light = dataclasses.replace(spec, files=())
    for group in arrival:
        item = items[group]
        files = [InputFile(uri, size) for uri, size in orjson.loads(item["files"])]
        blob = job_dedup.group_signatures(storage, light, item["first_file"], files)
        resolver.add(group, blob)
    assert resolver.done
    rows: dict[tuple[str, int], Any] = {}
    summary = Summary()
    parts: dict[int, Summary] = {}
    for group in arrival:  # the normal pass, in any order too; summaries merged in order
        item = items[group]
        files = [InputFile(uri, size) for uri, size in orjson.loads(item["files"])]
        known = jobs.decode_duplicates(resolver.encoded(item["group"], spec.files))
        result = jobs.process_group(storage, light, item["group"], files, known)
        parts[item["group"]] = result.summary
        if result.shard:
            for line in (Path(spec.output) / result.shard).read_bytes().splitlines():
                row = orjson.loads(line)
                rows[(row["source"], row["index"])] = row.get("duplicate_of")
    for group in sorted(parts):
        summary.merge(parts[group])
    return rows, summary


def grouped(files: Sequence[InputFile], target: int) -> list[tuple[list[InputFile], int]]:
    out = []
    first = 0
    for group in jobs.plan_groups(files, target):
        out.append((group, first))
        first += len(group)
    return out


def sequential(storage: Storage, spec: jobs.JobSpec) -> tuple[dict[tuple[str, int], Any], Summary]:
    """The core in one call over every record, numbered in input order: what /v1/batch does
    for the same records uploaded in the same order."""
    records: list[Record] = []
    where: list[tuple[str, int]] = []
    for records_slice in jobs.group_slices(storage, spec, spec.files, 1 << 30):
        for record in records_slice:
            assert record.source is not None
            where.append((record.source, record.index))
            records.append(dataclasses.replace(record, index=len(records)))
    analysis = analyze_records(records, spec.options)
    rows: dict[tuple[str, int], Any] = {}
    for row in analysis.rows:
        first = row.get("duplicate_of")
        source, index = where[row["index"]]
        rows[(source, index)] = (
            None if first is None else {"source": where[first][0], "index": where[first][1]}
        )
    return rows, analysis.summary


@pytest.mark.parametrize("seed", range(3))
def test_duplicate_of_is_the_sequential_passs_whatever_the_groups_and_their_order(
    tmp_path: Path, seed: int
) -> None:
    files = write_corpus(tmp_path / "in", seed=seed)
    storage, spec = make_spec(tmp_path, files)
    expected_rows, expected_summary = sequential(storage, spec)
    flagged = [v for v in expected_rows.values() if v is not None]
    assert len(flagged) >= 5  # the corpus has duplicates, near ones among them
    sizes = sorted(f.size for f in files)
    for group_bytes in (1, sizes[len(sizes) // 2], sum(sizes)):  # one file per group .. one group
        rows, summary = run_job(storage, spec, group_bytes=group_bytes, seed=seed)
        assert rows == expected_rows, group_bytes
        assert summary.to_dict(50) == expected_summary.to_dict(50)
        assert summary.duplicates == len(flagged)


def test_words_of_flagged_records_are_left_out_when_asked(tmp_path: Path) -> None:
    files = write_corpus(tmp_path / "in", seed=11)
    flags = DedupOptions(duplicates=True, boilerplate=True, exclude_from_counts=True)
    storage, spec = make_spec(tmp_path, files, options=BulkOptions(dedup=flags))
    _, expected = sequential(storage, spec)
    _, summary = run_job(storage, spec, group_bytes=1, seed=1)
    assert summary.to_dict(50) == expected.to_dict(50)
    _, counted = run_job(
        storage,
        dataclasses.replace(spec, options=BulkOptions(dedup=DedupOptions(duplicates=True))),
        group_bytes=1,
        seed=1,
    )
    assert summary.total_words < counted.total_words
    assert summary.total_chars == counted.total_chars


def test_a_near_duplicate_in_a_later_file_points_at_the_first_record(tmp_path: Path) -> None:
    text = "the delivery was fast and the packaging was intact, great value for money"
    (tmp_path / "a.jsonl").write_bytes(
        b'{"text": "short"}\n' + orjson.dumps({"text": text}) + b"\n"
    )
    (tmp_path / "b.json").write_bytes(
        orjson.dumps([{"text": "x"}, {"text": text.replace("fast", "FAST!!")}])
    )
    (tmp_path / "c.json").write_bytes(orjson.dumps({"text": text[:-1] + "y"}))
    files = [
        InputFile(str(tmp_path / n), (tmp_path / n).stat().st_size)
        for n in ("a.jsonl", "b.json", "c.json")
    ]
    storage, spec = make_spec(tmp_path, files)
    rows, summary = run_job(storage, spec, group_bytes=1, seed=0)
    first = {"source": str(tmp_path / "a.jsonl"), "index": 1}
    assert rows == {
        (str(tmp_path / "a.jsonl"), 0): None,
        (str(tmp_path / "a.jsonl"), 1): None,
        (str(tmp_path / "b.json"), 0): None,
        (str(tmp_path / "b.json"), 1): first,
        (str(tmp_path / "c.json"), 0): first,
    }
    assert summary.duplicates == 2


def test_signatures_survive_packing(tmp_path: Path) -> None:
    signed = [
        (job_dedup.record_key(0, 3), dedup.signature("good")),
        (job_dedup.record_key(7, 2**32 - 1), dedup.signature("a longer review text here")),
        (job_dedup.record_key(2**20, 0), dedup.signature("好评")),
    ]
    assert signed[1][1].minhash is not None and signed[0][1].minhash is None
    assert list(job_dedup.unpack(job_dedup.pack(signed))) == signed
    assert list(job_dedup.unpack(job_dedup.pack([]))) == []
    assert job_dedup.split_key(signed[1][0]) == (7, 2**32 - 1)


def test_parquet_shards_carry_duplicate_of_and_boilerplate(tmp_path: Path) -> None:
    (tmp_path / "r.jsonl").write_bytes(
        b'{"text": "great value, fast delivery"}\n{"text": "\\u9ed8\\u8ba4\\u597d\\u8bc4"}\n'
        b'{"text": "Great value; fast delivery!"}\n{"text": 1}\n'
    )
    files = [InputFile(str(tmp_path / "r.jsonl"), (tmp_path / "r.jsonl").stat().st_size)]
    options = BulkOptions(
        include=frozenset({"word_count"}),
        dedup=DedupOptions(duplicates=True, boilerplate=True),
    )
    storage, spec = make_spec(tmp_path, files, output_format="parquet", options=options)
    resolver = job_dedup.DuplicateResolver(1, 0.8)
    resolver.add(0, job_dedup.group_signatures(storage, spec, 0, files))
    known = jobs.decode_duplicates(resolver.encoded(0, spec.files))
    result = jobs.process_group(storage, spec, 0, files, known)
    table = pq.read_table(tmp_path / "out" / result.shard)
    assert table.column_names == [
        "index", "source", "id", "word_count", "boilerplate", "duplicate_of", "error"
    ]  # fmt: skip
    rows = table.to_pylist()
    assert [r["boilerplate"] for r in rows] == [None, True, None, None]
    assert [r["duplicate_of"] for r in rows] == [
        None, None, {"source": str(tmp_path / "r.jsonl"), "index": 0}, None
    ]  # fmt: skip
    assert rows[3]["error"] and result.summary.duplicates == 1


def test_progress_counts_both_passes() -> None:
    files = [InputFile("/a", 10), InputFile("/b", 5)]
    assert jobs.Progress.of(files).bytes_total == 15
    assert jobs.Progress.of(files, passes=2).bytes_total == 30
    assert jobs.passes(BulkOptions(dedup=DedupOptions(duplicates=True))) == 2
    assert jobs.passes(BulkOptions(dedup=DedupOptions(boilerplate=True))) == 1


@pytest.mark.cluster
def test_both_engines_flag_the_same_records_whatever_the_workers(tmp_path: Path) -> None:
    """In a Ray of its own: ray-tasks and ray-data, 1 and 2 workers, groups of 1 MB."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    from serve_app.ops.launcher import end_session
    from tests.support import REPO

    files = write_corpus(tmp_path / "in", seed=3, files=12, big=4000)
    assert sum(f.size for f in files) > 3 << 20  # several groups of 1 MB
    storage, spec = make_spec(
        tmp_path,
        files,
        options=BulkOptions(
            dedup=DedupOptions(duplicates=True, boilerplate=True, exclude_from_counts=True)
        ),
    )
    expected_rows, expected_summary = sequential(storage, spec)
    temp = tempfile.mkdtemp(prefix="/tmp/cs-dedup-")  # short: Ray's socket paths
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
    (tmp_path / "runs").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.service.job_dedup_engines", str(tmp_path / "in"),
         str(tmp_path / "runs"), temp],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=500)
    finally:
        end_session(proc.pid)
        shutil.rmtree(temp, ignore_errors=True)
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    runs = [orjson.loads(line) for line in out.splitlines() if line.startswith(b"{")]
    assert [(r["engine"], r["workers"]) for r in runs] == [
        ("ray-tasks", 1), ("ray-tasks", 2), ("ray-data", 1), ("ray-data", 2)
    ]  # fmt: skip
    expected = {f"{source}#{index}": first for (source, index), first in expected_rows.items()}
    assert sum(first is not None for first in expected.values()) > 100
    for run in runs:
        assert run["groups"] > 2, run["groups"]
        assert run["rows"] == expected, (run["engine"], run["workers"])
        assert run["summary"] == expected_summary.to_dict(10), (run["engine"], run["workers"])
        progress = run["progress"]
        assert progress["bytes"] == progress["bytes_total"] == 2 * sum(f.size for f in files)
        # the first pass moved the progress: half the bytes before any group was analyzed
        assert sum(f.size for f in files) in run["moves"]
