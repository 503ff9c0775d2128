"""Service settings: builder args from serve_config.yaml, then CLEANSERVE_* variables."""

from __future__ import annotations

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

    batch_chunk_bytes: int = Field(1 << 20, ge=1024)
    batch_max_in_flight: int = Field(4, ge=1)
    batch_max_attempts: int = Field(4, ge=1)
    batch_attempt_timeout_s: float = Field(120.0, gt=0, description="Per chunk call, then retry.")
    max_record_bytes: int = Field(10 * 1024 * 1024, ge=1)
    max_upload_bytes: int | None = Field(
        None, ge=1, description="None: no limit on a batch upload."
    )
    max_decompressed_bytes: int = Field(1024**3, ge=1)

    api_keys: str | None = Field(None, description="Comma-separated bearer tokens; None: open.")
    api_keys_file: str | None = Field(None, description="A file with one bearer token per line.")
