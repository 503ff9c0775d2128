"""Service settings: builder args from serve_config.yaml, then CLEANSERVE_* variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLEANSERVE_", extra="forbid")

    # Real-time requests that arrive together share one handle call per hop: Serve's per-call
    # cost, not the text work, is what limits a small machine.
    realtime_max_batch: int = Field(64, ge=1)
    realtime_max_in_flight: int = Field(2, ge=1, description="Handle calls in flight per route.")
    request_budget_s: float = Field(10.0, gt=0, description="Per-request time budget.")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1, description="Real-time request body limit.")

    batch_chunk_bytes: int = Field(4 << 20, ge=1024)
    batch_max_in_flight: int = Field(4, ge=1)
    # Chunks read and not yet written out, answered ones waiting for an earlier, slower one:
    # the ingress's memory per upload (a chunk and its lines, a few MB each).
    batch_max_buffered: int = Field(16, ge=1)
    batch_max_attempts: int = Field(4, ge=1)
    batch_attempt_timeout_s: float = Field(120.0, gt=0, description="Per chunk call, then retry.")
    batch_final_parts: int = Field(
        2,
        ge=1,
        description="An upload's summary is merged split by word in this many parts; its last "
        "merge runs in those parts at once.",
    )
    max_record_bytes: int = Field(10 * 1024 * 1024, ge=1)
    max_upload_bytes: int | None = Field(
        None, ge=1, description="None: no limit on a batch upload."
    )
    max_decompressed_bytes: int = Field(1024**3, ge=1)

    api_keys: str | None = Field(None, description="Comma-separated bearer tokens; None: open.")
    api_keys_file: str | None = Field(None, description="A file with one bearer token per line.")

    # Bulk jobs (POST /v1/jobs): files on storage, processed where they lie by Ray Data.
    job_roots: str | None = Field(
        None,
        description="Colon-separated directories and s3:// prefixes jobs may read and write; "
        "None: jobs are refused.",
    )
    job_state_dir: str = Field(
        "/tmp/cleanserve/jobs", description="One JSON file per job, on the head node."
    )
    job_group_bytes: int = Field(
        16 * 1024 * 1024, ge=1, description="Input bytes per Ray Data block (files grouped)."
    )
    job_worker_cpus: float = Field(
        0.25, gt=0, description="Logical CPUs each job worker asks Ray for."
    )
    job_max_workers: int | None = Field(
        None, ge=1, description="Workers per job at most; None: the cluster's CPU count."
    )
    job_engine: Literal["ray-data", "ray-tasks"] = Field(
        "ray-tasks", description="What runs a job's groups (README, Bulk jobs: measured)."
    )
    job_s3_endpoint: str | None = Field(
        None, description="An S3-compatible server, http://host:port; None: AWS."
    )
    job_s3_region: str | None = None
