"""Who can reach what: API keys at the HTTP level (tests/service/test_guards.py covers the
middleware itself), and which addresses the service's processes listen on.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from tests.reliability.conftest import FILE_KEY, INLINE_KEYS, Guarded
from tests.support import Service

pytestmark = pytest.mark.reliability

LOOPBACK = frozenset({"127.0.0.1", "::1"})
WILDCARD = frozenset({"0.0.0.0", "::", ""})
TEXT = {"text": "access check"}


# -- API keys ----------------------------------------------------------------------------------


@pytest.fixture
def anonymous(guarded: Guarded) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=guarded.url, timeout=60) as http:
        yield http


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Bearer wrong-key",
        f"Bearer {INLINE_KEYS[0][:-1]}",  # a prefix of a real key
        f"Bearer {INLINE_KEYS[0]}x",  # a real key and more
        f"Basic {INLINE_KEYS[0]}",  # the right secret, the wrong scheme
        INLINE_KEYS[0],  # no scheme at all
    ],
    ids=["none", "empty", "wrong", "prefix", "longer", "basic", "bare"],
)
@pytest.mark.parametrize("path", ["/v1/clean", "/v1/count", "/v1/analyze"])
def test_v1_without_a_valid_key_is_a_401(
    anonymous: httpx.Client, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = anonymous.post(path, json=TEXT, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "API key" in response.json()["detail"]
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_a_batch_upload_without_a_key_is_a_401_before_it_is_read(anonymous: httpx.Client) -> None:
    response = anonymous.post(
        "/v1/batch",
        content=b'{"text": "x"}\n' * 100_000,
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "key", [*INLINE_KEYS, FILE_KEY], ids=["inline key 1", "inline key 2", "key from the file"]
)
@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_each_configured_key_opens_v1(anonymous: httpx.Client, key: str, scheme: str) -> None:
    headers = {"Authorization": f"{scheme} {key}"}
    assert anonymous.post("/v1/clean", json=TEXT, headers=headers).status_code == 200
    batch = anonymous.post(
        "/v1/batch",
        content=b'{"text": "x"}\n',
        headers={**headers, "content-type": "application/x-ndjson"},
    )
    assert batch.status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz", "/openapi.json", "/docs"])
def test_health_and_docs_stay_open(anonymous: httpx.Client, path: str) -> None:
    assert anonymous.get(path).status_code == 200


def test_openapi_declares_the_bearer_scheme_on_every_guarded_route(
    anonymous: httpx.Client,
) -> None:
    spec = anonymous.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            if path in {"/healthz", "/livez", "/readyz"}:
                assert "security" not in operation, path
            else:
                assert operation["security"] == [{"bearer": []}], path
                error = operation["responses"]["401"]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorBody"}


# -- listening sockets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    ip: str
    port: int
    process: str


def _describe(pid: int) -> str:
    """ray::ServeReplica:cleanserve:Ingress, gcs_server, haproxy, python dashboard.py, ..."""
    cmdline = psutil.Process(pid).cmdline() or [psutil.Process(pid).name()]
    words = [os.path.basename(word) for word in cmdline[:2]]
    return " ".join(words[:2] if words[0].startswith("python") else words[:1])[:60]


def _listeners_of_session(sid: int) -> list[Listener]:
    found = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status != psutil.CONN_LISTEN or conn.pid is None:
            continue
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getsid(conn.pid) == sid:
                found.append(Listener(conn.laddr.ip, conn.laddr.port, _describe(conn.pid)))
    return sorted(found, key=lambda listener: (listener.process, listener.port))


def _owner_sid(port: int) -> int | None:
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return os.getsid(conn.pid)
    return None


def _outside_address() -> str | None:
    """This machine's first non-loopback IPv4 address (`hostname -I`), if it has one."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10)
        for address in out.stdout.split():
            if "." in address and not address.startswith("127."):
                return address
    return None


def _refused(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return False
    except OSError:
        return True


def test_the_api_and_the_dashboard_listen_on_loopback_only(service: Service) -> None:
    port = urlsplit(service.url).port
    dashboard_port = urlsplit(service.dashboard_url).port
    assert port is not None and dashboard_port is not None
    sid = _owner_sid(port)
    if sid is None:
        pytest.skip("the service under test does not run on this machine")
    # HAProxy's frontend, the Ray dashboard, and the ingress replicas' own HTTP servers
    # (direct ingress, behind HAProxy; Serve allocates them from 30000). A replica opens its
    # server after it is up: until then HAProxy sends requests to its backup, Serve's proxy.
    deadline = time.monotonic() + 120
    while True:
        listeners = _listeners_of_session(sid)
        direct_ingress = {
            listener.port
            for listener in listeners
            if "Ingress" in listener.process and 30000 <= listener.port < 31000
        }
        if direct_ingress or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert direct_ingress, listeners
    by_port: dict[int, set[str]] = {}
    for listener in listeners:
        by_port.setdefault(listener.port, set()).add(listener.ip)
    for checked in (port, dashboard_port, *direct_ingress):
        assert by_port.get(checked, set()) <= LOOPBACK, (checked, by_port.get(checked))

    outside = _outside_address()
    if outside is not None:
        for checked in (port, dashboard_port, *direct_ingress):
            assert _refused(outside, checked), f"{outside}:{checked} accepted a connection"

    # What else listens, and where: for SECURITY.md (printed; not a pass/fail criterion).
    print(f"\nlisteners of the service's process session (outside address: {outside}):")
    for listener in listeners:
        where = "ALL INTERFACES" if listener.ip in WILDCARD else listener.ip
        print(f"  {where:>15} :{listener.port:<6} {listener.process}")
