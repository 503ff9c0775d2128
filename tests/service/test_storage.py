from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from serve_app.service.storage import (
    InputFile,
    Storage,
    StorageConfig,
    StorageError,
    atomic_output,
    glob_regex,
    split_roots,
)
from tests.support import S3_BUCKET, S3_ENV, s3_server


def test_split_roots_keeps_the_colon_of_a_uri() -> None:
    assert split_roots("/data:s3://bucket/in:/srv/x") == ("/data", "s3://bucket/in", "/srv/x")
    assert split_roots(None) == ()
    assert split_roots("") == ()


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/d/*.json", "/d/a.json", True),
        ("/d/*.json", "/d/sub/a.json", False),
        ("/d/**/*.json", "/d/sub/deep/a.json", True),
        ("/d/**/*.json", "/d/a.json", True),
        ("/d/a?.csv", "/d/ab.csv", True),
        ("/d/[!x]*.csv", "/d/xa.csv", False),
        ("/d/a.json", "/d/a_json", False),
    ],
)
def test_glob_regex(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_regex(pattern).fullmatch(path)) is matches


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "in" / "sub").mkdir(parents=True)
    (root / "in" / "a.json").write_text('{"text": "a"}')
    (root / "in" / "b.jsonl.gz").write_bytes(b"")
    (root / "in" / "notes.txt").write_text("not input")
    (root / "in" / "sub" / "c.csv").write_text("text\nc\n")
    (tmp_path / "secret.json").write_text('{"text": "secret"}')
    return root


def test_a_directory_lists_its_supported_files_recursively(tree: Path) -> None:
    storage = Storage(StorageConfig(roots=(str(tree),)))
    files = storage.expand([str(tree / "in")])
    assert [f.uri for f in files] == [
        str(tree / "in" / "a.json"),
        str(tree / "in" / "b.jsonl.gz"),
        str(tree / "in" / "sub" / "c.csv"),
    ]
    assert files[0] == InputFile(str(tree / "in" / "a.json"), len('{"text": "a"}'))


def test_globs_and_files_each_once(tree: Path) -> None:
    storage = Storage(StorageConfig(roots=(str(tree),)))
    files = storage.expand([str(tree / "in" / "*.json"), str(tree / "in" / "a.json")])
    assert [f.uri for f in files] == [str(tree / "in" / "a.json")]
    deep = storage.expand([str(tree / "**" / "*.csv")])
    assert [f.uri for f in deep] == [str(tree / "in" / "sub" / "c.csv")]


@pytest.mark.parametrize(
    ("target", "status", "says"),
    [
        ("{tree}/../secret.json", 403, "outside the allowed roots"),
        ("{tree}/in/../../secret.json", 403, "outside the allowed roots"),
        ("{tree}/link/secret.json", 403, "outside the allowed roots"),
        ("{tree}/in/*.parquet", 400, "no file matches"),
        ("{tree}/in/missing.json", 404, "no such file"),
        ("{tree}/in/notes.txt", 400, "unsupported file type"),
        ("in/a.json", 400, "absolute path"),
        ("gs://bucket/x.json", 400, "unsupported scheme"),
        ("s3://bucket/../x.json", 403, "'..'"),
    ],
)
def test_what_a_job_cannot_read_is_refused_by_name(
    tree: Path, target: str, status: int, says: str
) -> None:
    os.symlink(tree.parent, tree / "link")
    storage = Storage(StorageConfig(roots=(str(tree), "s3://bucket/in")))
    with pytest.raises(StorageError) as caught:
        storage.expand([target.format(tree=tree)])
    assert caught.value.status == status
    assert says in str(caught.value)


def test_a_symlink_inside_a_root_that_leads_out_is_refused(tree: Path) -> None:
    os.symlink(tree.parent / "secret.json", tree / "in" / "escape.json")
    storage = Storage(StorageConfig(roots=(str(tree),)))
    with pytest.raises(StorageError, match="escape.json: outside the allowed roots"):
        storage.expand([str(tree / "in")])


def test_no_roots_no_jobs(tree: Path) -> None:
    with pytest.raises(StorageError, match="jobs are disabled"):
        Storage(StorageConfig()).check(str(tree))


def test_atomic_output_leaves_nothing_when_the_writer_fails(tmp_path: Path) -> None:
    import pyarrow.fs as pafs

    target = tmp_path / "part-00000.ndjson"
    with pytest.raises(RuntimeError):
        with atomic_output(pafs.LocalFileSystem(), str(target), local=True) as out:
            out.stream.write(b"half a shard")
            raise RuntimeError("worker died")
    assert list(tmp_path.iterdir()) == []
    with atomic_output(pafs.LocalFileSystem(), str(target), local=True) as out:
        out.stream.write(b"whole\n")
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    assert target.read_bytes() == b"whole\n"


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    saved = {key: os.environ.get(key) for key in S3_ENV}
    os.environ.update(S3_ENV)
    try:
        with s3_server() as endpoint:
            yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_s3_listing_globbing_and_writing(s3: str) -> None:
    storage = Storage(
        StorageConfig(roots=(f"s3://{S3_BUCKET}/in", f"s3://{S3_BUCKET}/out"), s3_endpoint=s3)
    )
    fs, base = storage.filesystem(f"s3://{S3_BUCKET}/in")
    for name in ("a.json", "sub/b.ndjson", "c.txt"):
        with fs.open_output_stream(f"{base}/{name}") as out:
            out.write(b'{"text": "x"}')
    listed = storage.expand([f"s3://{S3_BUCKET}/in"])
    assert [f.uri for f in listed] == [
        f"s3://{S3_BUCKET}/in/a.json",
        f"s3://{S3_BUCKET}/in/sub/b.ndjson",
    ]
    globbed = storage.expand([f"s3://{S3_BUCKET}/in/*.json"])
    assert [f.uri for f in globbed] == [f"s3://{S3_BUCKET}/in/a.json"]
    with pytest.raises(StorageError) as caught:
        storage.expand([f"s3://{S3_BUCKET}/elsewhere/a.json"])
    assert caught.value.status == 403
    out_fs, out_base = storage.filesystem(f"s3://{S3_BUCKET}/out")
    assert storage.output_entries(f"s3://{S3_BUCKET}/out") == []
    with atomic_output(out_fs, f"{out_base}/part-00000.ndjson", local=False) as out:
        out.stream.write(b"row\n")
    assert storage.output_entries(f"s3://{S3_BUCKET}/out") == ["part-00000.ndjson"]
