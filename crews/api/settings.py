"""Settings of the HTTP API (prefix ``CREWS_``); every default works with ``crews up``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB = 1024 * 1024


class ApiSettings(BaseSettings):
    """Where the API listens, who may call it, and how much it accepts."""

    model_config = SettingsConfigDict(env_prefix="CREWS_", extra="ignore")

    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65535, description="0: a free port (the ready line names it)")
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        repr=False,  # secrets never appear in logs
        description="bearer keys, comma-separated; empty: no authentication (local use only)",
    )
    api_max_body_bytes: int = Field(MIB, gt=0, description="largest request body accepted")
    api_sse_ping_s: float = Field(15.0, gt=0, description="keep-alive comment on idle event streams")
    api_scan_jobs: int = Field(
        1000, gt=0, description="most recent jobs that GET /jobs filters and /metrics counts"
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)
