"""/v1/jobs against the running service: the same rows as /v1/batch, 4xx before any work,
cancel, and a worker killed mid-job."""

from __future__ import annotations

import contextlib
import gzip
import os
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pytest

from loadtests.bench import corpus
from serve_app.ops.launcher import session_processes
from tests.support import S3_BUCKET, S3_ENV, Service, multipart

pytestmark = pytest.mark.serve

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}
OPTIONS = {"clean": {"urls": "mask", "emoji": "remove"}, "count": {"stopwords": ["en", "zh"]}}


@pytest.fixture(scope="module")
def root(service: Service) -> Path:
    if service.job_root is None:
        pytest.skip("the service under test has no job root (CLEANSERVE_TEST_URL)")
    return service.job_root


def unique(root: Path, name: str) -> Path:
    return root / f"{name}-{time.monotonic_ns()}"


def wait_job(client: httpx.Client, job_id: str, *, timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["state"] in TERMINAL:
            return job
        assert time.monotonic() < deadline, f"job still {job['state']}: {job}"
        time.sleep(0.3)


def read_rows(out: Path) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for shard in sorted(out.glob("part-*.ndjson"))
        for line in shard.read_bytes().splitlines()
    ]


@contextlib.contextmanager
def mock_env(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def mixed_inputs(directory: Path) -> dict[str, bytes]:
    files = mixed_inputs_bytes()
    directory.mkdir(parents=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return files


def mixed_inputs_bytes() -> dict[str, bytes]:
    return {
        "a.jsonl": '{"id": 1, "text": "Great <b>value</b> https://x.example 👍"}\n'
        '{not json\n{"id": "two", "text": "物流很快  the fast"}\n{"text": 3}\n'.encode(),
        "b.json": orjson.dumps([{"id": 9, "text": "ＦＵＬＬ width café\n\nnew line"}, {"x": 1}]),
        "c.csv": b'id,text\n5,"quoted, with comma"\n6,plain text here\n',
        "d.ndjson.gz": gzip.compress(b'{"text": "zipped text text"}\n'),
    }


def test_a_job_writes_the_rows_and_summary_that_batch_gives(
    client: httpx.Client, root: Path
) -> None:
    source = unique(root, "mixed")
    files = mixed_inputs(source)
    out = unique(root, "out")
    response = client.post(
        "/v1/jobs", json={"inputs": [str(source)], "output": str(out), "options": OPTIONS}
    )
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] in ("PENDING", "RUNNING") and job["progress"]["files_total"] == 4
    done = wait_job(client, job["id"])
    assert done["state"] == "SUCCEEDED", done

    body, content_type = multipart([(name, data) for name, data in files.items()])
    batch = client.post(
        "/v1/batch",
        content=body,
        headers={"content-type": content_type},
        params={"options": orjson.dumps(OPTIONS).decode()},
    )
    *batch_rows, last = [orjson.loads(line) for line in batch.content.splitlines()]
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in batch_rows:
        by_file[row["source"]].append(row)

    job_rows = read_rows(out)
    assert len(job_rows) == len(batch_rows) == 9
    compared = ("id", "text", "char_count", "word_count", "unique_words", "word_counts")
    for row in job_rows:
        name = row["source"].rsplit("/", 1)[1]
        assert row["source"] == str(source / name)
        expected = by_file[name][row["index"]]
        assert {k: row.get(k) for k in compared} == {k: expected.get(k) for k in compared}
        assert ("error" in row) == ("error" in expected)
    assert done["summary"] == last["summary"]
    assert orjson.loads((out / "summary.json").read_bytes()) == done["summary"]
    assert (out / "_SUCCESS").exists()
    assert done["progress"]["files_done"] == 4 and done["progress"]["records"] == 9
    assert any(j["id"] == job["id"] for j in client.get("/v1/jobs").json()["jobs"])


@pytest.mark.parametrize(
    ("request_of", "status", "says"),
    [
        (lambda r, s: {"inputs": [s], "output": f"{r}/o", "colour": 1}, 422, "colour"),
        (lambda r, s: {"inputs": ["/etc/hostname"], "output": f"{r}/o"}, 403, "outside"),
        (lambda r, s: {"inputs": [f"{s}/../../x"], "output": f"{r}/o"}, 403, "outside"),
        (lambda r, s: {"inputs": [f"{r}/link/hostname"], "output": f"{r}/o"}, 403, "outside"),
        (lambda r, s: {"inputs": [s], "output": f"{r}/../o"}, 403, "outside"),
        (lambda r, s: {"inputs": [f"{s}/*.parquet"], "output": f"{r}/o"}, 400, "no file"),
        (lambda r, s: {"inputs": [s], "output": f"{r}/full"}, 409, "not empty"),
        (lambda r, s: {"inputs": [s], "output": f"{r}/o", "format": "xml"}, 422, "format"),
    ],
)
def test_a_bad_request_is_refused_before_any_work(
    client: httpx.Client, root: Path, request_of: Any, status: int, says: str
) -> None:
    source = unique(root, "bad")
    mixed_inputs(source)
    link = root / "link"
    if not link.exists():
        os.symlink("/etc", link)
        (root / "full").mkdir()
        (root / "full" / "part-00000.ndjson").write_bytes(b"")
    before = len(client.get("/v1/jobs").json()["jobs"])
    response = client.post("/v1/jobs", json=request_of(str(root), str(source)))
    assert response.status_code == status, response.text
    assert says in response.text
    assert len(client.get("/v1/jobs").json()["jobs"]) == before
    assert not (root / "o").exists()


def test_unknown_job_is_404(client: httpx.Client) -> None:
    assert client.get("/v1/jobs/nosuchjob").status_code == 404
    assert client.delete("/v1/jobs/nosuchjob").status_code == 404


def workers(
    service: Service, names: tuple[str, ...] = ("FileGroupWorker", "_group_task")
) -> list[psutil.Process]:
    assert service.sid is not None
    found = []
    for proc in session_processes(service.sid):
        try:
            # A Ray Data actor or a plain task (settings.job_engine), by its process title.
            if any(name in " ".join(proc.cmdline()) for name in names):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def kill_a_worker(
    service: Service, names: tuple[str, ...] = ("FileGroupWorker", "_group_task")
) -> int | None:
    """SIGKILL the first job worker seen within 120 s (polling every 50 ms): its pid, or None."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for proc in workers(service, names):
            os.kill(proc.pid, signal.SIGKILL)
            return proc.pid
        time.sleep(0.05)
    return None


def seed_corpus(directory: Path, files: int) -> corpus.Corpus:
    return corpus.write(corpus.CorpusSpec(files=files, seed=7), directory)


def test_cancel_stops_the_work_within_seconds(
    client: httpx.Client, root: Path, service: Service
) -> None:
    data = seed_corpus(unique(root, "cancel-in"), files=24)
    out = unique(root, "cancel-out")
    job = client.post("/v1/jobs", json={"inputs": [str(data.directory)], "output": str(out)})
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    deadline = time.monotonic() + 120
    while not workers(service):
        assert time.monotonic() < deadline, "no job worker ever started"
        time.sleep(0.2)
    cancelled = client.delete(f"/v1/jobs/{job_id}")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "CANCELLED"
    deadline = time.monotonic() + 15
    while workers(service):
        assert time.monotonic() < deadline, "job workers still running 15 s after the cancel"
        time.sleep(0.2)
    assert not (out / "_SUCCESS").exists()
    time.sleep(1)
    assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "CANCELLED"
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 409


def runners(service: Service) -> set[int]:
    assert service.sid is not None
    found = set()
    for proc in session_processes(service.sid):
        with contextlib.suppress(psutil.Error):
            if "JobRunner" in " ".join(proc.cmdline()):
                found.add(proc.pid)
    return found


def test_one_job_after_another_runs_on_the_same_runner(
    client: httpx.Client, root: Path, service: Service
) -> None:
    data = seed_corpus(unique(root, "again-in"), files=4)
    seen = []
    for run in range(2):
        out = unique(root, f"again-out-{run}")
        job = client.post("/v1/jobs", json={"inputs": [str(data.directory)], "output": str(out)})
        assert job.status_code == 202, job.text
        assert wait_job(client, job.json()["id"])["state"] == "SUCCEEDED"
        seen.append(runners(service))
    # The first job's runner (or one an earlier test left idle) took the second job: no new
    # driver process per job (one an earlier cancel killed may still be going away).
    assert seen[0] and seen[1] <= seen[0]


def test_a_worker_killed_mid_job_loses_no_record_and_doubles_none(
    client: httpx.Client, root: Path, service: Service
) -> None:
    data = seed_corpus(unique(root, "kill-in"), files=16)
    out = unique(root, "kill-out")
    seed_mode = {"clean": {"preset": "minimal"}, "count": {"tokenizer": "whitespace"}}
    response = client.post(
        "/v1/jobs",
        json={
            "inputs": [str(data.directory)],
            "output": str(out),
            "options": seed_mode,
            "include": ["char_count"],
        },
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert kill_a_worker(service) is not None, "no job worker to kill"
    done = wait_job(client, job_id)
    assert done["state"] == "SUCCEEDED", done
    rows = read_rows(out)
    keys = sorted((row["source"], row["index"]) for row in rows)
    assert keys == sorted((str(path), 0) for path in data.paths)
    assert done["summary"]["records"] == len(data.paths) and done["summary"]["failed"] == 0
    assert done["summary"]["total_chars"] == sum(row["char_count"] for row in rows)


def test_state_outlives_the_registry_actor(
    client: httpx.Client, root: Path, service: Service
) -> None:
    source = unique(root, "restart")
    mixed_inputs(source)
    out = unique(root, "restart-out")
    job_id = client.post("/v1/jobs", json={"inputs": [str(source)], "output": str(out)}).json()[
        "id"
    ]
    done = wait_job(client, job_id)
    assert service.sid is not None
    (registry,) = [
        p for p in session_processes(service.sid) if "JobRegistry" in " ".join(p.cmdline())
    ]
    registry.kill()
    deadline = time.monotonic() + 60
    while True:
        response = client.get(f"/v1/jobs/{job_id}")
        if response.status_code == 200:
            break
        assert time.monotonic() < deadline, response.text
        time.sleep(0.5)
    assert response.json() == done


def test_a_job_reads_and_writes_s3(client: httpx.Client, service: Service) -> None:
    if service.s3_endpoint is None:
        pytest.skip("the service under test has no S3 server")
    import pyarrow.parquet as pq

    from serve_app.service.storage import Storage, StorageConfig

    storage = Storage(StorageConfig(roots=(f"s3://{S3_BUCKET}",), s3_endpoint=service.s3_endpoint))
    prefix = f"s3://{S3_BUCKET}/run-{time.monotonic_ns()}"
    fs, base = storage.filesystem(prefix)
    with mock_env(S3_ENV):
        for name, data in mixed_inputs_bytes().items():
            with fs.open_output_stream(f"{base}/in/{name}", compression=None) as stream:
                stream.write(data)
        response = client.post(
            "/v1/jobs",
            json={
                "inputs": [f"{prefix}/in/*"],
                "output": f"{prefix}/out",
                "output_format": "parquet",
            },
        )
        assert response.status_code == 202, response.text
        done = wait_job(client, response.json()["id"])
        assert done["state"] == "SUCCEEDED", done
        entries = storage.output_entries(f"{prefix}/out")
        assert "_SUCCESS" in entries and "summary.json" in entries
        rows = []
        for name in entries:
            if name.endswith(".parquet"):
                with fs.open_input_file(f"{base}/out/{name}") as handle:
                    rows += pq.read_table(handle).to_pylist()
    assert len(rows) == done["summary"]["records"] == 9
    assert sum(1 for row in rows if row["error"]) == done["summary"]["failed"] == 3
    assert {row["source"].rsplit("/", 1)[1] for row in rows} == set(mixed_inputs_bytes())
    assert all(row["source"].startswith(f"{prefix}/in/") for row in rows)


def test_a_job_goes_on_when_the_ingress_restarts(
    client: httpx.Client, root: Path, service: Service
) -> None:
    data = seed_corpus(unique(root, "ingress-in"), files=12)
    out = unique(root, "ingress-out")
    response = client.post("/v1/jobs", json={"inputs": [str(data.directory)], "output": str(out)})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert service.sid is not None
    (ingress,) = [
        p
        for p in session_processes(service.sid)
        if p.cmdline() and p.cmdline()[0].startswith("ray::ServeReplica:cleanserve:Ingress")
    ]
    ingress.kill()
    deadline = time.monotonic() + 120
    while True:  # Serve starts a new ingress replica; the job never needed the old one
        with contextlib.suppress(httpx.HTTPError):
            if client.get("/healthz", timeout=5).status_code == 200:
                break
        assert time.monotonic() < deadline, "the ingress did not come back"
        time.sleep(0.5)
    done = wait_job(client, job_id)
    assert done["state"] == "SUCCEEDED", done
    assert done["summary"]["records"] == len(data.paths)
    assert len(read_rows(out)) == len(data.paths)


def test_job_duplicates_are_those_batch_finds_even_with_a_worker_killed(
    client: httpx.Client, root: Path, service: Service
) -> None:
    """dedup.duplicates in a job: a worker of the first pass (signatures) killed, and still the
    records /v1/batch flags for the same files uploaded in the job's order, pointing at the same
    earlier records, and the same summary."""
    data = seed_corpus(unique(root, "dedup-in"), files=16)
    for n, path in enumerate(data.paths[:6]):  # exact, then near copies, in later files
        text = orjson.loads(path.read_bytes())
        if n % 2:
            text["text"] = text["text"][:-40] + " and one more sentence at the very end."
        (data.directory / f"zz-copy-{n}.json").write_bytes(orjson.dumps(text))
    out = unique(root, "dedup-out")
    options = {**OPTIONS, "dedup": {"duplicates": True, "boilerplate": True}}
    response = client.post(
        "/v1/jobs",
        json={"inputs": [str(data.directory)], "output": str(out), "options": options},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert (
        response.json()["progress"]["bytes_total"]
        == 2 * data.total_bytes
        + sum(p.stat().st_size for p in data.directory.glob("zz-copy-*")) * 2
    )
    first_pass = ("SignatureWorker", "_signature_task")
    assert kill_a_worker(service, first_pass) is not None, "no first-pass worker to kill"
    done = wait_job(client, job_id)
    assert done["state"] == "SUCCEEDED", done
    job_rows = read_rows(out)  # shards in group order: the job's input order
    order = list(dict.fromkeys(row["source"] for row in job_rows))
    assert len(order) == 22

    body, content_type = multipart([(Path(p).name, Path(p).read_bytes()) for p in order])
    batch = client.post(
        "/v1/batch",
        content=body,
        headers={"content-type": content_type},
        params={"options": orjson.dumps(options).decode()},
    )
    *batch_rows, last = [orjson.loads(line) for line in batch.content.splitlines()]
    per_file: dict[str, int] = defaultdict(int)
    where = []  # batch index -> (file name, index within the file)
    for row in batch_rows:
        where.append((row["source"], per_file[row["source"]]))
        per_file[row["source"]] += 1

    def flagged_in_batch(row: dict[str, Any]) -> Any:
        first = row.get("duplicate_of")
        return None if first is None else where[first]

    def flagged_in_job(row: dict[str, Any]) -> Any:
        first = row.get("duplicate_of")
        return None if first is None else (Path(first["source"]).name, first["index"])

    expected = {where[k]: flagged_in_batch(row) for k, row in enumerate(batch_rows)}
    got = {(Path(row["source"]).name, row["index"]): flagged_in_job(row) for row in job_rows}
    assert got == expected
    assert sum(first is not None for first in got.values()) >= 6
    assert done["summary"] == last["summary"] and done["summary"]["duplicates"] >= 6
    assert done["progress"]["bytes"] == done["progress"]["bytes_total"]
