"""Notice that Serve is stopping this ingress replica, so open /v1/batch streams can end with
an error line instead of waiting for a stage that will not come.

How Ray 2.60 stops a replica (ray/serve/_private/replica.py, `_perform_graceful_shutdown`):
the controller calls `perform_graceful_shutdown` on the replica actor, which first sets the
replica's `_shutting_down` flag (its health check then says DRAINING), then waits until no
request is ongoing (up to graceful_shutdown_timeout_s, after which the controller kills the
actor), and only then calls the deployment's `__del__`. So `__del__` comes too late: an open
stream is an ongoing request, and the drain waits for it. The flag is the first sign, and it
is set for every way a replica stops (delete, `serve shutdown`, redeploy, downscale).

The flag alone does not end a stream: a redeploy or a downscale stops the replica too, while
the stages stay, and a stream open then finishes through the drain. Once the flag is set, the
application's status decides (DELETING or gone: the stages are going as well).

The flag is private, so it is read defensively; when it cannot be found (another Ray), the
watch falls back to the public `serve.status()`: the application DELETING or gone, which
covers `serve delete` and `cleanserve up`'s SIGTERM but not a single replica's stop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

from ray import serve

from serve_app.service.logs import log_event

IsStopping = Callable[[], Awaitable[bool]]


class ShutdownWatch:
    """Polls `is_stopping` while someone waits, and never otherwise: an idle replica pays
    nothing, and one poller serves every open stream of the replica."""

    def __init__(self, is_stopping: IsStopping, *, poll_s: float) -> None:
        self._is_stopping = is_stopping
        self._poll_s = poll_s
        self._stopping = asyncio.Event()
        self._waiters = 0
        self._poller: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def wait(self) -> None:
        """Return once the replica is being stopped (never, if it is not)."""
        self._waiters += 1
        try:
            if self._poller is None or self._poller.done():
                self._poller = asyncio.create_task(self._poll())
            await self._stopping.wait()
        finally:
            self._waiters -= 1

    async def _poll(self) -> None:
        while self._waiters > 0 and not self._stopping.is_set():
            if await self._is_stopping():
                self._stopping.set()
                return
            await asyncio.sleep(self._poll_s)


def replica_flag() -> Callable[[], bool] | None:
    """Serve's own `_shutting_down` flag of this replica, or None where it cannot be found.

    The replica context's handle-registration callback is a closure over the replica object
    (`ReplicaBase._set_internal_replica_context`); that is the one way user code reaches it.
    """
    try:
        callback = serve.get_replica_context()._handle_registration_callback
        replica = inspect.getclosurevars(callback).nonlocals.get("self") if callback else None
    except Exception:  # not in a replica, or another Ray: the fallback serves
        return None
    if not isinstance(getattr(replica, "_shutting_down", None), bool):
        return None
    return lambda: bool(replica._shutting_down)  # type: ignore[union-attr]


def application_deleting(app_name: str) -> bool:
    """The public fallback: the application is being deleted or is gone."""
    try:
        app = serve.status().applications.get(app_name)
    except Exception:  # the controller is unreachable for a moment: not a reason to stop
        return False
    return app is None or app.status == "DELETING"


async def _never() -> bool:
    return False


def watch_this_replica(*, poll_s: float = 0.5, fallback_poll_s: float = 2.0) -> ShutdownWatch:
    """The stream ends early only when the application goes. A replica also stops in a
    redeploy or a downscale, while the stages stay: then an open stream goes on through the
    replica's drain (graceful_shutdown_timeout_s), as it always did."""
    try:
        app_name = serve.get_replica_context().app_name
    except Exception:  # not in a replica (a test of the class itself): nothing will stop it
        return ShutdownWatch(_never, poll_s=3600.0)

    async def deleting() -> bool:
        # A call to the controller: in a thread, so the event loop never waits on it.
        return await asyncio.to_thread(application_deleting, app_name)

    flag = replica_flag()
    if flag is not None:

        async def flag_set_and_deleting() -> bool:
            # The flag costs nothing to read; the controller is asked only once it is set.
            return flag() and await deleting()

        return ShutdownWatch(flag_set_and_deleting, poll_s=poll_s)
    log_event("shutdown_watch_fallback", level=logging.WARNING, application=app_name)
    return ShutdownWatch(deleting, poll_s=fallback_poll_s)
