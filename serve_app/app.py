"""The Serve application: `build_app(args)` for serve_config.yaml, `app` for `serve run`."""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from serve_app.package_data import default_deployment_options
from serve_app.service.deployments import TextCleaner, WordCounter
from serve_app.service.ingress import Ingress
from serve_app.settings import Settings


def _actor_options(name: str) -> dict[str, Any]:
    # Run without a config (`serve run serve_app.app:app`), replicas still ask for the CPUs
    # the packaged serve_config.yaml gives them, so the three deployments fit on 2 CPUs; a
    # config given to Serve overrides these.
    return dict(default_deployment_options()[name].get("ray_actor_options", {}))


def build_app(args: dict[str, Any]) -> Application:
    # Validate here so a wrong argument fails `serve deploy` with a clear message, not a
    # replica crash loop. Only the arguments given travel: each replica also reads CLEANSERVE_*.
    Settings(**args)
    # @serve.deployment turns each class into a Deployment, which mypy cannot see.
    cleaner = TextCleaner.options(ray_actor_options=_actor_options("TextCleaner"))  # type: ignore[attr-defined]
    counter = WordCounter.options(ray_actor_options=_actor_options("WordCounter"))  # type: ignore[attr-defined]
    ingress = Ingress.options(ray_actor_options=_actor_options("Ingress"))  # type: ignore[attr-defined]
    app: Application = ingress.bind(cleaner.bind(), counter.bind(), dict(args))
    return app


app = build_app({})
