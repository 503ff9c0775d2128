"""Session fixtures: the real service, started once per test session as the README starts it.

Starting Ray costs tens of seconds on 2 CPUs, so one service serves every test that needs
one. It runs in its own process session; teardown ends it with SIGTERM, then ends whatever is
left in that session, by pid. Set CLEANSERVE_TEST_URL to test a service you started yourself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import settings

from tests.support import Service, s3_server, start_service

# Hypothesis's per-example deadline (200 ms) is a wall-clock assertion: on a loaded 2-CPU machine
# it fails tests whose results are right. No test here times anything.
settings.register_profile("cleanserve", deadline=None)
settings.load_profile("cleanserve")


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    if url := os.environ.get("CLEANSERVE_TEST_URL"):
        yield Service(
            url=url,
            ray_address=os.environ.get("CLEANSERVE_TEST_RAY_ADDRESS"),
            dashboard_url=os.environ.get("CLEANSERVE_TEST_DASHBOARD", "http://127.0.0.1:8265"),
            log=Path(os.devnull),
        )
        return
    tmp = tmp_path_factory.mktemp("service")
    # Jobs get a directory of their own and an S3 server (moto, a thread of this process).
    with (
        s3_server() as endpoint,
        start_service(
            tmp, job_root=tmp_path_factory.mktemp("jobs"), s3_endpoint=endpoint
        ) as running,
    ):
        yield running


@pytest.fixture(scope="session")
def service_url(service: Service) -> str:
    return service.url


@pytest.fixture
def client(service_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service_url, timeout=120) as http:
        yield http
