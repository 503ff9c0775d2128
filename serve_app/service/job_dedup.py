"""`dedup.duplicates` across a whole job: a first pass of the job's workers over the same groups
of files cleans each record and sends back only its signature (`core.analysis.dedup`: an
8-byte key hash and, for longer texts, a 64-value MinHash); the driver checks the signatures
in input order against one `DuplicateIndex`, and the normal pass gets each group's duplicates
(`jobs.decode_duplicates`), so its rows carry `duplicate_of` and its partial summaries count,
or leave out, those records.

In a job, `duplicate_of` is `{"source": ..., "index": ...}`: the earlier record's own `source`
and `index`, as its row shows them. "Earlier" is input order: the job's files in their order
(inputs as given, each expanded sorted), records in file order. Neither depends on how the
files were grouped, how many workers ran, or which attempt of a group finished: groups are
checked in group order whatever order they finish in, so a job run twice flags the same
records with the same `duplicate_of`.

The driver never sees a record: per record ~280 bytes of signature travel once, and the index
keeps what `/v1/batch`'s does (up to 1,000,000 keys and 100,000 MinHashes, ~1.5 KB per
indexed near-duplicate candidate with its bands). Each file is read and cleaned twice.
"""

from __future__ import annotations

import dataclasses
import struct
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import orjson

from serve_app.core import cleaning
from serve_app.core.analysis import dedup
from serve_app.service import jobs
from serve_app.service.storage import InputFile, Storage

# A record's key in the index: its file's number in the job, then its index in that file, so
# keys sort in input order (the index breaks ties between candidates by the earliest key).
INDEX_BITS: Final = 32
_EXACT: Final = 8
_MINHASH: Final = dedup.NUM_PERM * 4


def record_key(file_number: int, index: int) -> int:
    return (file_number << INDEX_BITS) | index


def split_key(key: int) -> tuple[int, int]:
    return key >> INDEX_BITS, key & ((1 << INDEX_BITS) - 1)


# -- the workers' side -------------------------------------------------------------------------


def pack(signed: Sequence[tuple[int, dedup.Signature]]) -> bytes:
    """Keys and signatures as one compact blob: count, keys, exact hashes, MinHash flags, then
    the MinHashes of the records that have one."""
    keys = array("q", [key for key, _ in signed])
    exact = b"".join(sig.exact for _, sig in signed)
    flags = bytes(sig.minhash is not None for _, sig in signed)
    minhashes = b"".join(sig.minhash for _, sig in signed if sig.minhash is not None)
    return struct.pack("<q", len(signed)) + keys.tobytes() + exact + flags + minhashes


def unpack(blob: bytes) -> Iterator[tuple[int, dedup.Signature]]:
    (count,) = struct.unpack_from("<q", blob)
    at = 8
    keys = array("q")
    keys.frombytes(blob[at : at + 8 * count])
    at += 8 * count
    exact_at, at = at, at + _EXACT * count
    flags = blob[at : at + count]
    at += count
    for k, key in enumerate(keys):
        exact = blob[exact_at + _EXACT * k : exact_at + _EXACT * (k + 1)]
        minhash = None
        if flags[k]:
            minhash, at = blob[at : at + _MINHASH], at + _MINHASH
        yield key, dedup.Signature(exact, minhash)


def group_signatures(
    storage: Storage, spec: jobs.JobSpec, first_file: int, files: Sequence[InputFile]
) -> bytes:
    """The first pass over one group: every good record's key and signature, in order. The
    records are read and cleaned as the normal pass does (`jobs.group_slices`), not counted."""
    numbers = {item.uri: first_file + n for n, item in enumerate(files)}
    signed: list[tuple[int, dedup.Signature]] = []
    for records in jobs.group_slices(storage, spec, files, jobs.SUMMARY_SLICE_BYTES):
        good = [r for r in records if r.error is None and r.text is not None]
        texts = cleaning.clean_many([r.text for r in good], spec.options.clean)  # type: ignore[misc]
        for record, sig in zip(good, dedup.signatures(texts), strict=True):
            if sig.exact:  # no letter or digit: never a duplicate, nor an original
                assert record.source is not None
                signed.append((record_key(numbers[record.source], record.index), sig))
    return pack(signed)


class SignatureWorker:
    """The Ray Data UDF of the first pass: one group in, its signatures out."""

    def __init__(self, spec: jobs.JobSpec) -> None:
        self._spec = spec
        self._storage = Storage(spec.storage)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"group": [], "signatures": []}
        for group, files, first in zip(
            batch["group"], batch["files"], batch["first_file"], strict=True
        ):
            items = [InputFile(uri, int(size)) for uri, size in orjson.loads(files)]
            out["group"].append(int(group))
            out["signatures"].append(group_signatures(self._storage, self._spec, int(first), items))
        return out


def _signature_task(spec: jobs.JobSpec, item: dict[str, Any]) -> bytes:
    worker = _WORKERS.get(spec.id)
    if worker is None:
        _WORKERS.clear()
        worker = _WORKERS[spec.id] = SignatureWorker(spec)
    out = worker({key: [item[key]] for key in ("group", "files", "first_file")})
    blob: bytes = out["signatures"][0]
    return blob


_WORKERS: dict[str, SignatureWorker] = {}


# -- the driver's side -------------------------------------------------------------------------


class DuplicateResolver:
    """Groups' signatures in, in whatever order they finish; checked in group order against
    one index. `pairs[group]` holds (key, key of the earlier record) per duplicate found."""

    def __init__(self, groups: int, threshold: float) -> None:
        self.index = dedup.DuplicateIndex(threshold=threshold)
        self.pairs: list[array[int]] = [array("q") for _ in range(groups)]
        self._waiting: dict[int, bytes] = {}
        self._next = 0

    def add(self, group: int, blob: bytes) -> None:
        self._waiting[group] = blob
        while self._next in self._waiting:
            found = self.pairs[self._next]
            for key, sig in unpack(self._waiting.pop(self._next)):
                first = self.index.check(key, sig)
                if first is not None:
                    found.extend((key, first))
            self._next += 1

    @property
    def done(self) -> bool:
        return self._next == len(self.pairs)

    def encoded(self, group: int, files: Sequence[InputFile]) -> str:
        """The group's duplicates as `jobs.decode_duplicates` reads them."""
        found = self.pairs[group]
        quads = []
        sources: dict[int, str] = {}
        for k in range(0, len(found), 2):
            (file_number, index), (first_file, first_index) = (
                split_key(found[k]),
                split_key(found[k + 1]),
            )
            sources.setdefault(file_number, files[file_number].uri)
            sources.setdefault(first_file, files[first_file].uri)
            quads.append([file_number, index, first_file, first_index])
        return orjson.dumps(
            {"sources": sources, "pairs": quads}, option=orjson.OPT_NON_STR_KEYS
        ).decode()


def with_duplicates(
    spec: jobs.JobSpec, items: list[dict[str, Any]], on_group: Callable[[int], None]
) -> list[dict[str, Any]]:
    """Run the first pass over `items` (jobs.group_items) on the job's engine; the same items,
    each with its group's `duplicates`. `on_group(bytes)` after each group's signatures."""
    resolver = DuplicateResolver(len(items), spec.options.dedup.threshold)
    sizes = {item["group"]: sum(size for _, size in orjson.loads(item["files"])) for item in items}
    signatures = _task_signatures if spec.engine == "ray-tasks" else _dataset_signatures
    for group, blob in signatures(spec, items):
        resolver.add(group, blob)
        on_group(sizes[group])
    assert resolver.done, "a group's signatures never came"
    return [{**item, "duplicates": resolver.encoded(item["group"], spec.files)} for item in items]


Signatures = Iterator[tuple[int, bytes]]


def _task_signatures(spec: jobs.JobSpec, items: list[dict[str, Any]]) -> Signatures:
    """As `jobs._task_rows` runs groups (the signatures of a group do not depend on the
    attempt, so a retried task gives the same)."""
    import ray

    task = ray.remote(_signature_task).options(**jobs.group_task_options(spec))
    light = ray.put(dataclasses.replace(spec, files=()))

    def start(item: dict[str, Any]) -> jobs.Started:
        return task.remote(light, item), item["group"]

    for ref, group in jobs.tasks_in_flight(spec, items, start):
        packed: bytes = ray.get(ref)
        yield group, packed


def _dataset_signatures(spec: jobs.JobSpec, items: list[dict[str, Any]]) -> Signatures:
    """As `jobs._dataset_rows` runs groups: a Ray Data pipeline on a fixed actor pool."""
    for row in jobs.dataset_rows(spec, items, SignatureWorker):
        yield int(row["group"]), bytes(row["signatures"])
