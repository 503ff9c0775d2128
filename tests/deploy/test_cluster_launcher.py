"""deploy/cluster.yaml: valid for Ray's cluster launcher, and the same service as the KubeRay
manifest (image, environment, sizing)."""

from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray.autoscaler
import yaml

from serve_app.ops import manifest
from serve_app.ops.launcher import SERVICE_ENV
from tests.support import REPO

CLUSTER = REPO / "deploy" / "cluster.yaml"
RAY_SCHEMA = Path(ray.autoscaler.__file__).parent / "ray-schema.json"


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(CLUSTER.read_text(encoding="utf-8"))
    return config


def schema_errors(config: dict[str, Any]) -> list[str]:
    schema = json.loads(RAY_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(config)]


def test_valid_for_rays_schema(cluster: dict[str, Any]) -> None:
    assert schema_errors(cluster) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_worker", 12),  # misspelled
        ("docker", {"image": "x", "run_option": []}),
        ("auth", {"ssh_usr": "ubuntu"}),
        ("idle_timeout_minutes", "5"),
    ],
)
def test_the_schema_check_fails_on_a_wrong_field(
    cluster: dict[str, Any], key: str, value: Any
) -> None:
    broken = copy.deepcopy(cluster)
    broken[key] = value
    assert schema_errors(broken)


def test_same_image_and_environment_as_kuberay(cluster: dict[str, Any]) -> None:
    assert cluster["docker"]["image"] == manifest.IMAGE
    env = {}
    for option in cluster["docker"]["run_options"]:
        flag, _, value = option.partition(" ")
        if flag == "--env":
            name, _, setting = value.partition("=")
            env[name] = setting
    assert env == {**manifest.cluster_env(), manifest.AUTH_ENV: SERVICE_ENV[manifest.AUTH_ENV]}
    assert cluster["file_mounts"] == {"~/.ray/auth_token": "~/.ray/auth_token"}


def test_same_sizing_as_kuberay(cluster: dict[str, Any]) -> None:
    nodes = cluster["available_node_types"]
    head, worker = nodes[cluster["head_node_type"]], nodes["worker"]
    assert head["resources"] == {"CPU": 0}
    assert worker["resources"] == {"CPU": manifest.WORKER_POD.cpu}
    assert (worker["min_workers"], worker["max_workers"]) == (
        manifest.WORKERS_MIN,
        manifest.WORKERS_MAX,
    )
    assert cluster["max_workers"] == manifest.WORKERS_MAX


def test_the_dashboard_stays_on_loopback(cluster: dict[str, Any]) -> None:
    [start] = [c for c in cluster["head_start_ray_commands"] if "ray start" in c]
    assert "--dashboard-host=127.0.0.1" in shlex.split(start.replace(";", " "))


def test_passes_the_checks_ray_up_makes(cluster: dict[str, Any]) -> None:
    """`ray up` fills Ray's defaults in, then validates (private API: the same steps, no cloud)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(cluster)))
    broken = copy.deepcopy(cluster)
    broken["head_node_type"] = "head-node"
    with pytest.raises(ValueError, match="head_node_type"):
        validate_config(prepare_config(broken))
