"""A second service for the checks that need settings of their own: API keys, small limits, a
small ingress queue, a redeploy. It starts once (30-60 s) and serves every test here that asks
for `guarded`; everything else uses the session service of tests/conftest.py.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from serve_app.ops.launcher import DEFAULT_CONFIG, LaunchOptions, load_config
from tests.reliability import serve_admin
from tests.support import Service, free_port, start_service

INLINE_KEYS = ("inline-key-0123456789abcdef", "second-inline-key-fedcba9876543210")
FILE_KEY = "file-key-00112233445566778899"
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_DECOMPRESSED_BYTES = 32 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
# The ingress's own queue: past ONGOING in its handlers and QUEUED waiting, Serve answers 503.
INGRESS_MAX_ONGOING = 16
INGRESS_MAX_QUEUED = 16


@dataclass
class Guarded:
    service: Service
    config_path: Path
    headers: dict[str, str]
    deployed_args: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.service.url

    def config(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The whole Serve config as the launcher deployed it, with builder args changed."""
        port = urlsplit(self.url).port
        assert port is not None
        config = load_config(LaunchOptions(config=self.config_path, port=port))
        config["applications"][0]["args"].update(args)
        return config

    def deploy(self, **args: Any) -> None:
        """Make `args` (over the file's) the deployed builder args; waits for the rollout."""
        if args != self.deployed_args:
            self.start_deploy(**args)
        self.wait_deployed()

    def start_deploy(self, **args: Any) -> None:
        serve_admin.redeploy(self.service.dashboard_url, self.config(args))
        self.deployed_args = dict(args)

    def wait_deployed(self) -> None:
        expected = self.config(self.deployed_args)["applications"][0]["args"]

        def rolled_out() -> bool:
            app = serve_admin.application(self.service.dashboard_url)
            return app["deployed_app_config"]["args"] == expected and serve_admin.settled(app)

        serve_admin.wait_until(rolled_out, timeout_s=180, what="the redeploy")
        serve_admin.wait_until(
            lambda: serve_admin.healthy(self.url), timeout_s=60, what="/healthz 200"
        )


def guarded_serve_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    config = copy.deepcopy(config)
    app = config["applications"][0]
    # Builder args win over CLEANSERVE_* variables (pydantic-settings: init arguments first),
    # so limits that serve_config.yaml lists are set here, the others in the environment.
    app["args"]["max_record_bytes"] = MAX_RECORD_BYTES
    for deployment in app["deployments"]:
        if deployment["name"] == "Ingress":
            deployment["max_ongoing_requests"] = INGRESS_MAX_ONGOING
            deployment["max_queued_requests"] = INGRESS_MAX_QUEUED
    return config


# Package scope: the service ends with this package's last test. A second Ray cluster left
# running would make drivers that connect with address="auto" (ray.util.state without an
# address, as tests/service/test_batch_api.py's replica kill) refuse to pick one.
@pytest.fixture(scope="package")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    tmp = tmp_path_factory.mktemp("guarded")
    config_path = tmp / "serve_config.yaml"
    config_path.write_text(yaml.safe_dump(guarded_serve_config()), encoding="utf-8")
    keys_file = tmp / "api_keys.txt"
    keys_file.write_text(f"{FILE_KEY}\n", encoding="utf-8")
    env = {
        "CLEANSERVE_API_KEYS": ",".join(INLINE_KEYS),
        "CLEANSERVE_API_KEYS_FILE": str(keys_file),
        "CLEANSERVE_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
        "CLEANSERVE_MAX_DECOMPRESSED_BYTES": str(MAX_DECOMPRESSED_BYTES),
        # The fallback proxy (HAProxy's backup server while no ingress replica is up) binds
        # 8500/9500 with SO_REUSEPORT by default: another service on this machine would share
        # the port, and a killed ingress would be answered by someone else's application.
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
    }
    with start_service(tmp, env=env, config=config_path) as service:
        yield Guarded(
            service=service,
            config_path=config_path,
            headers={"Authorization": f"Bearer {INLINE_KEYS[0]}"},
        )


@pytest.fixture
def guarded_client(guarded: Guarded) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=guarded.url, headers=guarded.headers, timeout=120) as http:
        yield http
