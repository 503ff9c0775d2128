"""Who runs a job, and where its state lives.

- `JobRegistry`: one detached, named actor (`cleanserve-jobs`, 0 CPUs, on the head node,
  restarted whenever it dies). It checks a request (roots, matches, output) before any work,
  hands the job to an idle `JobRunner` (or starts one), answers status, lists and cancels.
- `JobRunner`: detached actors (`cleanserve-job-runner-<n>`, 0 CPUs, on the head node), each
  the driver of one job at a time, kept for the next job once one ends: a job then starts on a
  driver that has its modules loaded, and on the task workers the runner used before (with a
  driver per job, Ray started new workers for every job: README, `POST /v1/jobs`).
  Cancelling kills the job's runner; the workers it owns die with it, so the CPUs are free
  within seconds and no shard is half-written (shards appear whole or not at all); the next
  job starts another runner in its place.
- `JobStore`: one JSON file per job in `job_state_dir`, written whole (rename): the source of
  truth. The ingress holds nothing, so an ingress restart loses nothing, and a restarted
  registry reads every job back.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Final

import orjson
import ray
from ray.util import metrics

from serve_app.core import cleaning, counting
from serve_app.core.analysis import dedup, review
from serve_app.core.pipeline import BulkOptions
from serve_app.core.records.base import ParseOptions
from serve_app.service import jobs, worker_memory
from serve_app.service.storage import Storage, StorageConfig, StorageError, split_roots
from serve_app.settings import Settings

NAMESPACE: Final = "cleanserve"
REGISTRY_NAME: Final = "cleanserve-jobs"
TERMINAL: Final = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
HEAD: Final = {"node:__internal_head__": 0.001}
# A job whose runner is gone and whose state has not moved for this long lost its driver.
LOST_AFTER_S: Final = 20.0
PROGRESS_EVERY_S: Final = 0.5
CALL_TIMEOUT_S: Final = 5.0
START_TIMEOUT_S: Final = 120.0


# Runners, and so jobs running at once: a job past this many waits for none, it is refused (429).
MAX_RUNNERS: Final = 16


def runner_name(number: int) -> str:
    return f"cleanserve-job-runner-{number}"


class JobStore:
    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, job_id: str) -> Path:
        return self.directory / f"{job_id}.json"

    def write(self, job: dict[str, Any]) -> None:
        job["updated"] = time.time()
        path = self._path(job["id"])
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        tmp.write_bytes(orjson.dumps(job))
        os.replace(tmp, path)

    def read(self, job_id: str) -> dict[str, Any] | None:
        if not job_id.isalnum():
            return None
        try:
            job: dict[str, Any] = orjson.loads(self._path(job_id).read_bytes())
        except FileNotFoundError:
            return None
        return job

    def all(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.directory.glob("*.json")):
            with contextlib.suppress(OSError, orjson.JSONDecodeError):
                found.append(orjson.loads(path.read_bytes()))
        return sorted(found, key=lambda job: job["created"])


class JobMetrics:
    def __init__(self) -> None:
        self.records = metrics.Counter(
            "cleanserve_job_records", "Job records processed, by outcome.", tag_keys=("outcome",)
        )
        self.bytes = metrics.Counter("cleanserve_job_bytes", "Job input bytes processed.")
        self.jobs = metrics.Counter(
            "cleanserve_jobs", "Jobs that reached a state, by state.", tag_keys=("state",)
        )

    def state(self, state: str) -> None:
        self.jobs.inc(1, tags={"state": state})


def describe(exc: BaseException) -> str:
    """What went wrong, short: a worker's exception, not the whole chain of Ray's wrappers."""
    cause = getattr(exc, "cause", None) or exc
    while isinstance(cause, BaseException) and cause.__cause__ is not None:
        cause = cause.__cause__
    return f"{type(cause).__name__}: {cause}"[:2000]


def public(job: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "state", "created", "progress", "summary", "output", "error", "request")
    return {key: job.get(key) for key in keys}


@ray.remote(num_cpus=0, max_restarts=0, resources=HEAD)
class JobRunner:
    """A job's driver, one job at a time (`claim`, then `run`); `current` answers meanwhile
    (a second thread: max_concurrency=2)."""

    def __init__(self, state_dir: str) -> None:
        self._store = JobStore(state_dir)
        self._metrics = JobMetrics()
        self._current: str | None = None
        self._lock = threading.Lock()

    def claim(self, job_id: str) -> bool:
        """Take the job if no other is running here."""
        with self._lock:
            if self._current is not None:
                return False
            self._current = job_id
            return True

    def current(self) -> str | None:
        return self._current

    def run(self, spec: jobs.JobSpec, overwrite: bool) -> None:
        try:
            self._run(spec, overwrite)
        finally:
            worker_memory.release_unused()  # what the job held, back before the next one
            with self._lock:
                self._current = None

    def _run(self, spec: jobs.JobSpec, overwrite: bool) -> None:
        storage = Storage(spec.storage)
        job = self._store.read(spec.id)
        assert job is not None
        job["state"] = "RUNNING"
        self._store.write(job)
        last = 0.0

        def on_progress(progress: jobs.Progress, result: jobs.GroupResult) -> None:
            nonlocal last
            ok = result.records - result.failed
            if ok:
                self._metrics.records.inc(ok, tags={"outcome": "ok"})
            if result.failed:
                self._metrics.records.inc(result.failed, tags={"outcome": "failed"})
            if result.bytes:
                self._metrics.bytes.inc(result.bytes)
            if time.monotonic() - last >= PROGRESS_EVERY_S:
                last = time.monotonic()
                job["progress"] = progress.to_dict()
                self._store.write(job)

        try:
            jobs.prepare_output(storage, spec, overwrite=overwrite)
            summary, progress = jobs.run_pipeline(spec, on_progress)
            job["summary"] = summary
            jobs.write_markers(storage, spec, job["summary"])
            job["progress"] = progress.to_dict()
            job["state"] = "SUCCEEDED"
        except Exception as exc:  # the job's state says what went wrong; nothing else would
            job["state"] = "FAILED"
            job["error"] = describe(exc)
        self._store.write(job)
        self._metrics.state(job["state"])


@ray.remote(num_cpus=0, max_restarts=-1, resources=HEAD)
class JobRegistry:
    def __init__(self, settings: dict[str, Any]) -> None:
        self._settings = Settings(**settings)
        self._store = JobStore(self._settings.job_state_dir)
        self._storage = Storage(
            StorageConfig(
                roots=split_roots(self._settings.job_roots),
                s3_endpoint=self._settings.job_s3_endpoint,
                s3_region=self._settings.job_s3_region,
            )
        )
        self._metrics = JobMetrics()
        self._lock = threading.Lock()

    def ready(self) -> bool:
        return True

    # -- requests -----------------------------------------------------------------------------

    def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        """{"job": ...} or {"status": 4xx, "detail": "..."}: every check before any work."""
        try:
            return {"job": self._submit(request)}
        except StorageError as exc:
            return {"status": exc.status, "detail": str(exc)}
        except OSError as exc:  # the storage itself refused (no such bucket, no access)
            return {"status": 400, "detail": f"storage: {exc}"}

    def _submit(self, request: dict[str, Any]) -> dict[str, Any]:
        output = self._storage.check(request["output"])
        for target in request["inputs"]:
            self._storage.check(target)
        files = self._storage.expand(request["inputs"], exclude=output)
        duplicates = request["options"].get("dedup", {}).get("duplicates", False)
        job_id = uuid.uuid4().hex[:16]
        spec = self._spec(job_id, request, files, output)
        with self._lock:
            if not request["overwrite"] and (entries := self._storage.output_entries(output)):
                raise StorageError(
                    f"{request['output']}: output is not empty ({len(entries)} entries, e.g. "
                    f"{entries[0]!r}); choose another or set overwrite",
                    409,
                )
            for job in self._store.all():
                if job["state"] not in TERMINAL and job.get("output") == output:
                    raise StorageError(f"{request['output']}: job {job['id']} writes there", 409)
            runner, name = self._claim_runner(job_id)
            job = {
                "id": job_id,
                "state": "PENDING",
                "created": time.time(),
                "request": request,
                "output": output,
                "runner": name,
                "progress": jobs.Progress.of(files, passes=2 if duplicates else 1).to_dict(),
                "summary": None,
                "error": None,
            }
            self._store.write(job)
        runner.run.remote(spec, request["overwrite"])
        return public(job)

    def _claim_runner(self, job_id: str) -> tuple[Any, str]:
        """An idle runner that has taken `job_id` (a new one if none is idle), and its name."""
        for number in range(MAX_RUNNERS):
            name = runner_name(number)
            timeout = CALL_TIMEOUT_S
            try:
                runner = ray.get_actor(name, namespace=NAMESPACE)
            except ValueError:  # never started, or killed by a cancel: start it
                runner = JobRunner.options(  # type: ignore[attr-defined]
                    name=name,
                    namespace=NAMESPACE,
                    lifetime="detached",
                    max_concurrency=2,
                    get_if_exists=True,
                ).remote(self._settings.job_state_dir)
                timeout = START_TIMEOUT_S  # a new process, on a machine that may be busy
            try:
                if ray.get(runner.claim.remote(job_id), timeout=timeout):
                    return runner, name
            except (ray.exceptions.RayError, TimeoutError):
                continue  # dying (cancelled) or stuck: another
        raise StorageError(f"{MAX_RUNNERS} jobs are running; submit again when one ends", 429)

    def _spec(
        self, job_id: str, request: dict[str, Any], files: list[Any], output: str
    ) -> jobs.JobSpec:
        settings = self._settings
        options = request["options"]
        include = request["include"]
        stopwords = options["count"]["stopwords"]
        count = {**options["count"], "stopwords": tuple(stopwords) if stopwords else None}
        cpus = ray.cluster_resources().get("CPU", 1.0)  # type: ignore[no-untyped-call]
        return jobs.JobSpec(
            id=job_id,
            files=tuple(files),
            output=output,
            storage=self._storage.config,
            parse=ParseOptions(
                text_field=request["text_field"],
                id_field=request["id_field"],
                max_record_bytes=settings.max_record_bytes,
                max_decompressed_bytes=settings.max_decompressed_bytes,
            ),
            options=BulkOptions(
                clean=cleaning.CleanOptions(**options["clean"]),
                count=counting.CountOptions(**count),
                include=None if include is None else frozenset(include),
                # Review analytics and dedup (README); duplicates across the whole job take a
                # first pass of signatures (service/job_dedup.py).
                analysis=review.AnalysisOptions(**options.get("analysis", {})),
                dedup=dedup.DedupOptions(**options.get("dedup", {})),
            ),
            format=request["format"],
            output_format=request["output_format"],
            top_words=request["top_words"],
            group_bytes=settings.job_group_bytes,
            worker_cpus=settings.job_worker_cpus,
            max_workers=settings.job_max_workers or max(1, int(cpus)),
            engine=settings.job_engine,
        )

    def get(self, job_id: str) -> dict[str, Any] | None:
        job = self._store.read(job_id)
        return None if job is None else public(self._check_alive(job))

    def list(self) -> list[dict[str, Any]]:
        return [public(self._check_alive(job)) for job in self._store.all()]

    def cancel(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._store.read(job_id)
            if job is None:
                return {"status": 404, "detail": f"no job {job_id}"}
            if job["state"] in TERMINAL:
                return {"status": 409, "detail": f"job {job_id} is already {job['state']}"}
            runner = self._runner_of(job)
            if runner is not None:  # its workers die with it; the next job starts another
                ray.kill(runner)
            job = self._store.read(job_id) or job
            if job["state"] in TERMINAL:  # it finished while we killed it
                return {"job": public(job)}
            job["state"] = "CANCELLED"
            job["error"] = "cancelled"
            self._store.write(job)
        self._metrics.state("CANCELLED")
        return {"job": public(job)}

    # -- the runners --------------------------------------------------------------------------

    def _check_alive(self, job: dict[str, Any]) -> dict[str, Any]:
        """A job that is not done, whose state has not moved for a while and whose runner is
        not on it, lost its driver (the head restarted, or the runner crashed outside the
        pipeline): say so instead of RUNNING forever."""
        if job["state"] in TERMINAL or time.time() - job.get("updated", 0) <= LOST_AFTER_S:
            return job
        if self._runner_of(job) is None:
            with self._lock:
                job = self._store.read(job["id"]) or job
                if job["state"] not in TERMINAL:
                    job["state"] = "FAILED"
                    job["error"] = "the job's driver was lost; submit it again with overwrite"
                    self._store.write(job)
                    self._metrics.state("FAILED")
        return job

    def _runner_of(self, job: dict[str, Any]) -> Any:
        """The runner running `job` now, or None. A runner that does not answer in time and is
        the one the job was given counts as running it (killing it is what cancel needs)."""
        name = job.get("runner")
        if not name:  # a job from before runners were kept
            return None
        try:
            runner = ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return None
        try:
            current: Any = ray.get(runner.current.remote(), timeout=CALL_TIMEOUT_S)
        except TimeoutError:
            return runner
        except ray.exceptions.RayError:
            return None
        return runner if current == job["id"] else None


def registry(settings: dict[str, Any]) -> Any:
    """The registry's handle: created on first use, then the same actor for every replica."""
    return JobRegistry.options(  # type: ignore[attr-defined]
        name=REGISTRY_NAME,
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        max_concurrency=16,  # status polls must not wait behind a submit that lists a bucket
    ).remote(settings)
