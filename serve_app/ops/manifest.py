"""deploy/rayservice.yaml, generated from serve_config.yaml.

The Serve application travels unchanged: import path, builder args, deployments and their
options are copied from serve_config.yaml. Only what depends on machine size is overridden,
and every override is named in `CLUSTER_OVERRIDES`, so `cleanserve manifest` can regenerate
the file and `cleanserve manifest --check` can tell when the committed one is stale.

Pure: YAML text in, YAML text out. No Ray import; the tests validate the result against
KubeRay's CRD and Ray's own `ServeDeploySchema`.
"""

from __future__ import annotations

import copy
import difflib
import json
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from string import Template
from typing import Any

import yaml

from serve_app import __version__
from serve_app.ops.launcher import DEFAULT_CONFIG, SERVICE_ENV

RAYSERVICE_PATH = DEFAULT_CONFIG.parent / "deploy" / "rayservice.yaml"

NAME = "cleanserve"
RAY_VERSION = "2.60.0"  # deploy/Dockerfile's base image and pyproject's pin say the same
IMAGE = f"{NAME}:{__version__}"  # built from deploy/Dockerfile
SERVE_PORT = 8000
METRICS_PORT = 8080
DASHBOARD_PORT = 8265
GCS_PORT = 6379
# Where the other side of the NetworkPolicy rules runs: KubeRay's network-policy guide installs
# the operator in ray-system; its Prometheus guide installs kube-prometheus-stack in
# prometheus-system. Change them here if yours differ, then regenerate.
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


def _block(value: Any, indent: int) -> str:
    # Through JSON first: no object appears twice, so PyYAML writes no &anchor/*alias pairs.
    plain = json.loads(json.dumps(value))
    text = yaml.safe_dump(plain, sort_keys=False, default_flow_style=False, width=1000)
    return textwrap.indent(text, " " * indent).rstrip("\n")


_RAY_SECURITY: Mapping[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 1000,  # `ray` in rayproject/ray; numeric, so the kubelet can verify non-root
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _env(indent: int) -> str:
    return _block([{"name": k, "value": v} for k, v in cluster_env().items()], indent)


def _resources(size: PodSize, indent: int) -> str:
    # Requests equal limits: Ray schedules by the CPUs it is told about, so the pod must own
    # them (Guaranteed QoS), and a memory limit above the request invites the OOM killer.
    amount = {"cpu": str(size.cpu), "memory": size.memory}
    return _block({"requests": amount, "limits": amount}, indent)


def render(serve_config_text: str) -> str:
    local = yaml.safe_load(serve_config_text)
    cluster = cluster_serve_config(local)
    notes = "\n".join(f"  #   {line}" for line in _override_notes(local))
    return _TEMPLATE.substitute(
        name=NAME,
        image=IMAGE,
        ray_version=RAY_VERSION,
        override_notes=notes,
        serve_config=_block(cluster, 4),
        head_env=_env(12),
        worker_env=_env(12),
        head_resources=_resources(HEAD_POD, 14),
        worker_resources=_resources(WORKER_POD, 14),
        security=_block(_RAY_SECURITY, 14),
        workers_min=WORKERS_MIN,
        workers_max=WORKERS_MAX,
        worker_cpus=WORKER_POD.cpu,
        serve_port=SERVE_PORT,
        metrics_port=METRICS_PORT,
        dashboard_port=DASHBOARD_PORT,
        gcs_port=GCS_PORT,
        operator_namespace=OPERATOR_NAMESPACE,
        operator_labels=_block(dict(OPERATOR_POD_LABELS), 10),
        prometheus_namespace=PROMETHEUS_NAMESPACE,
    )


def render_serve_config(serve_config_text: str) -> str:
    """The cluster-sized Serve config alone, for `serve deploy` on a cluster without KubeRay."""
    local = yaml.safe_load(serve_config_text)
    notes = "\n".join(f"#   {line}" for line in _override_notes(local))
    header = (
        "# serve_config.yaml sized for a multi-node cluster (cleanserve manifest --serve-config):\n"
        "# the same application as deploy/rayservice.yaml's serveConfigV2. Overrides:\n"
    )
    return f"{header}{notes}\n{_block(cluster_serve_config(local), 0)}\n"


def stale_diff(serve_config_text: str, committed: str | None) -> list[str]:
    """Unified diff from the committed manifest to the one `render` makes; empty if current."""
    expected = render(serve_config_text)
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


_TEMPLATE = Template(
    """\
# cleanserve on Kubernetes: a KubeRay RayService (CRD ray.io/v1, KubeRay >= 1.7) and the
# NetworkPolicies that leave only the Serve port reachable.
#
# GENERATED by `cleanserve manifest` from serve_config.yaml and serve_app/ops/manifest.py.
# Do not edit by hand: change serve_config.yaml (the application) or serve_app/ops/manifest.py
# (pods, sizing, network policy), then run `cleanserve manifest`. `cleanserve manifest --check`
# (run by tests/deploy) fails while this file is stale.
#
#   kubectl apply -n <namespace> -f deploy/rayservice.yaml
#   clients: http://$name-serve-svc.<namespace>.svc:$serve_port (the Service KubeRay creates)
#   image:   $image, built from deploy/Dockerfile. Push it to your registry and point
#            `image:` there (IMAGE in serve_app/ops/manifest.py, or a kustomize `images:` edit).
---
apiVersion: ray.io/v1
kind: RayService
metadata:
  name: $name
  labels:
    app.kubernetes.io/name: $name
spec:
  # Serve traffic goes to worker pods only. The head runs no replicas (num-cpus 0) and hosts
  # GCS, the dashboard and the Serve controller; keeping clients off it means a head restart
  # does not cut requests in flight through its proxy.
  excludeHeadPodFromServeSvc: true
  # Editing serveConfigV2 alone updates the applications in place on the running cluster.
  # Editing rayClusterConfig (image, env, resources) starts a new RayCluster, and KubeRay
  # switches the Services to it once its applications are ready, then deletes the old one:
  # zero downtime, at the cost of two clusters' pods while it lasts.
  upgradeStrategy:
    type: NewCluster
  # serve_config.yaml, with these cluster overrides (serve_app/ops/manifest.py, CLUSTER_OVERRIDES):
$override_notes
  # The code is in the image (deploy/Dockerfile), not in a runtime_env: new pods start serving
  # without downloading anything, and what runs is exactly what was built and tested.
  serveConfigV2: |
$serve_config
  rayClusterConfig:
    # Picks the autoscaler sidecar's behaviour; must match the image's Ray.
    rayVersion: "$ray_version"
    # Token authentication for the dashboard, GCS and Ray's RPCs. KubeRay generates a Secret
    # holding a random token (named after the RayCluster) and sets RAY_AUTH_MODE=token and
    # RAY_AUTH_TOKEN on every Ray container, so neither is repeated in `env` below.
    authOptions:
      mode: token
    # Two levels of scaling: Serve's autoscaler (serveConfigV2) decides how many replicas;
    # Ray's autoscaler, a sidecar in the head pod, adds worker pods when those replicas do
    # not fit and removes idle ones, between the worker group's minReplicas and maxReplicas.
    enableInTreeAutoscaling: true
    autoscalerOptions:
      upscalingMode: Default
      # Serve scales replicas down after 30 s; an empty pod stays 5 more minutes, so a burst
      # does not pay for a pod start (image pull, Ray start) each time.
      idleTimeoutSeconds: 300
      resources:
        requests:
          cpu: 500m
          memory: 512Mi
        limits:
          cpu: 500m
          memory: 512Mi
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop:
          - ALL
    headGroupSpec:
      rayStartParams:
        # No Serve replica is scheduled on the head: it keeps its CPU for GCS, the dashboard
        # and the Serve controller, and replicas land on workers, where the autoscaler can
        # add capacity.
        num-cpus: "0"
        # Not loopback: the KubeRay operator deploys serveConfigV2 and polls Serve's status
        # through the dashboard ($dashboard_port, via the head Service) from its own pod, so a
        # 127.0.0.1 dashboard would leave the RayService never ready. Token authentication
        # guards every request, and the NetworkPolicy below admits only the operator to it.
        dashboard-host: 0.0.0.0
      template:
        metadata:
          labels:
            app.kubernetes.io/name: $name
            app.kubernetes.io/component: ray-head
        spec:
          containers:
          - name: ray-head
            image: $image
            imagePullPolicy: IfNotPresent
            # serve_app/ops/launcher.py's SERVICE_ENV: HAProxy in front of the ingress replicas,
            # throughput-optimized routing. Read when Ray starts, so they must be on every
            # Ray container, not in serveConfigV2.
            env:
$head_env
            # The head Service gets exactly these ports. The Ray Client port (10001) is left
            # out: nothing here uses it. The port named `serve` makes KubeRay create the
            # $name-serve-svc Service; the one named `metrics` is Ray's metrics agent.
            ports:
            - name: gcs-server
              containerPort: $gcs_port
            - name: dashboard
              containerPort: $dashboard_port
            - name: serve
              containerPort: $serve_port
            - name: metrics
              containerPort: $metrics_port
            resources:
$head_resources
            # The image runs as Ray's own non-root user; nothing in Ray needs privileges.
            securityContext:
$security
    workerGroupSpecs:
    - groupName: cpu
      # Two workers from the start: Ingress runs two replicas, one per pod, so the service is
      # up without waiting for the autoscaler, and a lost pod leaves one of each stage.
      replicas: $workers_min
      minReplicas: $workers_min
      maxReplicas: $workers_max
      # Ray takes the pod's CPU limit ($worker_cpus) as its CPU count: four 1-CPU replicas.
      rayStartParams: {}
      template:
        metadata:
          labels:
            app.kubernetes.io/name: $name
            app.kubernetes.io/component: ray-worker
        spec:
          containers:
          - name: ray-worker
            image: $image
            imagePullPolicy: IfNotPresent
            env:
$worker_env
            ports:
            - name: serve
              containerPort: $serve_port
            - name: metrics
              containerPort: $metrics_port
            # The pod's HAProxy answers on the serve port and passes these to an ingress
            # replica (README, "Operating it"). Ready: TextCleaner and WordCounter answer a
            # tiny request (/readyz waits 5 s for them). Live: an ingress answers at all;
            # slow to fail (2 min) so that a rollout elsewhere never restarts this pod. Until
            # Ray and the application are up, the startup probe holds the other two back.
            startupProbe:
              httpGet:
                path: /livez
                port: serve
              periodSeconds: 5
              failureThreshold: 120
            readinessProbe:
              httpGet:
                path: /readyz
                port: serve
              periodSeconds: 5
              timeoutSeconds: 7
              failureThreshold: 3
            livenessProbe:
              httpGet:
                path: /livez
                port: serve
              periodSeconds: 10
              timeoutSeconds: 5
              failureThreshold: 12
            resources:
$worker_resources
            securityContext:
$security
---
# Only the Serve port is reachable from outside the service. NetworkPolicy is an allow-list:
# once a policy selects a pod, any connection no policy allows is dropped, so the dashboard
# ($dashboard_port), GCS ($gcs_port), the Ray Client server (10001), and HAProxy's stats (8404) and
# metrics (9101) listeners, which bind all interfaces in HAProxy mode, stay closed.
#
# Plain networking.k8s.io/v1 policies rather than KubeRay's rayClusterConfig.networkPolicy:
# that field is alpha and needs the operator's RayClusterNetworkPolicy feature gate (off by
# default), and the operator creates its policies asynchronously, so a pod can start before
# its policy exists. These exist before any pod (same `kubectl apply`), need no feature gate,
# and select pods by the label this manifest gives them, so a new cluster made by an upgrade is
# covered from its first pod. Enforcement needs a CNI that implements NetworkPolicy (Calico,
# Cilium, ...); without one, no policy is enforced at all.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: $name-ray
  labels:
    app.kubernetes.io/name: $name
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: $name
  policyTypes:
  - Ingress
  ingress:
  # Ray between the service's own pods, on all ports: GCS, raylets, object transfer, HAProxy
  # to the ingress replicas' own HTTP ports, gRPC between replicas.
  - from:
    - podSelector:
        matchLabels:
          app.kubernetes.io/name: $name
  # Clients: the Serve port, from anywhere. Reach it through $name-serve-svc; from outside
  # Kubernetes, put an Ingress, a Gateway or a LoadBalancer Service in front of that.
  - ports:
    - protocol: TCP
      port: $serve_port
  # Prometheus scrapes Ray's metrics agent on every pod, from its own namespace only.
  - from:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: $prometheus_namespace
    ports:
    - protocol: TCP
      port: $metrics_port
---
# The KubeRay operator reaches the head's dashboard: it deploys serveConfigV2 and reads Serve's
# status there. Nothing else may: the dashboard can run arbitrary code on the cluster.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: $name-kuberay-operator
  labels:
    app.kubernetes.io/name: $name
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: $name
      ray.io/node-type: head
  policyTypes:
  - Ingress
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: $operator_namespace
      podSelector:
        matchLabels:
$operator_labels
    ports:
    - protocol: TCP
      port: $dashboard_port
"""
)
