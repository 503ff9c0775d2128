"""deploy/rayservice.yaml, generated from serve_config.yaml.

The Serve application travels unchanged: import path, builder args, deployments and their
options are copied from serve_config.yaml. Only what depends on machine size is overridden,
and every override is named in `CLUSTER_OVERRIDES`, so `cleanserve manifest` can regenerate
the file and `cleanserve manifest --check` can tell when the committed one is stale.

The manifest is data: the functions below build each Kubernetes object as a dict, and PyYAML
writes them out. The comments that explain a field sit next to it here; the generated file
carries a header that points here. Image and namespaces are arguments (`cleanserve manifest
--image ... --namespace ...`), not source edits.

Pure: YAML text in, YAML text out. No Ray import; the tests validate the result against
KubeRay's CRD and Ray's own `ServeDeploySchema`.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from serve_app import __version__, package_data
from serve_app.ops.launcher import SERVICE_ENV

# Packaged with serve_app; the checkout's deploy/rayservice.yaml is a symlink to it.
RAYSERVICE_PATH = package_data.path(package_data.RAYSERVICE)

NAME = "cleanserve"
RAY_VERSION = "2.60.0"  # deploy/Dockerfile's base image and pyproject's pin say the same
IMAGE = f"{NAME}:{__version__}"  # built from deploy/Dockerfile
SERVE_PORT = 8000
METRICS_PORT = 8080
DASHBOARD_PORT = 8265
GCS_PORT = 6379
# Where the other side of the NetworkPolicy rules runs, by default: KubeRay's network-policy
# guide installs the operator in ray-system; its Prometheus guide installs kube-prometheus-stack
# in prometheus-system. `cleanserve manifest --operator-namespace/--prometheus-namespace`.
OPERATOR_NAMESPACE = "ray-system"
OPERATOR_POD_LABELS: Mapping[str, str] = {"app.kubernetes.io/name": "kuberay-operator"}
PROMETHEUS_NAMESPACE = "prometheus-system"

# Inside a pod the Service and the NetworkPolicy are the boundary, not the bind address: the
# Service reaches the proxy on the pod IP, so the loopback default of serve_config.yaml would
# make every pod unreachable.
CLUSTER_HTTP_HOST = "0.0.0.0"


@dataclass(frozen=True, slots=True)
class PodSize:
    cpu: int
    memory: str


HEAD_POD = PodSize(cpu=2, memory="8Gi")
WORKER_POD = PodSize(cpu=4, memory="8Gi")
WORKERS_MIN = 2
WORKERS_MAX = 12

# Deployment options that differ on a cluster: deployment name -> {"option.path": value}.
# A path must already exist in serve_config.yaml (a renamed option fails generation instead of
# keeping a stale value), except options named in ADDED_OPTIONS.
#   * num_cpus 1.0: the work is CPU-bound Python, so a replica uses at most one core; the
#     fractions in serve_config.yaml only exist to fit three deployments on two CPUs.
#   * max_replicas_per_node (with serve_config.yaml's min 2 replicas): losing one pod leaves
#     every stage serving.
#   * max 16: a 4-CPU worker holds four 1-CPU replicas; 12 workers hold them all (tested).
CLUSTER_OVERRIDES: Mapping[str, Mapping[str, Any]] = {
    "Ingress": {
        "num_replicas": 2,
        "max_replicas_per_node": 1,
        "ray_actor_options.num_cpus": 1.0,
    },
    "TextCleaner": {
        "autoscaling_config.max_replicas": 16,
        "max_replicas_per_node": 2,
        "ray_actor_options.num_cpus": 1.0,
    },
    "WordCounter": {
        "autoscaling_config.max_replicas": 16,
        "max_replicas_per_node": 2,
        "ray_actor_options.num_cpus": 1.0,
    },
}
ADDED_OPTIONS = frozenset({"max_replicas_per_node"})

# SERVICE_ENV on every Ray container, except:
#   * RAY_AUTH_MODE becomes spec.rayClusterConfig.authOptions: KubeRay then sets it, with
#     RAY_AUTH_TOKEN from a Secret it generates, on every Ray container itself.
#   * the direct-ingress drain goes back to Serve's default: on Kubernetes a load balancer
#     (the Service's endpoints) does sit in front, and needs the time to drop a draining pod.
AUTH_ENV = "RAY_AUTH_MODE"
CLUSTER_ENV_OVERRIDES: Mapping[str, str] = {
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "30",
}


class ManifestError(ValueError):
    pass


def cluster_env() -> dict[str, str]:
    return {
        name: CLUSTER_ENV_OVERRIDES.get(name, value)
        for name, value in SERVICE_ENV.items()
        if name != AUTH_ENV
    }


def _deployments(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for app in config.get("applications", []):
        for deployment in app.get("deployments", []):
            if deployment["name"] in found:
                raise ManifestError(f"deployment {deployment['name']!r} appears twice")
            found[deployment["name"]] = deployment
    return found


def _option(options: dict[str, Any], path: str, *, create: bool) -> tuple[dict[str, Any], str]:
    *parents, leaf = path.split(".")
    node = options
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            raise ManifestError(f"option {path!r}: {key!r} is not in serve_config.yaml")
        node = child
    if leaf not in node and not (create and leaf in ADDED_OPTIONS):
        raise ManifestError(f"option {path!r} is not in serve_config.yaml")
    return node, leaf


def cluster_serve_config(local: Mapping[str, Any]) -> dict[str, Any]:
    """serve_config.yaml's content with the cluster overrides applied."""
    config = copy.deepcopy(dict(local))
    config.setdefault("http_options", {})["host"] = CLUSTER_HTTP_HOST
    deployments = _deployments(config)
    if missing := sorted(set(CLUSTER_OVERRIDES) - set(deployments)):
        raise ManifestError(f"overrides for deployments not in serve_config.yaml: {missing}")
    for name, overrides in CLUSTER_OVERRIDES.items():
        for path, value in overrides.items():
            node, leaf = _option(deployments[name], path, create=True)
            node[leaf] = value
    return config


def _override_notes(local: Mapping[str, Any]) -> Iterator[str]:
    before = local.get("http_options", {}).get("host", "127.0.0.1")
    yield f"http_options.host: {before} -> {CLUSTER_HTTP_HOST}"
    deployments = _deployments(local)
    for name, overrides in CLUSTER_OVERRIDES.items():
        for path, value in overrides.items():
            try:
                node, leaf = _option(deployments[name], path, create=False)
                old = json.dumps(node[leaf])
            except ManifestError:
                old = "(unset)"
            yield f"{name}.{path}: {old} -> {json.dumps(value)}"


@dataclass(frozen=True, slots=True)
class Target:
    """Where the manifest goes: its image, its namespace, and its neighbours' namespaces."""

    image: str = IMAGE
    namespace: str | None = None  # None: the one `kubectl apply -n` names
    operator_namespace: str = OPERATOR_NAMESPACE
    prometheus_namespace: str = PROMETHEUS_NAMESPACE


_RAY_SECURITY: Mapping[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 1000,  # `ray` in rayproject/ray; numeric, so the kubelet can verify non-root
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
_LABELS: Mapping[str, str] = {"app.kubernetes.io/name": NAME}


def _metadata(name: str, target: Target) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if target.namespace:
        meta["namespace"] = target.namespace
    meta["labels"] = dict(_LABELS)
    return meta


def _env() -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in cluster_env().items()]


def _resources(size: PodSize) -> dict[str, Any]:
    # Requests equal limits: Ray schedules by the CPUs it is told about, so the pod must own
    # them (Guaranteed QoS), and a memory limit above the request invites the OOM killer.
    amount = {"cpu": str(size.cpu), "memory": size.memory}
    return {"requests": amount, "limits": dict(amount)}


def _ports(*named: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"name": name, "containerPort": port} for name, port in named]


def _pod_template(component: str, container: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"labels": {**_LABELS, "app.kubernetes.io/component": component}},
        "spec": {"containers": [container]},
    }


def _ray_container(
    name: str,
    image: str,
    size: PodSize,
    ports: list[dict[str, Any]],
    *,
    probes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        # SERVICE_ENV (HAProxy in front of the ingress replicas, throughput-optimized routing)
        # is read when Ray starts, so it is on every Ray container, not in serveConfigV2.
        "env": _env(),
        "ports": ports,
        **(probes or {}),
        "resources": _resources(size),
        # The image runs as Ray's own non-root user; nothing in Ray needs privileges.
        "securityContext": dict(_RAY_SECURITY),
    }


def rayservice(local: Mapping[str, Any], target: Target) -> dict[str, Any]:
    # The code is in the image (deploy/Dockerfile), not in a runtime_env: new pods start
    # serving without downloading anything, and what runs is exactly what was built and tested.
    serve_config = yaml.safe_dump(
        _plain(cluster_serve_config(local)), sort_keys=False, default_flow_style=False, width=1000
    )
    head = _ray_container(
        "ray-head",
        target.image,
        HEAD_POD,
        # The head Service gets exactly these ports; the Ray Client port (10001) is left out,
        # nothing uses it. The port named `serve` makes KubeRay create the <name>-serve-svc
        # Service; the one named `metrics` is Ray's metrics agent.
        _ports(
            ("gcs-server", GCS_PORT),
            ("dashboard", DASHBOARD_PORT),
            ("serve", SERVE_PORT),
            ("metrics", METRICS_PORT),
        ),
    )
    # The pod's HAProxy answers on the serve port and passes these to an ingress replica
    # (README, "Operating it"). Ready: TextCleaner and WordCounter answer a tiny request
    # (/readyz waits 5 s for them). Live: an ingress answers at all; slow to fail (2 min) so
    # that a rollout elsewhere never restarts this pod. Until Ray and the application are up,
    # the startup probe holds the other two back.
    probes = {
        "startupProbe": {
            "httpGet": {"path": "/livez", "port": "serve"},
            "periodSeconds": 5,
            "failureThreshold": 120,
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "serve"},
            "periodSeconds": 5,
            "timeoutSeconds": 7,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/livez", "port": "serve"},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 12,
        },
    }
    worker = _ray_container(
        "ray-worker",
        target.image,
        WORKER_POD,
        _ports(("serve", SERVE_PORT), ("metrics", METRICS_PORT)),
        probes=probes,
    )
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": _metadata(NAME, target),
        "spec": {
            # Serve traffic goes to worker pods only: the head runs no replicas and hosts GCS,
            # the dashboard and the Serve controller, so a head restart does not cut requests
            # in flight through its proxy.
            "excludeHeadPodFromServeSvc": True,
            # Editing serveConfigV2 alone updates the applications in place. Editing
            # rayClusterConfig (image, env, resources) starts a new RayCluster; KubeRay switches
            # the Services to it once its applications are ready, then deletes the old one: zero
            # downtime, at the cost of two clusters' pods while it lasts.
            "upgradeStrategy": {"type": "NewCluster"},
            "serveConfigV2": serve_config,
            "rayClusterConfig": {
                # Picks the autoscaler sidecar's behaviour; must match the image's Ray.
                "rayVersion": RAY_VERSION,
                # KubeRay generates a Secret with a random token and sets RAY_AUTH_MODE=token and
                # RAY_AUTH_TOKEN on every Ray container, so neither is in `env`.
                "authOptions": {"mode": "token"},
                # Serve's autoscaler decides how many replicas; Ray's autoscaler (a sidecar in
                # the head pod) adds worker pods when they do not fit and removes idle ones.
                "enableInTreeAutoscaling": True,
                "autoscalerOptions": {
                    "upscalingMode": "Default",
                    # Serve scales replicas down after 30 s; an empty pod stays 5 more minutes,
                    # so a burst does not pay for a pod start (image pull, Ray start) each time.
                    "idleTimeoutSeconds": 300,
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "512Mi"},
                        "limits": {"cpu": "500m", "memory": "512Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                },
                "headGroupSpec": {
                    "rayStartParams": {
                        # No replica on the head: its CPU stays with GCS, the dashboard and the
                        # Serve controller; replicas land on workers, which can autoscale.
                        "num-cpus": "0",
                        # Not loopback: the operator deploys serveConfigV2 and polls Serve's
                        # status through the dashboard from its own pod. Token auth guards every
                        # request; the NetworkPolicy admits only the operator.
                        "dashboard-host": "0.0.0.0",
                    },
                    "template": _pod_template("ray-head", head),
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "cpu",
                        # Ingress runs two replicas, one per pod: the service is up without
                        # waiting for the autoscaler, and a lost pod leaves one of each stage.
                        "replicas": WORKERS_MIN,
                        "minReplicas": WORKERS_MIN,
                        "maxReplicas": WORKERS_MAX,
                        # Ray takes the pod's CPU limit as its CPU count.
                        "rayStartParams": {},
                        "template": _pod_template("ray-worker", worker),
                    }
                ],
            },
        },
    }


def _namespace_peer(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def _tcp(port: int) -> dict[str, Any]:
    return {"protocol": "TCP", "port": port}


def ray_network_policy(target: Target) -> dict[str, Any]:
    # NetworkPolicy is an allow-list: once one selects a pod, any connection no policy allows
    # is dropped, so the dashboard, GCS, the Ray Client server, HAProxy's stats and metrics
    # listeners (which bind all interfaces) stay closed. Plain networking.k8s.io/v1 rather than
    # KubeRay's alpha rayClusterConfig.networkPolicy: no feature gate, and these exist before
    # any pod (same `kubectl apply`), selecting pods by label, so an upgrade's new cluster is
    # covered from its first pod. Enforcement needs a CNI that implements NetworkPolicy.
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(f"{NAME}-ray", target),
        "spec": {
            "podSelector": {"matchLabels": dict(_LABELS)},
            "policyTypes": ["Ingress"],
            "ingress": [
                # Ray between the service's own pods, on all ports.
                {"from": [{"podSelector": {"matchLabels": dict(_LABELS)}}]},
                # Clients: the Serve port, from anywhere (through <name>-serve-svc).
                {"ports": [_tcp(SERVE_PORT)]},
                # Prometheus scrapes Ray's metrics agent, from its own namespace only.
                {
                    "from": [_namespace_peer(target.prometheus_namespace)],
                    "ports": [_tcp(METRICS_PORT)],
                },
            ],
        },
    }


def operator_network_policy(target: Target) -> dict[str, Any]:
    # The operator deploys serveConfigV2 and reads Serve's status on the head's dashboard.
    # Nothing else may reach it: the dashboard can run arbitrary code on the cluster.
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(f"{NAME}-kuberay-operator", target),
        "spec": {
            "podSelector": {"matchLabels": {**_LABELS, "ray.io/node-type": "head"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            **_namespace_peer(target.operator_namespace),
                            "podSelector": {"matchLabels": dict(OPERATOR_POD_LABELS)},
                        }
                    ],
                    "ports": [_tcp(DASHBOARD_PORT)],
                }
            ],
        },
    }


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no type hints
    """Multi-line strings (serveConfigV2) as `|` blocks, lists indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _plain(value: Any) -> Any:
    # Through JSON: no object appears twice, so PyYAML writes no &anchor/*alias pairs.
    return json.loads(json.dumps(value))


def _header(local: Mapping[str, Any], target: Target) -> str:
    namespace = target.namespace or "<namespace>"
    apply = "kubectl apply -f" if target.namespace else f"kubectl apply -n {namespace} -f"
    lines = [
        "cleanserve on Kubernetes: a KubeRay RayService (CRD ray.io/v1, KubeRay >= 1.7) and the",
        "NetworkPolicies that leave only the Serve port reachable.",
        "",
        "GENERATED by `cleanserve manifest` from serve_config.yaml and serve_app/ops/manifest.py,",
        "where each field's reason is written. Do not edit by hand: change serve_config.yaml (the",
        "application) or manifest.py (pods, sizing, network policy), or pass --image/--namespace,",
        "then regenerate. `cleanserve manifest --check` fails while the packaged file is stale.",
        "",
        f"  {apply} rayservice.yaml",
        f"  clients: http://{NAME}-serve-svc.{namespace}.svc:{SERVE_PORT} (KubeRay's Service)",
        f"  image:   {target.image} (deploy/Dockerfile; `cleanserve manifest --image` for yours)",
        "",
        "serveConfigV2 is serve_config.yaml with these cluster overrides (CLUSTER_OVERRIDES):",
        *(f"  {note}" for note in _override_notes(local)),
    ]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def render(serve_config_text: str, target: Target = Target()) -> str:
    local = yaml.safe_load(serve_config_text)
    documents = [
        rayservice(local, target),
        ray_network_policy(target),
        operator_network_policy(target),
    ]
    body = yaml.dump_all(
        [_plain(document) for document in documents],
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        explicit_start=True,
        width=1000,
    )
    return _header(local, target) + str(body)


def render_serve_config(serve_config_text: str) -> str:
    """The cluster-sized Serve config alone, for `serve deploy` on a cluster without KubeRay."""
    local = yaml.safe_load(serve_config_text)
    notes = "\n".join(f"#   {line}" for line in _override_notes(local))
    header = (
        "# serve_config.yaml sized for a multi-node cluster (cleanserve manifest --serve-config):\n"
        "# the same application as deploy/rayservice.yaml's serveConfigV2. Overrides:\n"
    )
    text = yaml.safe_dump(
        _plain(cluster_serve_config(local)), sort_keys=False, default_flow_style=False, width=1000
    )
    return f"{header}{notes}\n{text}"


def stale_diff(
    serve_config_text: str, committed: str | None, target: Target = Target()
) -> list[str]:
    """Unified diff from the committed manifest to the one `render` makes; empty if current."""
    expected = render(serve_config_text, target)
    if committed == expected:
        return []
    return list(
        difflib.unified_diff(
            (committed or "").splitlines(keepends=True),
            expected.splitlines(keepends=True),
            "committed",
            "generated",
        )
    )
