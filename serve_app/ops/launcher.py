"""Start a local Ray cluster with the settings the service needs, deploy a Serve config,
wait until it answers, and stop everything it started.

Used by `cleanserve up`, the test fixtures, the benchmark and the load-test runner, so they
all run the service exactly as the README does.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from serve_app import package_data

# Environment for every Ray process of the service. Set before Ray starts: the proxy reads
# these when it starts, and serve_config.yaml cannot set them.
SERVICE_ENV: Mapping[str, str] = {
    # HAProxy in front of the ingress replicas' own HTTP servers (direct ingress): one Python
    # hop fewer per request, the largest real-time gain measured (docs/performance.md).
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    # Router and user code on the replica's own event loop, gRPC between replicas: fewer
    # thread hops per handle call (docs/performance.md).
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    # Those gRPC channels refuse a message over 4 MiB by default, and one handle call carries a
    # whole group of real-time requests or a bulk chunk (a record may be max_record_bytes): a
    # 500 for all of them. Our own body, record and chunk limits bound the size instead.
    "RAY_SERVE_REPLICA_GRPC_MAX_MESSAGE_LENGTH": str(2**31 - 1),
    # HAProxy runs beside the replicas and reloads at once; Serve's default 30 s drain is for
    # external load balancers and would make every local stop take 30 s.
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "5",
    # Serve's background work, which an idle service pays on every CPU it shares with the work:
    # the controller's loop every 0.5 s (Serve: 0.1 s; its autoscaling and health delays are
    # in seconds, not loop turns, and ours are 3 s and more) and the replicas' and handles'
    # metrics exported every second (Serve: 0.1 s; Prometheus scrapes every few seconds).
    # An idle service here: 0.23 -> 0.17-0.18 CPU (docs/performance.md).
    "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5",
    "RAY_SERVE_METRICS_EXPORT_INTERVAL_MS": "1000",
    # Token authentication for the Ray dashboard and GCS, explicitly, so `serve deploy` and
    # `serve status` run against this cluster with the same setting.
    "RAY_AUTH_MODE": "token",
    "RAY_DEDUP_LOGS": "1",
    # Idle task workers kept for 5 minutes (Ray: 1 s past the node's free CPUs, which Serve's
    # replicas hold): a job's runner then reuses the workers of its last job, modules loaded
    # and caches warm, instead of starting new ones (service/job_registry.py).
    "RAY_idle_worker_killing_time_threshold_ms": "300000",
}

DEFAULT_CONFIG = package_data.path(package_data.SERVE_CONFIG)


@dataclass(frozen=True, slots=True)
class LaunchOptions:
    config: Path = DEFAULT_CONFIG
    host: str = "127.0.0.1"
    port: int = 8000
    dashboard_port: int = 8265
    # HAProxy's own metrics and stats listeners (fixed ports in Ray; two instances on one
    # machine need different ones).
    haproxy_metrics_port: int = 9101
    haproxy_stats_port: int = 8404
    num_cpus: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)  # merged into builder args
    ready_timeout_s: float = 180.0


def load_config(options: LaunchOptions) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(options.config.read_text(encoding="utf-8"))
    config.setdefault("http_options", {})
    config["http_options"]["host"] = options.host
    config["http_options"]["port"] = options.port
    if options.overrides:
        for app in config["applications"]:
            app.setdefault("args", {}).update(options.overrides)
    return config


def become_subreaper() -> None:
    """Orphans of our descendants (an HAProxy whose parent died first) become our children,
    so shutdown can find and end every process we started, by pid, never by name."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _end(procs: list[psutil.Process], timeout_s: float) -> list[int]:
    """SIGTERM each process, then SIGKILL what is left after timeout_s. Returns the pids."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=timeout_s)
    return [proc.pid for proc in procs]


def end_descendants(timeout_s: float = 10.0) -> list[int]:
    return _end(psutil.Process().children(recursive=True), timeout_s)


def session_processes(sid: int) -> list[psutil.Process]:
    procs = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getsid(proc.pid) == sid:
                procs.append(proc)
    return procs


def end_session(sid: int, timeout_s: float = 15.0) -> list[int]:
    """End, by pid, every process of session `sid`: SIGTERM, then SIGKILL. Returns the pids."""
    return _end(session_processes(sid), timeout_s)


def ensure_auth_token() -> str:
    """Token auth needs a token before the cluster starts; Ray's own CLI makes one
    (~/.ray/auth_token) if there is none, `serve deploy` reads the same file, and the CLI
    prints it."""
    # `python -m ray.scripts.scripts` is the `ray` command, run by this interpreter's Ray.
    done = subprocess.run(
        [sys.executable, "-m", "ray.scripts.scripts", "get-auth-token", "--generate"],
        check=True,
        capture_output=True,
        text=True,
    )
    lines = done.stdout.split()
    return lines[-1] if lines else ""


class DeployError(RuntimeError):
    pass


def deploy_config(
    dashboard_url: str, config: Mapping[str, Any], *, token: str | None, timeout_s: float
) -> None:
    """Deploy a Serve config as `serve deploy` does: PUT to Serve's REST API on the dashboard.

    That API is Ray's public way to deploy a whole config file (the Python API deploys one
    application object, without the config's per-deployment options); it starts Serve with
    the config's proxy and HTTP options, then deploys, and returns without waiting for the
    replicas. Until the dashboard listens, it is asked again.
    """
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{dashboard_url}/api/serve/applications/",
        data=json.dumps(config).encode(),
        headers=headers,
        method="PUT",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with opener.open(request, timeout=60):
                return
        except urllib.error.HTTPError as exc:
            last = f"{exc.code} {exc.read()[:500].decode(errors='replace')}"
            if exc.code < 500:  # the config or the token is wrong: asking again will not help
                raise DeployError(f"the dashboard refused the Serve config: {last}") from None
        except OSError as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            raise DeployError(f"could not deploy within {timeout_s:.0f} s: {last}")
        time.sleep(0.5)


def taken_ports(options: LaunchOptions) -> list[str]:
    """The ports `cleanserve up` would bind that another process listens on now (with
    SO_REUSEADDR, as servers bind: connections of a previous run in TIME_WAIT do not count)."""
    wanted = {
        "--port": (options.host, options.port),
        "--dashboard-port": ("127.0.0.1", options.dashboard_port),
        "--haproxy-metrics-port": ("0.0.0.0", options.haproxy_metrics_port),
        "--haproxy-stats-port": ("0.0.0.0", options.haproxy_stats_port),
    }
    taken = []
    for flag, (host, port) in wanted.items():
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                taken.append(f"{flag} {port} ({exc.strerror})")
    return taken


def wait_healthy(url: str, timeout_s: float) -> None:
    # urllib, not an HTTP client package: `cleanserve up` runs on the base install. No proxy:
    # the service is local, whatever HTTP_PROXY says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            with opener.open(f"{url}/healthz", timeout=5) as response:
                if response.status == 200:
                    return
                last = f"{response.status} {response.read(200).decode(errors='replace')}"
        except urllib.error.HTTPError as exc:
            last = f"{exc.code} {exc.read()[:200].decode(errors='replace')}"
        except http.client.HTTPException as exc:
            # Something that does not speak HTTP/1 holds the port (CI once met a Ray gRPC
            # server there): asking again will not help.
            raise DeployError(
                f"{url} is answered by another server, not this service ({exc!r}): "
                "choose another --port"
            ) from None
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise TimeoutError(f"{url}/healthz did not answer 200 within {timeout_s:.0f} s: {last}")


@contextlib.contextmanager
def running_service(options: LaunchOptions) -> Iterator[str]:
    """Start Ray + Serve in this process, deploy, wait for /healthz; yield the base URL."""
    # Before Ray is imported: it reads the auth mode once, at import.
    os.environ.update(SERVICE_ENV)
    os.environ["RAY_SERVE_HAPROXY_METRICS_PORT"] = str(options.haproxy_metrics_port)
    os.environ["RAY_SERVE_HAPROXY_STATS_PORT"] = str(options.haproxy_stats_port)
    os.environ.update(options.env)
    import ray
    from ray.serve.schema import ServeDeploySchema

    config = load_config(options)
    # Fail before starting anything: the same check the dashboard makes on deploy.
    ServeDeploySchema.model_validate(config)
    if taken := taken_ports(options):
        raise DeployError(f"ports in use by another process: {', '.join(taken)}")
    become_subreaper()
    token = ensure_auth_token() if os.environ.get("RAY_AUTH_MODE") == "token" else None
    host = "127.0.0.1" if options.host in ("0.0.0.0", "::") else options.host
    url = f"http://{host}:{options.port}"
    ray.init(
        num_cpus=options.num_cpus,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        dashboard_port=options.dashboard_port,
        log_to_driver=False,
    )
    try:
        deploy_config(
            f"http://127.0.0.1:{options.dashboard_port}",
            config,
            token=token,
            timeout_s=options.ready_timeout_s,
        )
        wait_healthy(url, options.ready_timeout_s)
        yield url
    finally:
        stop_serve(config["applications"][0]["name"])
        ray.shutdown()
        end_descendants()


def stop_serve(app_name: str) -> None:
    """Delete the application and wait, then shut Serve down.

    Deleted first, its replicas drain what is in flight (graceful_shutdown_timeout_s) while
    HAProxy still forwards to them; a straight serve.shutdown() stops the proxies at once and
    cuts every open request (tests/reliability/test_shutdown.py). Serve waits at most 60 s.
    """
    from ray import serve

    try:
        serve.delete(app_name)
    except TimeoutError:
        pass  # still draining after 60 s: what is left is cut below
    except Exception:
        # Our Serve client points at a controller that is gone (someone ran `serve shutdown`,
        # then `serve deploy` started another): serve.shutdown() drops that client without
        # acting, and the next call finds the running controller by name.
        with contextlib.suppress(Exception):
            serve.shutdown()  # type: ignore[no-untyped-call]
        with contextlib.suppress(Exception):
            serve.delete(app_name)
    with contextlib.suppress(Exception):
        serve.shutdown()  # type: ignore[no-untyped-call]


def serve_logs_dir() -> str:
    """Where this cluster's replicas write their log files (the JSON lines of README,
    "Operating it"): logs/serve/ in the Ray session directory."""
    import ray

    context = ray.get_runtime_context()
    return os.path.join(context.get_temp_dir(), context.get_session_name(), "logs", "serve")


def serve_until_signal(options: LaunchOptions, *, on_ready: Callable[[str], None] = print) -> None:
    stop = False

    def request_stop(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    with running_service(options) as url:
        # After ray.init(), which installs handlers of its own that would skip our cleanup.
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        on_ready(url)
        while not stop:
            time.sleep(0.2)
