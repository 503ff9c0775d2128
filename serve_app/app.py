"""The Serve application: `build_app(args)` for serve_config.yaml, `app` for `serve run`."""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from serve_app.service.deployments import TextCleaner, WordCounter
from serve_app.service.ingress import Ingress
from serve_app.settings import Settings

# Defaults that fit a 2-CPU laptop when run without serve_config.yaml (`serve run
# serve_app.app:app`). serve_config.yaml is the source of truth for replicas and autoscaling.
_ACTOR_CPUS = {"Ingress": 0.2, "TextCleaner": 0.3, "WordCounter": 0.3}


def build_app(args: dict[str, Any]) -> Application:
    # Validate here so a wrong argument fails `serve deploy` with a clear message, not a
    # replica crash loop. Only the arguments given travel: each replica also reads CLEANSERVE_*.
    Settings(**args)
    # @serve.deployment turns each class into a Deployment, which mypy cannot see.
    cleaner = TextCleaner.options(ray_actor_options={"num_cpus": _ACTOR_CPUS["TextCleaner"]})  # type: ignore[attr-defined]
    counter = WordCounter.options(ray_actor_options={"num_cpus": _ACTOR_CPUS["WordCounter"]})  # type: ignore[attr-defined]
    ingress = Ingress.options(ray_actor_options={"num_cpus": _ACTOR_CPUS["Ingress"]})  # type: ignore[attr-defined]
    app: Application = ingress.bind(cleaner.bind(), counter.bind(), dict(args))
    return app


app = build_app({})
