"""deploy/rayservice.yaml: valid for KubeRay's CRD, the same application as serve_config.yaml,
only the Serve port open, and current with `cleanserve manifest`. No cluster needed."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from serve_app import package_data
from serve_app.ops import manifest
from serve_app.ops.cli import main
from serve_app.ops.launcher import DEFAULT_CONFIG, SERVICE_ENV
from tests.deploy.kube import (
    cel_fields,
    crd_errors,
    crd_schema,
    load_documents,
    mutated,
    renamed,
)
from tests.support import REPO

DEPLOY = REPO / "deploy"
CRD = REPO.parent / "shared" / "kuberay" / "ray.io_rayservices.yaml"
SERVE_PORT = 8000
NEVER_EXPOSED = {6379: "GCS", 8265: "dashboard", 10001: "Ray Client", 8404: "HAProxy stats",
                 9101: "HAProxy metrics", 52365: "dashboard agent"}  # fmt: skip
SERVICE_LABELS = {"app.kubernetes.io/name": manifest.NAME}


def manifests() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in load_documents(path):
            if "kind" in document:  # deploy/cluster.yaml is a `ray up` config, not a manifest
                yield path, document


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [document for _, document in manifests() if document["kind"] == kind]


@pytest.fixture(scope="module")
def rayservice_schema() -> dict[str, Any]:
    if not CRD.is_file():
        pytest.skip(f"KubeRay's RayService CRD is not at {CRD} (CI keeps a read-only copy there)")
    return crd_schema(CRD, "ray.io/v1")


@pytest.fixture(scope="module")
def rayservice() -> dict[str, Any]:
    [document] = of_kind("RayService")
    return document


@pytest.fixture(scope="module")
def local_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    return config


@pytest.fixture(scope="module")
def serve_config_v2(rayservice: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    return config


def ray_containers(rayservice: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    cluster = rayservice["spec"]["rayClusterConfig"]
    yield cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    for group in cluster["workerGroupSpecs"]:
        yield group["template"]["spec"]["containers"][0]


def deployments(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for app in config["applications"] for d in app.get("deployments", [])}


def cpus(quantity: str | int) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


# --- the CRD ---------------------------------------------------------------------------------


def test_every_manifest_is_a_kind_we_check() -> None:
    kinds = {document["kind"] for _, document in manifests()}
    assert kinds == {"RayService", "NetworkPolicy"}


def test_rayservice_is_valid_for_the_crd(rayservice_schema: dict[str, Any]) -> None:
    for path, document in manifests():
        if document["kind"] == "RayService":
            assert document["apiVersion"] == "ray.io/v1"
            assert crd_errors(document, rayservice_schema) == [], path


def test_rayservice_sets_no_field_with_unchecked_cel_rules(
    rayservice: dict[str, Any], rayservice_schema: dict[str, Any]
) -> None:
    assert list(cel_fields(rayservice, rayservice_schema)) == []


HEAD = "spec.rayClusterConfig.headGroupSpec"
HEAD_CONTAINER = f"{HEAD}.template.spec.containers[0]"
WORKERS = "spec.rayClusterConfig.workerGroupSpecs[0]"


@pytest.mark.parametrize(
    ("path", "new_key"),
    [
        ("spec.rayClusterConfig.enableInTreeAutoscaling", "enableInTreeAutoScaling"),
        ("spec.excludeHeadPodFromServeSvc", "excludeHeadPodFromServeService"),
        (f"{HEAD}.rayStartParams", "rayStartParameters"),
        (f"{HEAD_CONTAINER}.resources", "resource"),
        (f"{HEAD_CONTAINER}.resources.limits", "limit"),
        (f"{WORKERS}.template.metadata.labels", "label"),
        ("metadata.name", "nmae"),
    ],
)
def test_crd_check_rejects_a_misspelled_field(
    rayservice: dict[str, Any], rayservice_schema: dict[str, Any], path: str, new_key: str
) -> None:
    errors = crd_errors(renamed(rayservice, path, new_key), rayservice_schema)
    assert any(new_key in error and "unknown field" in error for error in errors), errors


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.rayClusterConfig.authOptions.mode", "tokens", "is not one of"),
        (f"{HEAD_CONTAINER}.resources.limits.cpu", "2 cores", "does not match"),
        (f"{WORKERS}.maxReplicas", 2**31, "int32"),
        (f"{WORKERS}.minReplicas", "2", "is not of type 'integer'"),
        (f"{WORKERS}.minReplicas", 2.0, "is not of type 'integer'"),
        ("spec.serveConfigV2", {"applications": []}, "is not of type 'string'"),
        (f"{HEAD_CONTAINER}.env[1].name", "RAY_SERVE_ENABLE_HA_PROXY", "duplicate entry"),
        (f"{HEAD_CONTAINER}.ports[1].containerPort", 6379, "duplicate entry"),
    ],
)
def test_crd_check_rejects_a_wrong_value(
    rayservice: dict[str, Any],
    rayservice_schema: dict[str, Any],
    path: str,
    value: Any,
    expected: str,
) -> None:
    errors = crd_errors(mutated(rayservice, path, value), rayservice_schema)
    assert any(expected in error for error in errors), errors


def test_crd_check_rejects_a_missing_required_field(
    rayservice: dict[str, Any], rayservice_schema: dict[str, Any]
) -> None:
    broken = copy.deepcopy(rayservice)
    del broken["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["groupName"]
    errors = crd_errors(broken, rayservice_schema)
    assert any("'groupName' is a required property" in error for error in errors), errors


# --- the cluster -----------------------------------------------------------------------------


def test_every_ray_container_has_the_service_env(rayservice: dict[str, Any]) -> None:
    expected = manifest.cluster_env()
    assert set(expected) == set(SERVICE_ENV) - {manifest.AUTH_ENV}
    for name, value in expected.items():
        assert value == manifest.CLUSTER_ENV_OVERRIDES.get(name, SERVICE_ENV[name])
    for container in ray_containers(rayservice):
        env = {item["name"]: item["value"] for item in container["env"]}
        assert env == expected, container["name"]


def test_token_auth_is_the_operators_job(rayservice: dict[str, Any]) -> None:
    cluster = rayservice["spec"]["rayClusterConfig"]
    assert cluster["authOptions"] == {"mode": SERVICE_ENV[manifest.AUTH_ENV]}
    for container in ray_containers(rayservice):
        names = {item["name"] for item in container["env"]}
        assert not names & {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"}, "KubeRay sets these itself"


def test_every_container_has_requests_and_limits(rayservice: dict[str, Any]) -> None:
    cluster = rayservice["spec"]["rayClusterConfig"]
    resources = [c["resources"] for c in ray_containers(rayservice)]
    resources.append(cluster["autoscalerOptions"]["resources"])
    for spec in resources:
        assert set(spec["requests"]) == set(spec["limits"]) == {"cpu", "memory"}


def test_ports(rayservice: dict[str, Any]) -> None:
    head, *workers = ray_containers(rayservice)
    for container in (head, *workers):
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == manifest.METRICS_PORT
        assert ports["serve"] == SERVE_PORT
    head_ports = {p["containerPort"] for p in head["ports"]}
    assert 10001 not in head_ports, "the head Service would publish the Ray Client port"


def test_worker_probes_use_livez_and_readyz(rayservice: dict[str, Any]) -> None:
    from serve_app.service.ingress import served_paths

    routes = served_paths()
    _, *workers = ray_containers(rayservice)
    for container in workers:
        probes = {kind: container[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe")}
        assert probes["readinessProbe"]["path"] == "/readyz"
        assert probes["livenessProbe"]["path"] == "/livez"
        assert container["startupProbe"]["httpGet"]["path"] == "/livez"
        for probe in probes.values():
            assert probe["port"] == "serve"
            assert probe["path"] in routes
        # /readyz waits up to 5 s for the deployments: the probe must wait longer.
        assert container["readinessProbe"]["timeoutSeconds"] > 5


def test_head_runs_no_replicas_and_workers_autoscale(rayservice: dict[str, Any]) -> None:
    cluster = rayservice["spec"]["rayClusterConfig"]
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert cluster["enableInTreeAutoscaling"] is True
    for group in cluster["workerGroupSpecs"]:
        assert 1 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert group["maxReplicas"] > group["minReplicas"]


def test_the_image_is_the_one_deploy_dockerfile_builds(rayservice: dict[str, Any]) -> None:
    import ray

    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    version = rayservice["spec"]["rayClusterConfig"]["rayVersion"]
    assert version == manifest.RAY_VERSION == ray.__version__
    assert re.search(rf"^FROM rayproject/ray:{re.escape(version)}-py311\b", dockerfile, re.M)
    assert f'"ray[serve]=={version}"' in pyproject
    for container in ray_containers(rayservice):
        assert container["image"] == manifest.IMAGE


def test_replicas_fit_the_worker_pods(
    rayservice: dict[str, Any], serve_config_v2: dict[str, Any]
) -> None:
    [group] = rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    pod_cpus = cpus(group["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"])
    at_most = at_least = 0.0
    for name, options in deployments(serve_config_v2).items():
        per_replica = options["ray_actor_options"]["num_cpus"]
        scaling = options.get("autoscaling_config") or {}
        low = scaling.get("min_replicas", options.get("num_replicas", 1))
        high = scaling.get("max_replicas", options.get("num_replicas", 1))
        per_node = options.get("max_replicas_per_node", high)
        assert per_replica <= pod_cpus, f"{name} fits on no worker"
        assert high <= per_node * group["maxReplicas"], f"{name} cannot reach max_replicas"
        assert low <= per_node * group["minReplicas"], f"{name} needs more than minReplicas"
        at_most += high * per_replica
        at_least += low * per_replica
    assert at_most <= group["maxReplicas"] * pod_cpus, "full scale-out does not fit"
    assert at_least <= group["minReplicas"] * pod_cpus, "the minimum does not fit"


# --- the application -------------------------------------------------------------------------


def test_serve_config_yaml_is_valid_for_ray_serve(local_config: dict[str, Any]) -> None:
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(local_config)


def test_serve_config_v2_is_valid_for_ray_serve(serve_config_v2: dict[str, Any]) -> None:
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(serve_config_v2)


def test_serve_config_v2_is_the_same_application(
    local_config: dict[str, Any], serve_config_v2: dict[str, Any]
) -> None:
    def app_identity(config: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        return [
            (a["name"], a["import_path"], a.get("route_prefix"), a.get("args"))
            for a in config["applications"]
        ]

    assert app_identity(serve_config_v2) == app_identity(local_config)
    # The code ships in the image: a runtime_env may set variables, never bring code.
    for app in serve_config_v2["applications"]:
        assert "runtime_env" not in app
        for deployment in app["deployments"]:
            runtime_env = deployment.get("ray_actor_options", {}).get("runtime_env", {})
            assert set(runtime_env) <= {"env_vars"}, (deployment["name"], runtime_env)
    assert serve_config_v2["proxy_location"] == local_config["proxy_location"]
    assert serve_config_v2["http_options"] == {
        **local_config["http_options"],
        "host": "0.0.0.0",
    }


def _flatten(options: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, Mapping) and value:
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_deployment_options_differ_only_by_the_named_overrides(
    local_config: dict[str, Any], serve_config_v2: dict[str, Any]
) -> None:
    local, cluster = deployments(local_config), deployments(serve_config_v2)
    assert list(cluster) == list(local)
    for name in local:
        before, after = _flatten(local[name]), _flatten(cluster[name])
        overrides = manifest.CLUSTER_OVERRIDES.get(name, {})
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert changed == set(overrides), name
        assert set(after) - set(before) <= manifest.ADDED_OPTIONS, name
        assert all(after[path] == value for path, value in overrides.items()), name


def test_an_override_of_a_renamed_option_fails_generation(local_config: dict[str, Any]) -> None:
    renamed_option = copy.deepcopy(local_config)
    scaling = deployments(renamed_option)["TextCleaner"]["autoscaling_config"]
    scaling["max_replica"] = scaling.pop("max_replicas")
    with pytest.raises(manifest.ManifestError, match="autoscaling_config.max_replicas"):
        manifest.cluster_serve_config(renamed_option)


def test_overrides_for_a_missing_deployment_fail_generation(
    local_config: dict[str, Any],
) -> None:
    without = copy.deepcopy(local_config)
    without["applications"][0]["deployments"].pop()
    with pytest.raises(manifest.ManifestError, match="WordCounter"):
        manifest.cluster_serve_config(without)


# --- the network -----------------------------------------------------------------------------


def _is_own_pods(peer: Mapping[str, Any]) -> bool:
    return set(peer) == {"podSelector"} and peer["podSelector"] == {"matchLabels": SERVICE_LABELS}


def _namespace(peer: Mapping[str, Any]) -> str | None:
    labels = peer.get("namespaceSelector", {}).get("matchLabels", {})
    name: str | None = labels.get("kubernetes.io/metadata.name")
    return name


def exposure_violations(policy: Mapping[str, Any]) -> list[str]:
    """Ports a NetworkPolicy opens beyond: anything between the service's own pods, the Serve
    port to anyone, metrics to Prometheus's namespace, the dashboard to the operator's pods."""
    problems = []
    spec = policy["spec"]
    head_only = spec["podSelector"].get("matchLabels", {}).get("ray.io/node-type") == "head"
    for number, rule in enumerate(spec.get("ingress", [])):
        peers = rule.get("from", [])
        ports = [(p.get("protocol", "TCP"), p.get("port")) for p in rule.get("ports", [])]
        if peers and all(_is_own_pods(peer) for peer in peers):
            continue
        if not ports:
            problems.append(f"rule {number} opens every port to {peers or 'anyone'}")
            continue
        for peer in peers or [{}]:
            namespace = _namespace(peer)
            if namespace == manifest.PROMETHEUS_NAMESPACE and "podSelector" not in peer:
                allowed = {("TCP", manifest.METRICS_PORT)}
            elif (
                namespace == manifest.OPERATOR_NAMESPACE
                and peer.get("podSelector") == {"matchLabels": dict(manifest.OPERATOR_POD_LABELS)}
                and head_only
            ):
                allowed = {("TCP", manifest.DASHBOARD_PORT)}
            else:
                allowed = {("TCP", SERVE_PORT)}
            if extra := set(ports) - allowed:
                problems.append(f"rule {number} opens {sorted(extra)} to {peer or 'anyone'}")
    return problems


def test_network_policies_have_the_right_shape() -> None:
    policies = of_kind("NetworkPolicy")
    assert policies
    for policy in policies:
        assert policy["apiVersion"] == "networking.k8s.io/v1"
        spec = policy["spec"]
        assert spec["policyTypes"] == ["Ingress"]
        assert spec["podSelector"]["matchLabels"].items() >= SERVICE_LABELS.items()
        for rule in spec["ingress"]:
            assert set(rule) <= {"from", "ports"}
            for port in rule.get("ports", []):
                assert port["protocol"] == "TCP" and isinstance(port["port"], int)


def test_only_the_serve_port_is_open_to_outside() -> None:
    for policy in of_kind("NetworkPolicy"):
        assert exposure_violations(policy) == [], policy["metadata"]["name"]
        for rule in policy["spec"]["ingress"]:
            if not rule.get("from"):
                assert [p["port"] for p in rule["ports"]] == [SERVE_PORT]
            for port in rule.get("ports", []):
                is_operator = port["port"] == manifest.DASHBOARD_PORT and rule.get("from")
                assert port["port"] not in NEVER_EXPOSED or is_operator


@pytest.mark.parametrize(
    "opened",
    [
        {"ports": [{"protocol": "TCP", "port": 8265}]},
        {"ports": [{"protocol": "TCP", "port": 8000}, {"protocol": "TCP", "port": 10001}]},
        {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]},
        {"from": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": 6379}]},
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "x"}}}],
            "ports": [{"protocol": "TCP", "port": 8404}],
        },
    ],
)
def test_the_exposure_check_catches_an_opened_port(opened: dict[str, Any]) -> None:
    policy = copy.deepcopy(of_kind("NetworkPolicy")[0])
    policy["spec"]["ingress"].append(opened)
    assert exposure_violations(policy)


def test_the_dashboard_is_open_to_the_operator_on_the_head_only() -> None:
    [operator_policy] = [
        p
        for p in of_kind("NetworkPolicy")
        if any(
            port["port"] == manifest.DASHBOARD_PORT
            for rule in p["spec"]["ingress"]
            for port in rule.get("ports", [])
        )
    ]
    everywhere = copy.deepcopy(operator_policy)
    del everywhere["spec"]["podSelector"]["matchLabels"]["ray.io/node-type"]
    assert exposure_violations(operator_policy) == []
    assert exposure_violations(everywhere)


def test_the_policies_select_the_pods(rayservice: dict[str, Any]) -> None:
    """A policy whose selector matches no pod protects nothing, silently."""
    cluster = rayservice["spec"]["rayClusterConfig"]
    # KubeRay adds ray.io/node-type to the labels of the pod template.
    pods = [
        {**cluster["headGroupSpec"]["template"]["metadata"]["labels"], "ray.io/node-type": "head"}
    ]
    pods += [
        {**group["template"]["metadata"]["labels"], "ray.io/node-type": "worker"}
        for group in cluster["workerGroupSpecs"]
    ]
    for policy in of_kind("NetworkPolicy"):
        wanted = policy["spec"]["podSelector"]["matchLabels"].items()
        assert any(pod.items() >= wanted for pod in pods), policy["metadata"]["name"]
    [main_policy] = [
        p for p in of_kind("NetworkPolicy") if p["metadata"]["name"] == "cleanserve-ray"
    ]
    wanted = main_policy["spec"]["podSelector"]["matchLabels"].items()
    assert all(pod.items() >= wanted for pod in pods), "every Ray pod is behind the policy"


# --- generation ------------------------------------------------------------------------------


def test_the_committed_manifest_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest", "--check"]) == 0, capsys.readouterr().err


def test_check_fails_on_a_stale_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "rayservice.yaml"
    stale.write_text(
        manifest.RAYSERVICE_PATH.read_text().replace("maxReplicas: 12", "maxReplicas: 13")
    )
    assert main(["manifest", "--check", "--out", str(stale)]) == 1
    assert "+        maxReplicas: 12" in capsys.readouterr().err
    assert main(["manifest", "--check", "--out", str(tmp_path / "missing.yaml")]) == 1


def test_check_fails_when_serve_config_changes(tmp_path: Path) -> None:
    config = tmp_path / "serve_config.yaml"
    config.write_text(
        DEFAULT_CONFIG.read_text().replace("max_ongoing_requests: 256", "max_ongoing_requests: 128")
    )
    assert main(["manifest", "--check", "--config", str(config)]) == 1
    out = tmp_path / "rayservice.yaml"
    assert main(["manifest", "--config", str(config), "--out", str(out)]) == 0
    assert main(["manifest", "--check", "--config", str(config), "--out", str(out)]) == 0
    assert "max_ongoing_requests: 128" in out.read_text()


def test_image_and_namespaces_are_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["manifest", "--image", "registry.example/cleanserve:9", "--namespace", "text"]
    assert main([*argv, "--operator-namespace", "kuberay", "--prometheus-namespace", "mon"]) == 0
    documents = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert {d["metadata"]["namespace"] for d in documents} == {"text"}
    [service] = [d for d in documents if d["kind"] == "RayService"]
    assert {c["image"] for c in ray_containers(service)} == {"registry.example/cleanserve:9"}
    peers = json.dumps([d["spec"] for d in documents if d["kind"] == "NetworkPolicy"])
    assert '"kuberay"' in peers and '"mon"' in peers
    assert manifest.OPERATOR_NAMESPACE not in peers
    assert manifest.PROMETHEUS_NAMESPACE not in peers
    # Written for another target, the packaged manifest stays as it is.
    assert main(["manifest", "--check"]) == 0


def test_a_check_of_stdout_is_a_usage_error() -> None:
    assert main(["manifest", "--check", "--image", "x:1"]) == 2


def test_packaged_files_are_the_checkouts_files() -> None:
    """One copy of each: the checkout's paths are symlinks into the package."""
    for checkout, name in [
        (REPO / "serve_config.yaml", package_data.SERVE_CONFIG),
        (DEPLOY / "rayservice.yaml", package_data.RAYSERVICE),
        (DEPLOY / "grafana-dashboard.json", package_data.GRAFANA_DASHBOARD),
    ]:
        assert checkout.is_symlink(), f"{checkout} is a copy: make it a symlink again"
        assert checkout.resolve() == package_data.path(name).resolve()
        assert checkout.read_bytes() == package_data.path(name).read_bytes()
    assert DEFAULT_CONFIG == package_data.path(package_data.SERVE_CONFIG)
    assert manifest.RAYSERVICE_PATH == package_data.path(package_data.RAYSERVICE)
