"""The wheel stands on its own: built from the package's files alone, installed without
extras in a fresh venv outside the checkout, `cleanserve manifest --check` passes and
`cleanserve up` serves a request and stops cleanly.

Slow by nature (the install downloads and unpacks Ray): marked `wheel`, one module-scoped
install shared by the tests below.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from serve_app.ops.launcher import end_session, session_processes
from tests.support import REPO, free_port, tail

pytestmark = pytest.mark.wheel
# Without a proxy: the service is local.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Installed:
    bin: Path
    home: Path  # a directory outside the checkout, to run commands from
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / "cleanserve"), *args],
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _outside_env() -> dict[str, str]:
    # Nothing may point back at the checkout (the tests run with PYTHONPATH set to it).
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _timed(what: str, cmd: list[str], *, log: Path) -> None:
    started = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(
            cmd, env=_outside_env(), stdout=out, stderr=subprocess.STDOUT, text=True
        )
    assert done.returncode == 0, f"{what} failed:\n{tail(log)}"
    # Shown with -s or on failure: the install is most of this module's time.
    print(f"{what}: {time.monotonic() - started:.0f} s")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    # Only what a wheel is built from: a file the package needs but the build leaves out
    # fails here, not in a user's install.
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "serve_app", source / "serve_app", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = root / "dist"
    wheel_cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(source)]
    _timed("wheel", wheel_cmd, log=root / "wheel.log")
    [wheel] = dist.glob("cleanserve-*.whl")

    venv = root / "venv"
    # Without a pip of its own (ensurepip is slow): this interpreter's pip installs into it.
    _timed(
        "venv", [sys.executable, "-m", "venv", "--without-pip", str(venv)], log=root / "venv.log"
    )
    # The base install only (the replicas' set), pinned as the image pins it. --no-compile:
    # byte-compiling Ray's thousands of modules is most of an install's time, and Python
    # compiles what it imports anyway.
    python = str(venv / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--no-compile"]
    constraints = str(REPO / "deploy" / "constraints.txt")
    _timed("install", [*pip, "-c", constraints, str(wheel)], log=root / "install.log")
    # The byte-compiling skipped above, on every CPU at once; without it every Ray process
    # compiles its own imports while the cluster starts, and a loaded machine misses Ray's
    # startup deadlines.
    compileall = [python, "-m", "compileall", "-q", "-j", "0"]
    site = next((venv / "lib").glob("python3*/site-packages"))
    _timed("compile", [*compileall, str(site)], log=root / "compile.log")

    home = root / "home"
    home.mkdir()
    env = _outside_env()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    yield Installed(bin=venv / "bin", home=home, env=env)


def test_the_package_comes_from_the_venv(installed: Installed) -> None:
    done = subprocess.run(
        [str(installed.bin / "python"), "-c", "import serve_app; print(serve_app.__file__)"],
        cwd=installed.home,
        env=installed.env,
        capture_output=True,
        text=True,
        check=True,
    )
    location = Path(done.stdout.strip()).resolve()
    assert location.is_relative_to(installed.bin.parent.resolve())
    assert not location.is_relative_to(REPO.resolve())


def test_the_package_data_is_installed(installed: Installed) -> None:
    script = (
        "from serve_app import package_data as d\n"
        "from serve_app.ops.loadtest import run\n"
        "for name in (d.SERVE_CONFIG, d.RAYSERVICE, d.GRAFANA_DASHBOARD):\n"
        "    assert d.path(name).stat().st_size > 0, name\n"
        "for path in (run.LOCUSTFILE, run.LOCUST_CONF, run.THRESHOLDS):\n"
        "    assert path.stat().st_size > 0, path\n"
    )
    done = subprocess.run(
        [str(installed.bin / "python"), "-c", script],
        cwd=installed.home,
        env=installed.env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_manifest_check_passes(installed: Installed) -> None:
    done = installed.run("manifest", "--check")
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout


def test_client_commands_name_their_extra(installed: Installed) -> None:
    done = installed.run("loadtest", "--url", "http://127.0.0.1:9")
    assert done.returncode == 2
    assert "pip install 'cleanserve[loadtest]'" in done.stderr


def test_up_serves_a_request_and_stops_cleanly(installed: Installed) -> None:
    port, dashboard = free_port(), free_port()
    env = {
        **installed.env,
        # Serve's fallback proxy binds fixed ports; another service on this machine has them.
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
    }
    cmd = [
        str(installed.bin / "cleanserve"), "up",
        "--port", str(port),
        "--dashboard-port", str(dashboard),
        "--haproxy-metrics-port", str(free_port()),
        "--haproxy-stats-port", str(free_port()),
    ]  # fmt: skip
    log = installed.home / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=installed.home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while "cleanserve is up" not in log.read_text(errors="replace"):
            assert proc.poll() is None, f"cleanserve up exited {proc.returncode}:\n{tail(log)}"
            assert time.monotonic() < deadline, f"not up within 300 s:\n{tail(log)}"
            time.sleep(0.5)
        with _http.open(f"{url}/healthz", timeout=30) as health:
            assert health.status == 200
        request = urllib.request.Request(
            f"{url}/v1/analyze",
            data=json.dumps({"text": "Great phone, great battery! 物流很快"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with _http.open(request, timeout=60) as response:
            answer = json.loads(response.read())
        assert answer["word_counts"]["great"] == 2, answer

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, tail(log)
        assert "every process it started has ended" in log.read_text(errors="replace")
        # Everything `cleanserve up` started ran in its session (it is the leader).
        assert session_processes(proc.pid) == [], tail(log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        end_session(proc.pid)
