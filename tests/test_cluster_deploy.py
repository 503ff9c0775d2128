"""The README's way on a real cluster: `ray start --head`, `serve deploy`, `serve status`
(the cluster from tests.clusters)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from serve_app.core import cleaning, counting
from tests.clusters import (
    deploy_config,
    free_port,
    head_node,
    serve_deploy,
    service_env,
    wait_healthy,
    wait_running,
)

pytestmark = pytest.mark.cluster


def test_serve_deploy_on_a_ray_start_cluster(tmp_path: Path) -> None:
    http_port = free_port()
    config = deploy_config(tmp_path, http_port=http_port)
    with head_node(tmp_path, num_cpus=2, resources={}, env=service_env()) as (cluster, _):
        serve_deploy(cluster, config)
        wait_running(cluster)
        url = f"http://127.0.0.1:{http_port}"
        wait_healthy(url)
        text = "  Great value,  great <b>price</b>!\n物流很快 "
        response = httpx.post(f"{url}/v1/analyze", json={"text": text}, timeout=60)
        assert response.status_code == 200, response.text
        cleaned = cleaning.clean(text, cleaning.CleanOptions())
        counts = counting.count(cleaned, counting.CountOptions())
        assert response.json() == {
            "text": cleaned,
            "char_count": len(cleaned),
            "word_count": counts.word_count,
            "unique_words": counts.unique_words,
            "word_counts": counts.word_counts,
        }
        assert counts.word_counts["great"] == 2 and "<b>" not in cleaned
