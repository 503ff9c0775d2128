"""Locust load test for cleanserve: traffic shaped like a review site's, every answer checked.

    locust --config serve_app/ops/loadtest/locust.conf          # web UI, steady profile
    locust --config serve_app/ops/loadtest/locust.conf --headless --shape step
    cleanserve loadtest --shape step                            # + service, replicas, chart

`ReviewUser` is the real-time traffic: mostly short reviews to /v1/analyze, some to /v1/clean
and /v1/count, a few long ones (20-200 KB) and the seed-compatible options. `BulkUser` is one
client uploading a few MB of NDJSON to /v1/batch now and then and reading the stream to its
end. `--shape` picks the load profile (profiles.py); `steady` is Locust's own -u/-r/-t.
Runs in Locust's gevent-patched process: nothing here or in the siblings it imports imports
Ray or the service.
"""

from __future__ import annotations

import functools
import itertools
import json
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from locust import (
    FastHttpUser,
    LoadTestShape,
    between,
    constant,
    constant_throughput,
    events,
    task,
)

# Locust imports this file by path: put the tree it sits in first, so the siblings below come
# from the same copy of serve_app (a checkout, or site-packages) as this file.
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from serve_app.ops.loadtest import profiles  # noqa: E402
from serve_app.ops.loadtest.checks import (  # noqa: E402
    BatchStreamCheck,
    Problem,
    check_analyze,
    check_clean,
    check_count,
    check_seed_compatible,
)
from serve_app.ops.loadtest.textgen import ReviewGenerator, ndjson_records  # noqa: E402

JSON_HEADERS = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
NDJSON_HEADERS = {"Content-Type": "application/x-ndjson", "Accept-Encoding": "identity"}
SEED_COMPATIBLE = {
    "clean": {"preset": "minimal"},
    "count": {"tokenizer": "whitespace", "lowercase": False},
}
# Option sets a client might send with a short review.
CLEAN_VARIANTS: tuple[dict[str, Any], ...] = (
    {},
    {"urls": "mask", "emoji": "remove"},
    {"normalize": "NFKC", "lowercase": True, "max_repeat": 3},
)
COUNT_VARIANTS: tuple[dict[str, Any], ...] = (
    {},
    {"stopwords": ["en", "zh"]},
    {"tokenizer": "unicode", "top_k": 5},
)
_MARKER_LETTERS = "bcdfghjkmnpqrstvwxz"
_user_serial = itertools.count()


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("cleanserve")
    group.add_argument(
        "--shape",
        choices=profiles.SHAPES,
        default="steady",
        help="load profile: steady (-u/-r/-t), step (~4 min, shows autoscaling), spike "
        "(100 s); step and spike set their own users and duration",
    )
    group.add_argument("--seed", type=int, default=1, help="seed for the generated texts")
    group.add_argument(
        "--bulk-mb", type=float, default=3.0, help="size of one /v1/batch upload, in MB"
    )
    group.add_argument(
        "--user-rate",
        type=float,
        default=0.0,
        help="requests/s of each real-time user, paced (Locust's constant_throughput); "
        "0: a think time of 0.05-0.5 s (the default); -1: no think time (capacity probes)",
    )


@functools.lru_cache(maxsize=4)
def bulk_body(n_bytes: int, seed: int) -> tuple[bytes, tuple[str, ...]]:
    body = ndjson_records(n_bytes, seed)
    texts = tuple(json.loads(line)["text"] for line in body.splitlines())
    return body, texts


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def _prepare_bulk_body(environment: Any, **kwargs: Any) -> None:
    # A few MB take a few hundred ms to generate: do it before any user measures anything.
    options = environment.parsed_options
    if options is not None:
        bulk_body(int(options.bulk_mb * 1_000_000), options.seed)


def _failure_text(response: Any) -> str:
    if not response.status_code:
        return f"no answer: {response.error!r}"
    body = (response.content or b"")[:200].decode("utf-8", errors="replace")
    return f"HTTP {response.status_code}: {body}"


class ReviewUser(FastHttpUser):
    weight = 20
    _think = staticmethod(between(0.05, 0.5))

    def on_start(self) -> None:
        options = self.environment.parsed_options
        seed = options.seed if options else 1
        self.gen = ReviewGenerator(seed * 100_003 + next(_user_serial))
        rate = getattr(options, "user_rate", 0.0) if options else 0.0
        if rate > 0:
            self._think = constant_throughput(rate)
        elif rate < 0:
            self._think = constant(0)

    def wait_time(self) -> float:
        return float(self._think(self))

    def marker(self) -> str:
        """A word that no review contains and every option set leaves intact."""
        letters = [self.gen.rng.choice(_MARKER_LETTERS)]
        while len(letters) < 10:
            letter = self.gen.rng.choice(_MARKER_LETTERS)
            if letter != letters[-1]:
                letters.append(letter)
        return "".join(letters)

    def post(
        self, path: str, payload: dict[str, Any], *, name: str, check: Callable[[Any], Problem]
    ) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        with self.client.post(
            path,
            data=data,  # type: ignore[arg-type]  # bytes: sent as is, the hint says str only
            headers=JSON_HEADERS,
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(_failure_text(response))
                return
            try:
                body = json.loads(response.content)
            except (TypeError, ValueError):
                response.failure("answer is not JSON")
                return
            if problem := check(body):
                response.failure(problem)

    @task(10)
    def analyze_short(self) -> None:
        marker = self.marker()
        count = self.gen.rng.choice(COUNT_VARIANTS)
        payload = {
            "text": f"{marker} {self.gen.short()}",
            "clean": self.gen.rng.choice(CLEAN_VARIANTS),
            "count": count,
        }
        top_k = count.get("top_k")
        # Among only the top 5 words, the marker may well be missing.
        self.post(
            "/v1/analyze",
            payload,
            name="/v1/analyze",
            check=lambda body: check_analyze(body, top_k=top_k, marker=None if top_k else marker),
        )

    @task(4)
    def clean_short(self) -> None:
        marker = self.marker()
        payload = {
            "text": f"{marker} {self.gen.short()}",
            "options": self.gen.rng.choice(CLEAN_VARIANTS),
        }
        self.post(
            "/v1/clean", payload, name="/v1/clean", check=lambda b: check_clean(b, marker=marker)
        )

    @task(2)
    def count_short(self) -> None:
        marker = self.marker()
        options = self.gen.rng.choice(COUNT_VARIANTS[:2])
        payload = {"text": f"{marker} {self.gen.short()}", "options": options}
        self.post(
            "/v1/count", payload, name="/v1/count", check=lambda b: check_count(b, marker=marker)
        )

    @task(1)
    def analyze_long(self) -> None:
        marker = self.marker()
        payload = {"text": f"{marker} {self.gen.long()}", "clean": {}, "count": {}}
        self.post(
            "/v1/analyze",
            payload,
            name="/v1/analyze (long)",
            check=lambda b: check_analyze(b, marker=marker),
        )

    @task(1)
    def analyze_seed_compatible(self) -> None:
        text = f"{self.marker()} {self.gen.short()}"
        self.post(
            "/v1/analyze",
            {"text": text, **SEED_COMPATIBLE},
            name="/v1/analyze (seed)",
            check=lambda body: check_seed_compatible(text, body),
        )


class BulkUser(FastHttpUser):
    # Exactly one bulk client whatever -u says (a weight would give none to a small run);
    # it is rare because it waits long between uploads.
    fixed_count = 1
    weight = 1
    wait_time = between(20, 40)
    network_timeout = 300.0

    def on_start(self) -> None:
        self.uploads = itertools.count()
        # The totals of a full-results upload: a summary-only upload of the same body must agree.
        self.reference_summary: dict[str, Any] | None = None

    @task
    def batch(self) -> None:
        options = self.environment.parsed_options
        body, texts = bulk_body(int(options.bulk_mb * 1_000_000), options.seed)
        # Rotate: full results, summary only, seed-compatible options (exact texts known).
        variant = next(self.uploads) % 3
        query: dict[str, str] = {}
        if variant == 1:
            query["include"] = "none"
        elif variant == 2:
            query["options"] = json.dumps(SEED_COMPATIBLE)
        check = BatchStreamCheck(
            records=len(texts),
            summary_only=variant == 1,
            expected_texts=[t.replace("\n", " ").strip() for t in texts] if variant == 2 else None,
            expected_summary=self.reference_summary if variant == 1 else None,
        )
        path = "/v1/batch" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        started = time.perf_counter()
        with self.client.post(
            path,
            data=body,  # type: ignore[arg-type]
            headers=NDJSON_HEADERS,
            name="/v1/batch",
            stream=True,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(_failure_text(response))
                return
            received = 0
            try:
                pending = b""
                for chunk in response.iter_content(chunk_size=1 << 16, decode_content=False):
                    received += len(chunk)
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        if line:
                            check.feed(json.loads(line))
                if pending.strip():
                    check.feed(json.loads(pending))
            except ValueError as exc:
                response.failure(f"line {check.lines + 1} is not JSON: {exc}")
                return
            except Exception as exc:  # a broken stream is this request's failure, not a crash
                response.failure(f"stream broke after {received} bytes: {exc!r}")
                return
            finally:
                # Locust timed the headers only (stream=True): report time to the last byte.
                response.request_meta["response_time"] = (time.perf_counter() - started) * 1000
                response.request_meta["response_length"] = received
            if problem := check.finish():
                response.failure(problem)
            elif variant == 0:
                self.reference_summary = check.summary


class ProfileShape(LoadTestShape):
    """The profile named by --shape. Locust uses the first shape class of a locustfile, so
    there is one, and it delegates."""

    use_common_options = True  # steady reads -u, -r and -t

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        options = self.runner.environment.parsed_options
        assert options is not None
        profile = profiles.PROFILES.get(options.shape) or profiles.steady(
            options.num_users or 1, options.spawn_rate or 1, options.run_time
        )
        return profiles.users_at(profile, self.get_run_time())  # type: ignore[no-untyped-call]
