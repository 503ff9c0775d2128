"""Files that ship inside the package: the default Serve config, the generated KubeRay
manifest and the Grafana dashboard.

Read through importlib.resources, so a wheel install finds them without a checkout. The
checkout's serve_config.yaml, deploy/rayservice.yaml and deploy/grafana-dashboard.json are
symlinks to these files: one copy, nothing to drift.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

SERVE_CONFIG = "serve_config.yaml"
RAYSERVICE = "rayservice.yaml"
GRAFANA_DASHBOARD = "grafana-dashboard.json"


def path(name: str) -> Path:
    # A real path, because Ray, `serve deploy` and Locust take file names. Wheels install as
    # plain directories, where the resource already is a file (no zip import to extract from).
    return Path(str(resources.files("serve_app") / "data" / name))


@cache
def default_deployment_options() -> dict[str, dict[str, Any]]:
    """Each deployment's options in the packaged serve_config.yaml, by deployment name."""
    import yaml

    config = yaml.safe_load(path(SERVE_CONFIG).read_text(encoding="utf-8"))
    return {
        deployment["name"]: dict(deployment)
        for app in config["applications"]
        for deployment in app.get("deployments", [])
    }
