"""The Serve floor: what Serve's HTTP path alone costs on this machine.

A Serve application with the service's real-time routes, request models and JSON responses,
that answers at once with no downstream call and no text work. The bench runs it beside the
service (one more application in the same cluster, at /floor, behind the same HAProxy), so
its requests/s bound what any ingress -> deployment design can reach here: the service can
only be slower.
"""

# No `from __future__ import annotations`: FastAPI must see the request models as classes.
import orjson
from fastapi import FastAPI
from fastapi.responses import Response
from ray import serve

from serve_app.schemas import AnalyzeRequest, CleanRequest

ROUTE_PREFIX = "/floor"

api = FastAPI(title="cleanserve bench: Serve floor")


def _json(data: object) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


@serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.1})
@serve.ingress(api)
class ServeFloor:
    @api.post("/v1/clean")
    async def clean(self, body: CleanRequest) -> Response:
        return _json({"text": body.text, "char_count": len(body.text)})

    @api.post("/v1/analyze")
    async def analyze(self, body: AnalyzeRequest) -> Response:
        return _json({"text": body.text, "char_count": len(body.text)})

    @api.get("/healthz")
    async def healthz(self) -> Response:
        return _json({"status": "ok"})


app = ServeFloor.bind()  # type: ignore[attr-defined]


def config_with_floor(service_config: dict[str, object]) -> dict[str, object]:
    """The service's Serve config plus this application."""
    applications = list(service_config["applications"])  # type: ignore[call-overload]
    applications.append(
        {
            "name": "floor",
            "route_prefix": ROUTE_PREFIX,
            "import_path": "loadtests.bench.floor:app",
        }
    )
    return {**service_config, "applications": applications}
