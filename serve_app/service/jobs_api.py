"""/v1/jobs: translates between HTTP and the job registry (serve_app.service.job_registry).

The routes hold no job state: the registry, a detached actor on the head node, checks and
starts jobs and keeps their state on disk, so an ingress restart loses nothing.
"""

# No `from __future__ import annotations`: FastAPI must see real classes (see ingress.py).
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from serve_app.schemas import ErrorBody, Job, JobList, JobRequest
from serve_app.service import job_registry

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


class _Registry:
    """The registry's handle for this replica, made on first use."""

    settings: dict[str, Any] = {}
    handle: Any = None

    def configure(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.handle = None

    def get(self) -> Any:
        if self.handle is None:
            self.handle = job_registry.registry(self.settings)
        return self.handle


registry = _Registry()


def _json(data: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data), status_code=status_code, media_type="application/json", headers=headers
    )


def _answer(reply: dict[str, Any]) -> dict[str, Any]:
    if "job" not in reply:
        raise HTTPException(reply["status"], reply["detail"])
    job: dict[str, Any] = reply["job"]
    return job


_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "No file matches, unsupported file, bad path."},
    403: {"model": ErrorBody, "description": "A path outside the allowed roots."},
    409: {"model": ErrorBody, "description": "The output is not empty (see `overwrite`)."},
    415: {"model": ErrorBody, "description": "The body is not sent as application/json."},
    422: {"model": ErrorBody, "description": "Unknown field, wrong type."},
    429: {"model": ErrorBody, "description": "As many jobs as run at once (16) are running."},
}


@router.post("", status_code=202, response_model=Job, responses=_PROBLEMS)
async def submit_job(body: JobRequest) -> Response:
    job = _answer(await registry.get().submit.remote(body.model_dump()))
    return _json(job, 202, headers={"Location": f"/v1/jobs/{job['id']}"})


@router.get("", response_model=JobList)
async def list_jobs() -> Response:
    return _json({"jobs": await registry.get().list.remote()})


@router.get("/{job_id}", response_model=Job, responses={404: {"model": ErrorBody}})
async def get_job(job_id: str) -> Response:
    job = await registry.get().get.remote(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return _json(job)


@router.delete(
    "/{job_id}",
    response_model=Job,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def cancel_job(job_id: str) -> Response:
    return _json(_answer(await registry.get().cancel.remote(job_id)))
