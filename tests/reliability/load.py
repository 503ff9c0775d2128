"""A bounded real-time load: N clients in a loop, each waiting for its answer, in a thread.

Even clients send /v1/analyze (served by WordCounter), odd ones /v1/clean (TextCleaner), so
a replica of either deployment that dies has work in flight. Each text is ~50 KB, with a known
word count and cleaned form, so a wrong answer counts as an error too; texts that size keep
the deployments busy. Errors are kept by kind (status code or exception name) with their time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType

import httpx

FILLER = "lorem ipsum dolor sit amet " * 1800  # 9000 words
WORDS_PER_TEXT = 6 + 9000


@dataclass
class LoadStats:
    sent: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    error_times: list[float] = field(default_factory=list)  # monotonic

    def copy(self) -> LoadStats:
        return LoadStats(self.sent, self.ok, Counter(self.errors), list(self.error_times))

    def since(self, earlier: LoadStats) -> LoadStats:
        return LoadStats(
            self.sent - earlier.sent,
            self.ok - earlier.ok,
            self.errors - earlier.errors,
            self.error_times[len(earlier.error_times) :],
        )

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


class BackgroundLoad:
    def __init__(
        self, url: str, *, concurrency: int, headers: Mapping[str, str] | None = None
    ) -> None:
        self.url = url
        self.concurrency = concurrency
        self.headers = dict(headers or {})
        self._stats = LoadStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=180)

    def stats(self) -> LoadStats:
        with self._lock:
            return self._stats.copy()

    def _record(self, error: str | None) -> None:
        with self._lock:
            self._stats.sent += 1
            if error is None:
                self._stats.ok += 1
            else:
                self._stats.errors[error] += 1
                self._stats.error_times.append(time.monotonic())

    async def _run(self) -> None:
        await asyncio.gather(*(self._client(i) for i in range(self.concurrency)))

    async def _client(self, client_id: int) -> None:
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=60) as http:
            n = 0
            while not self._stop.is_set():
                n += 1
                text = f"client{client_id} request{n} 物流很快 great value {FILLER}"
                analyze = client_id % 2 == 0
                try:
                    response = await http.post(
                        "/v1/analyze" if analyze else "/v1/clean", json={"text": text}
                    )
                except httpx.HTTPError as exc:
                    self._record(type(exc).__name__)
                    continue
                if response.status_code != 200:
                    self._record(str(response.status_code))
                elif analyze and response.json().get("word_count") != WORDS_PER_TEXT:
                    self._record("wrong answer")
                elif not analyze and response.json().get("text") != text.strip():
                    self._record("wrong answer")
                else:
                    self._record(None)
