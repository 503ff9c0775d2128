"""An upload's partial summaries merged in input order, by whoever `merge` sends them to.

Every chunk of a `/v1/batch` upload comes back with its partial summary packed
(`core.packed_summary`). Merging them in the ingress was most of its CPU during an upload
(a profile of a seed-mode upload: `Counter.update` 43% of the ingress's GIL time, unpickling
the word dicts 21%), so this only keeps the packs in order, each as a `Leaf` numbered by its
place, and hands them, FAN_IN consecutive ones at a time, to `merge` (a replica, in the
service: `summary_parts.merge_ranges`, whose result is split by word); the results are merged
the same way, level by level, as soon as FAN_IN of a level are ready. Every word keeps the key
of its first occurrence, so merging what is left equals one pass over every chunk in input
order, ties in `top_words` included. The upload's length is not known in advance: at its end
`remaining` gives what is left on each level, oldest ranges first, and the caller reduces
those (`batch_stream`: by parts at once, each reading its part alone, since that last merge
reads every distinct word and nothing else runs then).

Pure asyncio: tests pass a local `merge`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from serve_app.core.summary_parts import Leaf, Split

__all__ = ["Merge", "OrderedMerges"]

Merge = Callable[[list[Leaf | Split]], Awaitable[Split]]
_Part = Leaf | Split | asyncio.Task[Split]


class OrderedMerges:
    # Merging costs about the words it reads, and every level reads them again (seed-mode words
    # are mostly distinct: a Chinese sentence is one word): a wide fan-in reads them fewer
    # times. In one process, 451 one-MB chunks of the benchmark's 2,000 seed files (1.97 M
    # distinct words): fan-in 16 5.72 CPU-s, 64 4.23 (the ingress's Counter: 4.06, with the
    # dicts' unpickling); 96 chunks of 400 files: fan-in 4 0.61, 16 0.57, 32 0.50. In the
    # service, an upload of the 2,000 files (seed mode, summary only, `loadtests.bench --jobs
    # --rows seed-single,batch-seed-summary`, quiet machine): fan-in 16 16.4 s (WordCounter
    # 20.2 CPU-s), 64 13.7 s (14.2), 128 15.1 s (15.6); the old in-ingress Counter 15.0 s.
    FAN_IN: Final = 64

    def __init__(self, merge: Merge, *, fan_in: int = FAN_IN) -> None:
        if fan_in < 2:
            raise ValueError("fan_in must be at least 2")
        self._merge = merge
        self._fan_in = fan_in
        self._levels: list[list[_Part]] = [[]]  # each level's parts in input order
        self._tasks: set[asyncio.Task[Split]] = set()
        self._added = 0

    def add(self, packed: bytes) -> None:
        """The next chunk's pack, in input order."""
        part: _Part = Leaf(self._added, packed)
        self._added += 1
        level = 0
        while True:
            if level == len(self._levels):
                self._levels.append([])
            parts = self._levels[level]
            parts.append(part)
            if len(parts) < self._fan_in:
                return
            self._levels[level] = []
            part = self._start(parts)
            level += 1

    async def remaining(self) -> list[Leaf | Split]:
        """What is left unmerged, in input order, once every pack is added: merged, they are
        every pack merged. Higher levels hold earlier ranges."""
        parts = [part for level in reversed(self._levels) for part in level]
        self._levels = [[]]
        return [await _value(part) for part in parts]

    def cancel(self) -> None:
        """Stop the merges in flight (the upload ended without a summary)."""
        for task in self._tasks:
            task.cancel()

    def _start(self, parts: list[_Part]) -> asyncio.Task[Split]:
        task = asyncio.ensure_future(self._merged(parts))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _merged(self, parts: list[_Part]) -> Split:
        return await self._merge([await _value(part) for part in parts])


async def _value(part: _Part) -> Leaf | Split:
    return part if isinstance(part, Leaf | Split) else await part
