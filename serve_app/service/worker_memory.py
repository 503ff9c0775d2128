"""Memory a job's task gives back when it ends.

Ray reuses a task worker for the next task whatever its kind (a group, a merge of partial
summaries), and the allocators keep what a task freed: Arrow's pool (mimalloc) its pages, and
glibc's malloc the top of its heaps (Python's large objects: file bytes, texts, word lists).
Without this, each worker's resident memory stays at the high-water mark of every task it ran,
and the next task's peak comes on top (measured in the commit that added this module).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Callable

import pyarrow as pa

__all__ = ["release_unused"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:  # glibc only; musl and others have no malloc_trim
        trim: Callable[[int], int] = ctypes.CDLL(
            ctypes.util.find_library("c") or "libc.so.6"
        ).malloc_trim
        return trim
    except (OSError, AttributeError):
        return None


def release_unused(*, trim: bool = True) -> None:
    """Arrow's pool returns its free pages; with `trim`, glibc too (10-20 ms after a group's
    ~300 MB of freed heap, so callers choose)."""
    pa.default_memory_pool().release_unused()
    if trim and (malloc_trim := _malloc_trim()) is not None:
        malloc_trim(0)
