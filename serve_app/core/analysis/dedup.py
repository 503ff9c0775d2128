"""Exact and near-duplicate reviews: signatures made where the records are cleaned, one index
where they meet in input order.

A record's key is its cleaned text case-folded with everything but letters and digits taken
out ("Great, GREAT!" and "great great" are one). Exact duplicates share the key's hash; near
duplicates share most character 3-grams of it: a 64-value MinHash, banded for
locality-sensitive lookup (8 x 8 at the default threshold of 0.8: candidates from ~0.77
Jaccard up), then kept only when the estimated Jaccard similarity reaches the threshold. Keys
shorter than 8 characters ("好评", "good") are only ever exact duplicates: a 3-gram set that
small says nothing.

The hashes are stable across processes (BLAKE2b, fixed seeds), so signatures made on different
replicas compare. `DuplicateIndex` keeps up to `exact_capacity` keys (~100 bytes each) and
`capacity` signatures (~600 bytes each with their bands): past that, later records are still
checked against what it holds but not added (`full` says so; no summary reports it yet).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np
import regex

from serve_app.core.summary import Summary

Key = TypeVar("Key", str, int)

__all__ = [
    "DedupOptions",
    "DuplicateIndex",
    "Signature",
    "mark_duplicates",
    "signature",
    "signatures",
    "splice_duplicate",
]

NUM_PERM: Final = 64
# (bands, rows) splits of the signature; a pair of similarity s becomes a candidate with
# probability 1 - (1 - s^rows)^bands, which rises steeply near (1/bands)^(1/rows).
_BANDINGS: Final = ((4, 16), (8, 8), (16, 4), (32, 2))
SHINGLE: Final = 3
MIN_NEAR_CHARS: Final = 8
_PRIME: Final = (1 << 61) - 1
_rng = np.random.default_rng(0x5EED_2026)  # fixed: every process draws the same permutations
_A: Final = _rng.integers(1, _PRIME, size=NUM_PERM, dtype=np.uint64)
_B: Final = _rng.integers(0, _PRIME, size=NUM_PERM, dtype=np.uint64)
_NOT_ALNUM: Any = regex.compile(r"[^\p{L}\p{N}]+")


@dataclass(frozen=True, slots=True)
class DedupOptions:
    """Bulk options: flag duplicates of an earlier record (`duplicate_of`) and default reviews
    (`boilerplate`), count them in the summary, and optionally leave them out of the words."""

    duplicates: bool = False
    boilerplate: bool = False
    threshold: float = 0.8
    exclude_from_counts: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], not {self.threshold}")

    @property
    def any(self) -> bool:
        return self.duplicates or self.boilerplate


@dataclass(frozen=True, slots=True)
class Signature:
    exact: bytes  # 8 bytes; empty for a text with no letter or digit (never a duplicate)
    minhash: bytes | None  # NUM_PERM uint32 values; None for a short key


def _key(text: str) -> str:
    key: str = _NOT_ALNUM.sub("", text.casefold())
    return key


def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


# Reviews share most of their 3-grams (one language's letters, the same words), so each
# process remembers the hashes it made: a dict lookup instead of a BLAKE2b call per 3-gram,
# the same values. Cleared when full, so memory stays bounded (~150 bytes per entry).
_SHINGLE_CACHE: dict[str, int] = {}
SHINGLE_CACHE_SIZE: Final = 200_000


def _cached_hashes(
    cache: dict[Key, int], keys: Collection[Key], shingle: Callable[[Key], str]
) -> list[int]:
    """Each key's 3-gram hash, from `cache` where it was made before (a miss only calls
    `shingle`, so the hits cost a dict lookup)."""
    if len(cache) + len(keys) > SHINGLE_CACHE_SIZE:
        cache.clear()
    hashes = []
    for key in keys:
        value = cache.get(key)
        if value is None:
            value = cache[key] = _hash64(shingle(key).encode("utf-8")) & 0xFFFFFFFF
        hashes.append(value)
    return hashes


def _shingle_hashes(shingles: set[str]) -> list[int]:
    return _cached_hashes(_SHINGLE_CACHE, shingles, str)


# Past this many characters, a key's distinct 3-grams are found by numpy (each 3-gram as one
# integer of its three code points, 21 bits each): a whole review file has few distinct
# 3-grams for its length (~5% in seed-shaped files), and slicing every one out in Python was
# half of its signature's cost.
LONG_KEY: Final = 2048
_LONG_CACHE: dict[int, int] = {}
_BITS: Final = np.uint64(21)
_CODE: Final = (1 << 21) - 1


def _long_shingle_hashes(key: str) -> list[int]:
    points = np.frombuffer(key.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    ids = (points[:-2] << (_BITS + _BITS)) | (points[1:-1] << _BITS) | points[2:]
    unique: list[int] = np.unique(ids).tolist()
    return _cached_hashes(_LONG_CACHE, unique, _unpacked)


def _unpacked(packed: int) -> str:
    return chr(packed >> 42) + chr((packed >> 21) & _CODE) + chr(packed & _CODE)


def signature(text: str) -> Signature:
    return signatures([text])[0]


# Hashes permuted at a time: bounds the (hashes x NUM_PERM) matrix (8 MB of uint64) whatever
# the texts' size; and hashes gathered before they are.
_BATCH_HASHES: Final = 16_384
_FLUSH_HASHES: Final = 8 * _BATCH_HASHES
_P: Final = np.uint64(_PRIME)
_LOW32: Final = np.uint64(0xFFFFFFFF)
_SHIFT: Final = np.uint64(61)


def signatures(texts: Sequence[str]) -> list[Signature]:
    """`signature` of each text, the MinHashes of many short texts computed in one matrix:
    numpy's per-call cost, not the arithmetic, is most of a short review's signature."""
    found: list[Signature] = []
    near: list[int] = []  # positions in `found` still waiting for their MinHash
    flat: list[int] = []  # their 3-gram hashes, one text after another
    starts: list[int] = []
    for text in texts:
        key = _key(text)
        if not key:
            found.append(Signature(b"", None))
            continue
        exact = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
        found.append(Signature(exact, None))
        if len(key) < MIN_NEAR_CHARS:
            continue
        near.append(len(found) - 1)
        starts.append(len(flat))
        if len(key) < LONG_KEY:
            flat += _shingle_hashes({key[i : i + SHINGLE] for i in range(len(key) - SHINGLE + 1)})
        else:
            flat += _long_shingle_hashes(key)
        if len(flat) >= _FLUSH_HASHES:  # bounds the list of Python ints too
            _sign(found, near, flat, starts)
            near, flat, starts = [], [], []
    if near:
        _sign(found, near, flat, starts)
    return found


def _sign(found: list[Signature], near: list[int], flat: list[int], starts: list[int]) -> None:
    """The MinHashes of the texts at `near`, whose hashes start at `starts` in `flat`: the
    hashes permuted a window at a time, each text's minima merged across windows."""
    minima = np.full((len(near), NUM_PERM), 0xFFFFFFFF, dtype=np.uint64)
    for low in range(0, len(flat), _BATCH_HASHES):
        high = min(low + _BATCH_HASHES, len(flat))
        first = bisect.bisect_right(starts, low) - 1  # the texts with hashes in [low, high)
        end = bisect.bisect_left(starts, high)
        offsets = [max(start, low) - low for start in starts[first:end]]
        window = np.minimum.reduceat(_permuted(flat[low:high]), offsets, axis=0)
        np.minimum(minima[first:end], window, out=minima[first:end])
    for position, row in zip(near, minima.astype(np.uint32), strict=True):
        found[position] = Signature(found[position].exact, row.tobytes())


def _permuted(hashes: list[int]) -> np.ndarray[Any, np.dtype[np.uint64]]:
    # (a * h + b) mod p per permutation, wrapping at 2^64 as datasketch's does: still one fixed
    # pseudo-random permutation of the hashes per row, which is all MinHash needs. p = 2^61 - 1,
    # so x mod p is (x & p) + (x >> 61), less p once if that reaches p: no division.
    values = np.array(hashes, dtype=np.uint64)[:, None] * _A
    values += _B
    high = values >> _SHIFT
    values &= _P
    values += high
    np.subtract(values, _P, out=values, where=values >= _P)
    values &= _LOW32
    return values


class DuplicateIndex:
    """Records in input order; `check` says which earlier record one duplicates (and indexes
    it when it duplicates none)."""

    def __init__(
        self, *, threshold: float = 0.8, capacity: int = 100_000, exact_capacity: int = 1_000_000
    ) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], not {threshold}")
        self.threshold = threshold
        self.capacity = capacity
        self.exact_capacity = exact_capacity
        # the strictest banding whose steep part starts at or below the threshold
        self._bands_n, self._rows = next(
            ((b, r) for b, r in _BANDINGS if (1 / b) ** (1 / r) <= threshold), _BANDINGS[-1]
        )
        self.full = False
        self.marked = 0  # records shown to it through mark_duplicates: the next one's index
        self._exact: dict[bytes, int] = {}
        self._bands: list[dict[bytes, list[int]]] = [{} for _ in range(self._bands_n)]
        self._signatures: dict[int, np.ndarray[Any, np.dtype[np.uint32]]] = {}

    def check(self, index: int, sig: Signature) -> int | None:
        if not sig.exact:
            return None
        first = self._exact.get(sig.exact)
        if first is not None:
            return first
        if sig.minhash is None:
            self._remember(sig.exact, index)
            return None
        values = np.frombuffer(sig.minhash, dtype=np.uint32)
        width = self._rows * 4  # bytes
        bands = [sig.minhash[b * width : (b + 1) * width] for b in range(self._bands_n)]
        candidates = sorted(
            {c for table, band in zip(self._bands, bands) for c in table.get(band, ())}
        )
        for candidate in candidates:
            similar = float(np.count_nonzero(self._signatures[candidate] == values)) / NUM_PERM
            if similar >= self.threshold:
                return candidate
        self._remember(sig.exact, index)
        if len(self._signatures) >= self.capacity:
            self.full = True
            return None
        self._signatures[index] = values
        for table, band in zip(self._bands, bands):
            table.setdefault(band, []).append(index)
        return None

    def _remember(self, exact: bytes, index: int) -> None:
        if len(self._exact) >= self.exact_capacity:
            self.full = True
            return
        self._exact[exact] = index


def splice_duplicate(row: bytes, first: int) -> bytes:
    """Add `"duplicate_of": first` to a serialized JSON object row."""
    field = b'"duplicate_of":' + str(first).encode()
    return field.join((b"{", b"}")) if row == b"{}" else row[:-1] + b"," + field + b"}"


SignatureState = tuple[bytes, bytes | None] | None  # per record; None for an error record
Words = tuple[int, dict[str, int]] | None  # per record; None when not to be taken back


def mark_duplicates(
    lines: bytes,
    first: int,
    signatures: Sequence[SignatureState],
    words: Sequence[Words] | None,
    index: DuplicateIndex,
    summary: Summary,
) -> bytes:
    """Check a chunk's records against the upload's index, in order: `duplicate_of` spliced
    into their lines (when there are lines), counted in the chunk's summary, and their words
    taken back out of it when `words` says so.

    The records are numbered by the index's own count of the records it was shown (`first`,
    the caller's number for the chunk's first line, is the same when there are lines): a
    summary-only upload has no lines, so its caller's numbering never moved past 0, and
    records of different chunks shared indices in the index, where one's MinHash replaced the
    other's and near duplicates were missed."""
    del first  # kept for the callers; see above
    start = index.marked
    index.marked += len(signatures)
    rows = lines.split(b"\n") if lines else None
    for k, state in enumerate(signatures):
        if state is None:
            continue
        found = index.check(start + k, Signature(*state))
        summary.add_flags(duplicate=found is not None)
        if found is None:
            continue
        if rows is not None:
            rows[k] = splice_duplicate(rows[k], found)
        if words is not None and (taken := words[k]) is not None:
            summary.remove_words(word_count=taken[0], word_counts=taken[1])
    return b"\n".join(rows) if rows is not None else lines
