"""A deployment dictionary changed in serve_config.yaml's user_config reaches every WordCounter
replica through `reconfigure`, without a restart (the same replicas answer before and after)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.reliability import serve_admin
from tests.reliability.conftest import Guarded

pytestmark = pytest.mark.reliability

TEXT = "我买了小米手机，东西不错"
# Sent one by one: each is its own handle call, routed to either replica. With two replicas,
# one left unconfigured would answer about half of them.
REQUESTS = 40


def _deploy_user_config(guarded: Guarded, user_config: dict[str, Any]) -> None:
    config = guarded.config(guarded.deployed_args)
    for deployment in config["applications"][0]["deployments"]:
        if deployment["name"] == "WordCounter":
            deployment["user_config"] = user_config
    serve_admin.redeploy(guarded.service.dashboard_url, config)

    def rolled_out() -> bool:
        app = serve_admin.application(guarded.service.dashboard_url)
        deployed = {
            d["name"]: d.get("user_config")
            for d in app["deployed_app_config"].get("deployments", [])
        }
        return deployed.get("WordCounter") == user_config and serve_admin.settled(app)

    serve_admin.wait_until(rolled_out, timeout_s=180, what="the user_config rollout")


def _word_counts(http: httpx.Client) -> list[dict[str, int]]:
    answers = []
    for _ in range(REQUESTS):
        response = http.post("/v1/count", json={"text": TEXT})
        assert response.status_code == 200, response.text
        answers.append(response.json()["word_counts"])
    return answers


def test_user_config_words_reach_every_replica_without_a_restart(guarded: Guarded) -> None:
    guarded.deploy()
    before = serve_admin.replicas(serve_admin.application(guarded.service.dashboard_url))
    counters = sorted(replica for replica, _ in before["WordCounter"])
    assert len(counters) >= 2, before
    try:
        _deploy_user_config(guarded, {"user_words": ["小米手机"], "extra_stopwords": ["东西"]})
        after = serve_admin.replicas(serve_admin.application(guarded.service.dashboard_url))
        assert sorted(replica for replica, _ in after["WordCounter"]) == counters
        with httpx.Client(base_url=guarded.url, headers=guarded.headers, timeout=60) as http:
            answers = _word_counts(http)
        assert all("小米手机" in counts and "东西" not in counts for counts in answers)
    finally:
        _deploy_user_config(guarded, {})
    with httpx.Client(base_url=guarded.url, headers=guarded.headers, timeout=60) as http:
        assert all("东西" in counts for counts in _word_counts(http))
