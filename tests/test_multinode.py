"""Two Ray nodes on one machine: both serve bulk chunks, and a node that dies mid-batch loses
no record.

Both nodes run the service's environment (HAProxy mode). What that takes on one machine:
- Serve runs an HAProxy on the head and on every node with replicas (`EveryNode`). Node B's
  HAProxy would bind the same HTTP port as the head's, fail with "Address already in use" and
  be restarted over and over; RAY_SERVE_WORKER_PROXY_HTTP_PORT in node B's environment (read
  by every non-head HAProxyManager, `apply_per_node_port_overrides`) gives it a port of its
  own. `proxy_location: HeadOnly` works too (no HAProxy on node B); `EveryNode` is what
  serve_config.yaml uses, so that is what runs here.
- HAProxy's metrics and stats ports come from each `ray start`'s environment, so each node
  gets its own; HAProxy's files are kept apart by Serve under /tmp/haproxy-serve/<node id>/.
- HAProxy reaches a replica with its own IP through 127.0.0.1, and both nodes have this
  machine's IP, so ingress replicas bound to 127.0.0.1 are reachable from either HAProxy.
  On separate machines http_options.host must be 0.0.0.0 (as in the cluster config).
- The ingress is pinned to the head (resource `node_a`): node B dies, the batch's own ingress
  replica must not.

With the service's gRPC transport between replicas, a replica that dies mid-call fails that
call with ActorUnavailableError. A DeploymentResponse passed on to another handle call is
resolved by the caller's router, which retries an ActorUnavailableError met while resolving
arguments forever (ray/serve/_private/router.py, `_route_and_send_request_once`): such a
chunk call never returns. batch_attempt_timeout_s, shortened here, sends it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import pytest

from loadtests.bench import corpus
from serve_app.ops.launcher import session_processes
from tests.clusters import (
    Cluster,
    deploy_config,
    diagnostics,
    end_node,
    free_port,
    head_node,
    run_cli,
    serve_deploy,
    service_env,
    wait_healthy,
    wait_running,
    worker_node,
)
from tests.support import job_env

pytestmark = pytest.mark.cluster

WORDS = ["great", "value", "物流", "很快", "包装", "fast", "👍", "<b>ok</b>", "café", "不错", "a"]
CHUNK_BYTES = 65536


@dataclass(frozen=True, slots=True)
class TwoNodes:
    cluster: Cluster
    url: str
    worker_url: str  # node B's own HAProxy
    node_ids: dict[str, str]  # "node_a" / "node_b" -> Ray node id
    worker_sid: int  # node B's `ray start` session: end it to kill the node
    job_root: Path  # CLEANSERVE_JOB_ROOTS on every node
    job_env: dict[str, str]


def spread_over_two_nodes(config: dict[str, Any]) -> None:
    (app,) = config["applications"]
    app["args"]["batch_chunk_bytes"] = CHUNK_BYTES  # a few MB make many chunks
    # Enough chunks in flight that node B's replicas always hold some when it dies.
    app["args"]["batch_max_in_flight"] = 16
    # A call to a replica on the killed node may never answer: give up on it and resend soon.
    app["args"]["batch_attempt_timeout_s"] = 10
    for deployment in app["deployments"]:
        options = deployment.setdefault("ray_actor_options", {})
        if deployment["name"] == "Ingress":
            options["resources"] = {"node_a": 0.01}
            continue
        deployment.pop("autoscaling_config", None)
        deployment["num_replicas"] = 2
        deployment["max_replicas_per_node"] = 1
        options["num_cpus"] = 0.25


NODE_IDS = """
import json, sys, time
import ray
ray.init(address=sys.argv[1], log_to_driver=False)
deadline = time.monotonic() + 120
while True:
    ids = {
        name: node["NodeID"]
        for node in ray.nodes()
        if node["Alive"]
        for name in ("node_a", "node_b")
        if name in node["Resources"]
    }
    if len(ids) == 2 or time.monotonic() > deadline:
        break
    time.sleep(1)
print(json.dumps(ids))
"""


def node_ids(cluster: Cluster) -> dict[str, str]:
    """The Ray node ids of node A and node B, once both have joined."""
    try:
        done = run_cli(cluster, sys.executable, "-c", NODE_IDS, cluster.gcs_address)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no answer from the cluster's GCS:\n{diagnostics(cluster)}")
    assert done.returncode == 0, done.stderr[-3000:]
    ids: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(ids) == {"node_a", "node_b"}, f"{ids}\n{diagnostics(cluster)}"
    return ids


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    tmp = tmp_path_factory.mktemp("multinode")
    # Both "nodes" are this machine, so a local directory is storage both can reach.
    jobs = job_env(tmp / "jobs", tmp / "job-state", None)
    (tmp / "jobs").mkdir()
    http_port, worker_http_port = free_port(), free_port()
    config = deploy_config(tmp, http_port=http_port, edit=spread_over_two_nodes)
    with contextlib.ExitStack() as stack:
        cluster, _ = stack.enter_context(
            head_node(tmp, num_cpus=2, resources={"node_a": 1}, env=service_env(**jobs))
        )
        worker_env = service_env(RAY_SERVE_WORKER_PROXY_HTTP_PORT=str(worker_http_port), **jobs)
        worker_sid = stack.enter_context(
            worker_node(cluster, "node_b", num_cpus=2, resources={"node_b": 1}, env=worker_env)
        )
        ids = node_ids(cluster)
        serve_deploy(cluster, config)
        wait_running(cluster)
        url = f"http://127.0.0.1:{http_port}"
        wait_healthy(url)
        yield TwoNodes(
            cluster=cluster,
            url=url,
            worker_url=f"http://127.0.0.1:{worker_http_port}",
            node_ids=ids,
            worker_sid=worker_sid,
            job_root=tmp / "jobs",
            job_env=jobs,
        )


def reviews(seed: int, count: int = 64) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(50, 600))) for _ in range(count)]


def ndjson(n: int, seed: int) -> Iterator[bytes]:
    texts = reviews(seed)
    for i in range(n):
        yield orjson.dumps({"id": i, "text": texts[i % len(texts)]}) + b"\n"


def test_both_nodes_serve_chunks_and_every_record_is_counted(two_nodes: TwoNodes) -> None:
    n = 2000  # ~3 MB: about 50 chunks
    body = b"".join(ndjson(n, seed=1))
    response = httpx.post(
        f"{two_nodes.url}/v1/batch",
        content=body,
        headers={"content-type": "application/x-ndjson"},
        params={"include": "none"},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    (last,) = [orjson.loads(line) for line in response.content.splitlines() if line]
    assert last["summary"]["records"] == n and last["summary"]["failed"] == 0
    assert set(last["nodes"]) == set(two_nodes.node_ids.values())
    # Chunks close at batch_chunk_bytes (or earlier while the upload stalls).
    assert sum(last["nodes"].values()) >= len(body) // (2 * CHUNK_BYTES)
    # Node B's own HAProxy (its own port) reaches the ingress on the head as well.
    assert httpx.get(f"{two_nodes.worker_url}/healthz", timeout=30).status_code == 200


@dataclass(slots=True)
class Upload:
    """An NDJSON upload generated on the fly."""

    n: int
    seed: int

    async def __aiter__(self) -> AsyncIterator[bytes]:
        lines = ndjson(self.n, self.seed)
        while batch := b"".join(itertools.islice(lines, 64)):
            yield batch


@dataclass(slots=True)
class Killing:
    """Ends node B's session from a thread, noting how many result lines were in by then."""

    sid: int
    lines: list[dict[str, Any]]
    lines_when_dead: int = -1
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._kill)
        self.thread.start()

    def _kill(self) -> None:
        end_node(self.sid)
        self.lines_when_dead = len(self.lines)

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()


async def post_batch_killing(
    url: str, upload: Upload, killing: Killing, *, kill_after_lines: int
) -> None:
    """POST the upload while reading the answer (httpx would send the whole body first), and
    start the kill once `kill_after_lines` result lines are in."""
    # Lines come every few milliseconds; a minute of silence is a stuck pipeline.
    timeout = aiohttp.ClientTimeout(total=600, sock_read=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(
            f"{url}/v1/batch",
            data=upload.__aiter__(),
            headers={"content-type": "application/x-ndjson"},
            # Whitespace words are cheap to count, so the cleaners are the busy stage: node B's
            # cleaner holds calls in flight when it dies, the case that loses them.
            params={"include": "char_count", "options": '{"count": {"tokenizer": "whitespace"}}'},
        ) as response:
            assert response.status == 200, await response.text()
            async for raw in response.content:
                killing.lines.append(orjson.loads(raw))
                if len(killing.lines) == kill_after_lines:
                    killing.start()


def test_a_node_that_dies_mid_batch_loses_no_record(two_nodes: TwoNodes) -> None:
    n = 20_000  # ~33 MB, about 500 chunks
    killing = Killing(sid=two_nodes.worker_sid, lines=[])
    try:
        asyncio.run(
            post_batch_killing(two_nodes.url, Upload(n=n, seed=2), killing, kill_after_lines=300)
        )
    except (aiohttp.ClientError, TimeoutError) as exc:
        got = len(killing.lines)
        pytest.fail(
            f"the batch stream broke off after {got} of {n + 1} lines: {exc!r}\n"
            f"{diagnostics(two_nodes.cluster)}"
        )
    finally:
        killing.join()
    assert 0 <= killing.lines_when_dead < len(killing.lines), "node B outlived the batch"
    *records, last = killing.lines
    assert "summary" in last, last
    errors = [r for r in records if "error" in r]
    assert not errors, errors[:3]
    assert [r["index"] for r in records] == list(range(n))
    summary = last["summary"]
    assert summary["records"] == n and summary["failed"] == 0
    # Each chunk's partial summary is merged exactly once, retried or not.
    assert summary["total_chars"] == sum(r["char_count"] for r in records)
    assert last["nodes"].get(two_nodes.node_ids["node_a"], 0) > 0


NODE_C = """
import sys, time
import ray
ray.init(address=sys.argv[1], log_to_driver=False)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    if any(n["Alive"] and "node_c" in n["Resources"] for n in ray.nodes()):
        time.sleep(3)  # and for the other raylets' resource view to have it
        print("joined")
        break
    time.sleep(0.5)
"""


def job_workers_on(sid: int) -> list[int]:
    pids = []
    for proc in session_processes(sid):
        with contextlib.suppress(Exception):
            title = " ".join(proc.cmdline())
            if "_group_task" in title or "FileGroupWorker" in title:
                pids.append(proc.pid)
    return pids


def test_a_node_that_dies_mid_job_loses_no_record(two_nodes: TwoNodes) -> None:
    """Node B is gone by now (the batch test above): node C joins for this job, then dies."""
    with contextlib.ExitStack() as node_c:
        node_c_sid = node_c.enter_context(
            worker_node(
                two_nodes.cluster,
                "node_c",
                num_cpus=2,
                resources={"node_c": 1},
                env=service_env(
                    RAY_SERVE_WORKER_PROXY_HTTP_PORT=str(free_port()), **two_nodes.job_env
                ),
            )
        )
        # Jobs spill onto a node only once every raylet knows it: wait for node C in the view.
        joined = run_cli(
            two_nodes.cluster, sys.executable, "-c", NODE_C, two_nodes.cluster.gcs_address
        )
        assert joined.returncode == 0 and "joined" in joined.stdout, joined.stderr[-2000:]
        # Standard mode, ~110 MB: long enough that node C's workers, started cold on a machine
        # whose CPUs the head's workers keep busy, still find groups left (seed mode's 33 MB
        # was done in 7 s, before node C's workers ran a task: CI failed so).
        data = corpus.write(corpus.CorpusSpec(files=400, seed=3), two_nodes.job_root / "in")
        out = two_nodes.job_root / "out"
        with httpx.Client(base_url=two_nodes.url, timeout=60) as client:
            response = client.post(
                "/v1/jobs",
                json={
                    "inputs": [str(data.directory)],
                    "output": str(out),
                    "include": ["char_count"],
                },
            )
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]
            deadline = time.monotonic() + 180
            while not job_workers_on(node_c_sid):
                job = client.get(f"/v1/jobs/{job_id}").json()
                assert job["state"] in ("PENDING", "RUNNING"), f"no work on node C: {job}"
                assert time.monotonic() < deadline, "no job worker ever ran on node C"
                time.sleep(0.05)
            node_c.close()  # ends node C's session: every process of the node
            while (job := client.get(f"/v1/jobs/{job_id}").json())["state"] in (
                "PENDING",
                "RUNNING",
            ):
                assert time.monotonic() < deadline + 300, job
                time.sleep(0.5)
        assert job["state"] == "SUCCEEDED", f"{job}\n{diagnostics(two_nodes.cluster)}"
        rows = [
            orjson.loads(line)
            for shard in sorted(out.glob("part-*.ndjson"))
            for line in shard.read_bytes().splitlines()
        ]
        assert sorted((r["source"], r["index"]) for r in rows) == sorted(
            (str(p), 0) for p in data.paths
        )
        assert job["summary"]["records"] == len(data.paths) and job["summary"]["failed"] == 0
        assert job["summary"]["total_chars"] == sum(r["char_count"] for r in rows)
