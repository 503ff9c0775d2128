"""Bulk jobs: files where they lie -> groups of ~16 MB -> a worker (reads, parses, cleans,
counts and writes its own shard) -> one small row per group for the driver's progress, and a
partial summary per group -> merged -> `summary.json`, then `_SUCCESS`.

The groups run as plain Ray tasks (`engine="ray-tasks"`, the default, `job_tasks`), each
partial summary split by word into parts (`summary_parts`: one per `summary_part_bytes` of
input, at least one per worker), each part reduced by one task at the end: the driver merges
no word counts, so its serial share stays small as the data grows, and no process holds more
than a part of the job's words, so every process's memory stays flat as the job grows.
Or they run in a Ray Data pipeline (`"ray-data"`: `from_items(groups) ->
map_batches(FileGroupWorker, batch_size=1)` on a fixed actor pool), whose rows carry the
partial summaries to the driver (which merges them: its memory grows with the words).
The same work unit either way; `loadtests.bench.job_engines` measures both (docs/performance.md).

Only paths travel through Ray: a worker reads its files itself and writes its shard itself
(`job_files`), so no record and no file byte passes through the object store or the driver. A
shard's name comes from its group's number and is written whole or not at all
(`storage.AtomicOutput`), so a group run twice (its worker died, Ray ran it again) leaves one
shard, and its summary is merged once: only the attempt that finished is seen. With
dedup.duplicates, a first pass over the same groups comes before (`job_dedup`).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import orjson

from serve_app.core import counting, packed_summary
from serve_app.core.pipeline import BulkOptions, analyze_records
from serve_app.core.records.base import ParseOptions, Record, RecordMaker
from serve_app.core.summary import Summary
from serve_app.service.job_files import ShardWriter, file_records
from serve_app.service.storage import InputFile, Storage, StorageConfig, atomic_output, is_uri

if TYPE_CHECKING:
    from ray import ObjectRef

# Records analyzed (and rows written) at a time: bounds a worker's memory whatever a file's size.
# Without rows, a slice holds only its records' texts while it is counted, so it can be larger
# (fewer whole-slice counts: measured 2.25 -> 1.94 s on 110 MB, seed mode, 4 -> 16 MB).
SLICE_BYTES: Final = 4 << 20
SUMMARY_SLICE_BYTES: Final = 16 << 20
SUCCESS: Final = "_SUCCESS"
SUMMARY: Final = "summary.json"


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything a job's workers need; plain data, pickled once per worker."""

    id: str
    files: tuple[InputFile, ...]
    output: str  # normal form (storage.check)
    storage: StorageConfig
    parse: ParseOptions = ParseOptions()
    options: BulkOptions = BulkOptions()
    format: str = "auto"  # "auto" (by extension) or one of ndjson/json/csv/parquet
    output_format: str = "ndjson"
    top_words: int = 10
    group_bytes: int = 16 << 20
    worker_cpus: float = 0.25
    max_workers: int = 2
    engine: str = "ray-tasks"  # or "ray-data": the same work unit in a Ray Data pipeline
    # Input bytes per part of the summary's words (ray-tasks): a part's reduction holds its
    # words alone, so this bounds its memory whatever the job's size (in seed mode 32 MB of
    # input hold ~0.1 M distinct words; 128 MB parts peaked at 426 MiB private in a 1 GB job
    # against 242 for a 100 MB job's group tasks).
    summary_part_bytes: int = 32 << 20


@dataclass(slots=True)
class GroupResult:
    group: int
    shard: str  # "" when the group had no row to write (summary only, no error)
    files: int
    records: int
    failed: int
    bytes: int
    summary: Summary = field(default_factory=Summary)


def plan_groups(files: Sequence[InputFile], target_bytes: int) -> list[list[InputFile]]:
    """Consecutive files in groups of about `target_bytes` (a larger file is a group alone):
    one Ray Data block each, so a task's fixed cost is paid per ~16 MB, not per file."""
    groups: list[list[InputFile]] = []
    current: list[InputFile] = []
    size = 0
    for item in files:
        if current and size + item.size > target_bytes:
            groups.append(current)
            current, size = [], 0
        current.append(item)
        size += item.size
    if current:
        groups.append(current)
    return groups


# -- the worker --------------------------------------------------------------------------------


def group_slices(
    storage: Storage, spec: JobSpec, files: Sequence[InputFile], slice_bytes: int
) -> Iterator[list[Record]]:
    """A group's records, file after file, a slice of about `slice_bytes` at a time: records
    of consecutive files are analyzed together (the whole-slice word count pays per call, not
    per record), and a worker's memory stays bounded whatever a file's size."""
    pending: list[Record] = []
    pending_bytes = 0
    for item in files:
        fs, path = storage.filesystem(item.uri)
        try:
            # compression=None: our parsers inflate .gz themselves, within their limits.
            stream = fs.open_input_stream(path, compression=None)
        except OSError as exc:  # gone or unreadable since it was listed: an error row
            pending.append(RecordMaker(spec.parse, source=item.uri).error(f"file: {exc}", 0))
            continue
        with stream:
            for record in file_records(stream, item.uri, spec.format, spec.parse):
                pending.append(record)
                pending_bytes += record.size
                if pending_bytes >= slice_bytes:
                    yield pending
                    pending, pending_bytes = [], 0
    if pending:
        yield pending


def slice_bytes(options: BulkOptions) -> int:
    include = options.include
    return SUMMARY_SLICE_BYTES if include is not None and not include else SLICE_BYTES


# A record's (source, index) -> its duplicate_of, from the job's first pass (job_dedup).
KnownDuplicates = Mapping[tuple[str | None, int], Any]


def process_group(
    storage: Storage,
    spec: JobSpec,
    group: int,
    files: Sequence[InputFile],
    known_duplicates: KnownDuplicates | None = None,
) -> GroupResult:
    result = GroupResult(group=group, shard="", files=len(files), records=0, failed=0, bytes=0)
    writer = ShardWriter(
        storage,
        output=spec.output,
        output_format=spec.output_format,
        options=spec.options,
        group=group,
    )
    try:
        for records in group_slices(storage, spec, files, slice_bytes(spec.options)):
            analysis = analyze_records(
                records,
                spec.options,
                known_duplicates=known_duplicates,
                json_counts=spec.output_format == "ndjson",
            )
            writer.write(analysis.rows)
            result.summary.merge(analysis.summary)
            result.records += analysis.summary.records
            result.failed += analysis.summary.failed
    except BaseException as exc:
        writer.close(exc)
        raise
    result.bytes = sum(item.size for item in files)
    result.shard = writer.close()
    return result


class FileGroupWorker:
    """The Ray Data UDF: one group (a batch of one row) in, one small row out."""

    def __init__(self, spec: JobSpec) -> None:
        self._spec = spec
        self._storage = Storage(spec.storage)
        if spec.options.count.tokenizer == "auto":
            counting.warm_up()  # the dictionaries load once per worker, as in a replica

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {key: [] for key in ROW_KEYS}
        for k in range(len(batch["group"])):
            result = self.process(batch, k)
            for key in ROW_KEYS[:-1]:
                out[key].append(getattr(result, key))
            out["summary"].append(packed_summary.pack(result.summary))
        return out

    def process(self, batch: Mapping[str, Sequence[Any]], k: int) -> GroupResult:
        """The batch's k-th group."""
        items = [InputFile(uri, int(size)) for uri, size in orjson.loads(batch["files"][k])]
        duplicates = batch.get("duplicates")  # with dedup.duplicates: the first pass's findings
        known = None if duplicates is None else decode_duplicates(duplicates[k])
        return process_group(self._storage, self._spec, int(batch["group"][k]), items, known)


ROW_KEYS: Final = ("group", "shard", "files", "records", "failed", "bytes", "summary")


def decode_duplicates(encoded: str | bytes) -> dict[tuple[str | None, int], Any]:
    """A group's `duplicates` from the first pass (`job_dedup`: JSON `{"sources": {file number:
    uri}, "pairs": [[file, index, earlier file, earlier index], ...]}`) as `analyze_records`
    takes them: `duplicate_of` is the earlier record's source and index."""
    data = orjson.loads(encoded)
    sources = {int(number): uri for number, uri in data["sources"].items()}
    return {
        (sources[file], index): {"source": sources[first_file], "index": first_index}
        for file, index, first_file, first_index in data["pairs"]
    }


# -- the driver --------------------------------------------------------------------------------


@dataclass(slots=True)
class Progress:
    files_total: int
    bytes_total: int
    started: float = field(default_factory=time.monotonic)
    files_done: int = 0
    records: int = 0
    failed: int = 0
    bytes: int = 0

    @classmethod
    def of(cls, files: Sequence[InputFile], *, passes: int = 1) -> Progress:
        """Before any work; with two passes (dedup.duplicates) every file counts twice in
        `bytes_total` and `bytes`, as it is read twice."""
        return cls(len(files), passes * sum(f.size for f in files))

    def to_dict(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        rate = self.bytes / elapsed if elapsed > 0 else 0.0
        left = self.bytes_total - self.bytes
        return {
            "files_total": self.files_total,
            "files_done": self.files_done,
            "records": self.records,
            "failed": self.failed,
            "bytes": self.bytes,
            "bytes_total": self.bytes_total,
            "elapsed_s": round(elapsed, 3),
            "mb_per_s": round(rate / 1e6, 3),
            "eta_s": round(left / rate, 1) if rate > 0 else None,
        }


def passes(options: BulkOptions) -> int:
    """Over every file: one, or two with dedup.duplicates (signatures first, job_dedup)."""
    return 2 if options.dedup.duplicates else 1


def group_bytes(spec: JobSpec) -> int:
    """spec.group_bytes, or less for a small job: at least GROUPS_PER_WORKER groups per worker,
    so the last group to finish is a small one and no worker idles long at the end."""
    total = sum(f.size for f in spec.files)
    balanced = total // max(1, spec.max_workers * GROUPS_PER_WORKER)
    return max(MIN_GROUP_BYTES, min(spec.group_bytes, balanced))


GROUPS_PER_WORKER: Final = 4
MIN_GROUP_BYTES: Final = 1 << 20


def group_items(spec: JobSpec) -> list[dict[str, Any]]:
    """One item per group: its number, its files as JSON, and the job-wide number of its first
    file (`first_file`, for the first pass of dedup.duplicates)."""
    items = []
    first_file = 0
    for i, group in enumerate(plan_groups(spec.files, group_bytes(spec))):
        files = orjson.dumps([[f.uri, f.size] for f in group]).decode()
        items.append({"group": i, "files": files, "first_file": first_file})
        first_file += len(group)
    return items


def run_pipeline(
    spec: JobSpec, on_progress: Callable[[Progress, GroupResult], None]
) -> tuple[dict[str, Any], Progress]:
    """Run the job from this process (its driver), which sees one small row per group as it
    finishes. Returns the job's summary (`Summary.to_dict` with `spec.top_words`) and the final
    progress; call `write_markers` after it."""
    items = group_items(spec)
    progress = Progress.of(spec.files, passes=passes(spec.options))
    if spec.options.dedup.duplicates:
        from serve_app.service import job_dedup

        def signed(group_bytes: int) -> None:  # the first pass moves the progress too
            progress.bytes += group_bytes
            on_progress(
                progress, GroupResult(group=-1, shard="", files=0, records=0, failed=0, bytes=0)
            )

        items = job_dedup.with_duplicates(spec, items, signed)
    if spec.engine == "ray-tasks":
        from serve_app.service import job_tasks

        rows, finish = job_tasks.task_rows(spec, items)
    else:
        rows, finish = _dataset_rows(spec, items)
    for row in rows:
        result = GroupResult(
            group=int(row["group"]),
            shard=str(row["shard"]),
            files=int(row["files"]),
            records=int(row["records"]),
            failed=int(row["failed"]),
            bytes=int(row["bytes"]),
        )
        progress.files_done += result.files
        progress.records += result.records
        progress.failed += result.failed
        progress.bytes += result.bytes
        on_progress(progress, result)
    return finish(), progress


Rows = Iterator[dict[str, Any]]


def dataset_rows(spec: JobSpec, items: list[dict[str, Any]], worker: type) -> Rows:
    """The groups through a Ray Data pipeline, `worker` (a class UDF built from the spec) on a
    fixed actor pool; its rows as they come."""
    import ray.data
    from ray.data import ActorPoolStrategy, DataContext

    if not items:
        return
    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        worker,
        # Without the file list (the groups carry it): small arguments travel inline, and a
        # restarted worker never needs an object that may be gone.
        fn_constructor_args=(dataclasses.replace(spec, files=()),),
        batch_size=1,
        batch_format="numpy",
        num_cpus=spec.worker_cpus,
        # A fixed pool: every worker starts at once instead of as the autoscaler catches up.
        compute=ActorPoolStrategy(size=max(1, min(spec.max_workers, len(items)))),
    )
    yield from dataset.iter_rows()


def group_task_options(spec: JobSpec) -> dict[str, Any]:
    """A group's task: retried when its worker dies, and SPREAD, as Ray Data schedules its
    tasks: with fractional CPUs, the default policy packs every task in flight onto the
    driver's node while it has room, and other nodes idle."""
    return {"num_cpus": spec.worker_cpus, "max_retries": -1, "scheduling_strategy": "SPREAD"}


Started = tuple["ObjectRef[Any]", Any]  # (the ref to wait for, what the caller keeps with it)


def tasks_in_flight(
    spec: JobSpec, items: list[dict[str, Any]], start: Callable[[dict[str, Any]], Started]
) -> Iterator[Started]:
    """`start` each item as a task, one per worker in flight (bounded memory; Ray ends idle task
    workers above its soft limit, so every extra process in flight starts cold); yields each
    (ref, kept) as it finishes, then starts the next."""
    import ray

    queue = iter(items)
    pending: dict[Any, Any] = {}

    def submit(count: int) -> None:
        for item in itertools.islice(queue, count):
            ref, kept = start(item)
            pending[ref] = kept

    submit(spec.max_workers)
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            yield ref, pending.pop(ref)
            submit(1)


def _dataset_rows(
    spec: JobSpec, items: list[dict[str, Any]]
) -> tuple[Rows, Callable[[], dict[str, Any]]]:
    """Ray Data: each group's row carries its partial summary, merged here as rows arrive."""
    summary = Summary()

    def rows() -> Rows:
        for row in dataset_rows(spec, items, FileGroupWorker):
            summary.merge(packed_summary.unpack(row["summary"]))
            yield row

    return rows(), lambda: summary.to_dict(spec.top_words)


def write_markers(storage: Storage, spec: JobSpec, summary: dict[str, Any]) -> None:
    """summary.json, then _SUCCESS: a reader that sees _SUCCESS sees every shard and the summary."""
    fs, base = storage.filesystem(spec.output)
    local = not is_uri(spec.output)
    base = base.rstrip("/")
    with atomic_output(fs, f"{base}/{SUMMARY}", local=local) as out:
        out.stream.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    with atomic_output(fs, f"{base}/{SUCCESS}", local=local) as out:
        out.stream.write(b"")


def prepare_output(storage: Storage, spec: JobSpec, *, overwrite: bool) -> None:
    """The output directory, made; with overwrite, without the shards, summary and marker of
    an earlier run, so none of its shards can pass for this run's."""
    fs, base = storage.filesystem(spec.output)
    fs.create_dir(base, recursive=True)
    if not overwrite:
        return
    for name in storage.output_entries(spec.output):
        if name.startswith(("part-", ".tmp-")) or name in (SUMMARY, SUCCESS):
            fs.delete_file(f"{base.rstrip('/')}/{name}")
