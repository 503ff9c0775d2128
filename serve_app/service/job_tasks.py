"""The ray-tasks engine (`jobs.run_pipeline`'s default): each group a plain Ray task, one per
worker in flight (`jobs.tasks_in_flight`), its partial summary split by word into parts
(`summary_parts`), each part reduced by one task at the end. No process holds more than a part
of the job's distinct words, which grow with the corpus, so every process's memory stays flat
as the job grows (docs/performance.md, 2026-12-07).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from serve_app.core import summary_parts
from serve_app.core.summary import Summary
from serve_app.service import worker_memory
from serve_app.service.jobs import (
    ROW_KEYS,
    FileGroupWorker,
    JobSpec,
    Rows,
    Started,
    group_task_options,
    tasks_in_flight,
)

if TYPE_CHECKING:
    from ray import ObjectRef


def summary_part_count(spec: JobSpec) -> int:
    """Parts of the summary's words: one per spec.summary_part_bytes of input and at least one
    per worker (the reductions at the end keep every worker busy)."""
    total = sum(f.size for f in spec.files)
    return max(1, spec.max_workers, -(-total // max(1, spec.summary_part_bytes)))


def task_rows(
    spec: JobSpec, items: list[dict[str, Any]]
) -> tuple[Rows, Callable[[], dict[str, Any]]]:
    """The same groups as plain Ray tasks (`tasks_in_flight`); a task whose worker died is run
    again by Ray (max_retries), and its shard replaced. Each task's partial summary, split by
    word into parts (`summary_parts`), stays in the object store; at the end each part is
    reduced by one task, a worker's worth of parts in flight at a time (warm workers, no new
    process): the driver only sees the small rows and each part's few top words."""
    import ray

    parts = summary_part_count(spec)
    task = ray.remote(_group_task).options(num_returns=2, **group_task_options(spec))
    by_group: dict[int, ObjectRef[Any]] = {}  # each group's packs

    def rows() -> Rows:
        light = ray.put(dataclasses.replace(spec, files=()))

        def start(item: dict[str, Any]) -> Started:
            refs: list[ObjectRef[Any]] = task.remote(light, item, parts)  # type: ignore[assignment]
            return refs[0], (item["group"], refs[1])

        for ref, (group, packs_ref) in tasks_in_flight(spec, items, start):
            row: dict[str, Any] = ray.get(ref)
            yield row
            by_group[group] = packs_ref

    def finish() -> dict[str, Any]:
        if not items:
            return Summary().to_dict(spec.top_words)
        packs = [by_group[group] for group in sorted(by_group)]  # in group order: ties break
        reduce = ray.remote(_reduce_task).options(**group_task_options(spec))

        def start(item: dict[str, Any]) -> Started:
            return reduce.remote(spec.top_words, item["part"], *packs), item["part"]

        heads: list[dict[str, Any]] = [{} for _ in range(parts)]
        reductions = [{"part": part} for part in range(parts)]
        for ref, part in tasks_in_flight(spec, reductions, start):
            heads[part] = ray.get(ref)
        return summary_parts.combine(heads, spec.top_words)

    return rows(), finish


# A group's packs, one per part, in one object: (their ends, their bytes as a uint8 array).
# One object per group whatever the parts (an object per part, once below 100 KB, would be
# inlined in the driver's memory); numpy travels out of band, so a reduction maps its part's
# bytes from the object store, not a copy of every part.
GroupPacks = tuple[list[int], "np.ndarray[Any, np.dtype[np.uint8]]"]


def _group_task(spec: JobSpec, item: dict[str, Any], parts: int) -> tuple[Any, GroupPacks]:
    """The group's row and its summary's `parts` packs."""
    worker = _WORKERS.get(spec.id)
    if worker is None:  # one per job per worker process: the dictionaries load once
        _WORKERS.clear()
        worker = _WORKERS[spec.id] = FileGroupWorker(spec)
    result = worker.process({key: [value] for key, value in item.items()}, 0)
    row = {key: getattr(result, key) for key in ROW_KEYS[:-1]}
    packs = summary_parts.split(result.summary, parts=parts, origin=result.group)
    joined = np.frombuffer(b"".join(packs), dtype=np.uint8)
    ends = list(itertools.accumulate(map(len, packs)))
    del result, packs
    worker_memory.release_unused(trim=False)  # trimming after every group costs 2-8% of its CPU
    return row, (ends, joined)


def _reduce_task(top_words: int, part: int, *groups: GroupPacks) -> dict[str, Any]:
    """Part `part` of every group's packs (in group order) merged into its head. The worker
    ran groups before: their freed heap goes back first, so that this peak does not come on
    top of theirs."""
    worker_memory.release_unused()
    packs = []
    for ends, joined in groups:
        start = ends[part - 1] if part else 0
        packs.append(pa.py_buffer(joined).slice(start, ends[part] - start))
    head = summary_parts.reduce(packs, top_words)
    worker_memory.release_unused()
    return head


_WORKERS: dict[str, FileGroupWorker] = {}
