"""A replica of each deployment is killed under a real-time load: how many requests fail,
with what, and how long until Serve has every replica running again.

On the guarded service: it has a fallback proxy port of its own, so while its only ingress
replica is down HAProxy's backup server is this service's proxy, not another one on the
machine. The figures are printed (pytest -s) for the README.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import ray.exceptions

from serve_app.service.ingress import _call_downstream
from tests.reliability import serve_admin
from tests.reliability.conftest import Guarded
from tests.reliability.load import BackgroundLoad, LoadStats

pytestmark = pytest.mark.reliability

CONCURRENCY = 8
RECOVERY_TIMEOUT_S = 30.0  # capacity back: every replica running, /healthz 200


# -- the ingress's side, without a cluster ---------------------------------------------------


def test_a_call_lost_with_its_replica_is_sent_once_more() -> None:
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ray.exceptions.ActorUnavailableError("killed", None)
        return "answer"

    assert asyncio.run(_call_downstream(call, timeout_s=10)) == "answer"
    assert len(calls) == 2


def test_a_call_that_fails_otherwise_is_not_repeated() -> None:
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        raise ValueError("a bug, not a lost replica")

    with pytest.raises(ValueError):
        asyncio.run(_call_downstream(call, timeout_s=10))
    assert len(calls) == 1


def test_a_call_that_never_returns_is_given_up_at_the_budget() -> None:
    # Seen when a TextCleaner replica is killed mid-call: without a limit, two such calls held
    # both group-commit slots of /v1/analyze and the route answered only 504s from then on.
    async def never() -> Any:
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError):
        asyncio.run(_call_downstream(never, timeout_s=0.05))


# -- replica kills under load -------------------------------------------------------------------


def _recovered(guarded: Guarded, deployment: str, killed_id: str) -> bool:
    app = serve_admin.application(guarded.service.dashboard_url)
    ids = [replica_id for replica_id, _ in serve_admin.replicas(app)[deployment]]
    return (
        killed_id not in ids
        and serve_admin.settled(app)
        and serve_admin.healthy(guarded.url, guarded.headers)
    )


def test_killing_a_replica_of_each_deployment_under_load(guarded: Guarded) -> None:
    if guarded.service.ray_address is None:
        pytest.skip("the Ray address of the service is unknown")
    guarded.deploy()  # the file's settings (another test may have redeployed)
    budget_s = float(guarded.config({})["applications"][0]["args"]["request_budget_s"])
    report: list[str] = []
    total = LoadStats()
    with serve_admin.replica_killer(guarded.service.ray_address) as killer:
        with BackgroundLoad(guarded.url, concurrency=CONCURRENCY, headers=guarded.headers) as load:
            time.sleep(3)  # warm: every client has had answers
            for deployment in ("TextCleaner", "WordCounter", "Ingress"):
                before = load.stats()
                killed_at = time.monotonic()
                killed_id = killer.kill(deployment)
                recovery_s = serve_admin.wait_until(
                    lambda d=deployment, k=killed_id: _recovered(guarded, d, k),
                    timeout_s=RECOVERY_TIMEOUT_S,
                    what=f"recovery from the killed {deployment} replica",
                )
                # Some load on the recovered service, and every request that was in flight at
                # the kill has ended (at the latest with its 504) before the next kill.
                time.sleep(max(2.0, killed_at + budget_s + 2 - time.monotonic()))
                phase = load.stats().since(before)
                late = [t - killed_at for t in phase.error_times]
                report.append(
                    f"{deployment:<12} killed {killed_id}: {phase.sent} requests, "
                    f"{phase.failed} failed {dict(phase.errors)} "
                    f"(at {', '.join(f'{t:.1f}' for t in late) or '-'} s after the kill), "
                    f"all replicas running again after {recovery_s:.1f} s"
                )
                if deployment == "Ingress":
                    # Lost with the replica: HAProxy closes their connections without an
                    # answer, for the requests in flight and for those sent before it marks the
                    # replica down (Ray's HAProxy config: after 3 connection errors of live
                    # traffic, RAY_SERVE_HAPROXY_OBSERVE_ERROR_LIMIT). The next ones go to the
                    # fallback proxy, then the new replica. Seen: 8 and 9 failures, all within
                    # 0.2 s of the kill.
                    assert set(phase.errors) <= {"RemoteProtocolError"}, report[-1]
                    assert all(t <= 2.0 for t in late), report[-1]
                    assert phase.failed <= 3 * CONCURRENCY, report[-1]
                else:
                    # At most the requests in flight at the kill fail.
                    assert phase.failed <= CONCURRENCY, report[-1]
                    # The ingress sends a lost call once more, to the new replica. Some calls
                    # in flight at the kill never return: their requests get a 504 at the
                    # budget, when the ingress gives the call up. No 500.
                    assert set(phase.errors) <= {"504"}, report[-1]
                total = LoadStats(
                    total.sent + phase.sent, total.ok + phase.ok, total.errors + phase.errors
                )
    ratio = total.failed / max(total.sent, 1)
    print(
        f"\nreplica kills under load ({CONCURRENCY} clients in a loop, "
        "/v1/analyze and /v1/clean of 50 KB):"
    )
    print("\n".join(report))
    print(f"total: {total.sent} requests, {total.failed} failed ({ratio:.3%}) {dict(total.errors)}")
    # The ratio itself depends on how many requests a loaded machine completes meanwhile
    # (measured 0.25-0.9% on 2 CPUs); the bounds per kill above are what must hold.
