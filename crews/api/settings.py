"""Settings of the HTTP API (prefix ``CREWS_``); every default works with ``crews up``."""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from crews.jobs.owners import ADMIN, Principal, Scope
from crews.spec.project_refs import split_paths

MIB = 1024 * 1024


class ApiKey(BaseModel):
    """One bearer key: the principal it names and what that principal may do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: SecretStr = Field(min_length=16, description="the bearer token (at least 16 characters)")
    principal: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    scopes: frozenset[Scope] = Field(min_length=1)

    @property
    def who(self) -> Principal:
        return Principal(self.principal, frozenset(self.scopes))


def _plain_key(key: str) -> ApiKey:
    """A key of the plain comma-separated form: an admin key (the form that predates principals)."""
    return ApiKey.model_construct(key=SecretStr(key), principal=ADMIN, scopes=frozenset({ADMIN}))


class ApiSettings(BaseSettings):
    """Where the API listens, who may call it, and how much it accepts."""

    model_config = SettingsConfigDict(env_prefix="CREWS_", extra="ignore")

    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65535, description="0: a free port (the ready line names it)")
    api_keys: Annotated[tuple[ApiKey, ...], NoDecode] = Field(
        (),
        repr=False,  # secrets never appear in logs
        description='bearer keys: JSON [{"key": ..., "principal": ..., "scopes": [...]}], or comma-separated '
        "admin keys; empty: no authentication, loopback only",
    )
    api_max_body_bytes: int = Field(MIB, gt=0, description="largest request body accepted")
    api_sse_ping_s: float = Field(15.0, gt=0, description="keep-alive comment on idle event streams")
    api_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        ("localhost", "127.0.0.1", "::1"),
        description="Host header values served, comma-separated ('*': any); others get 421 (DNS rebinding)",
    )
    api_parse_timeout_s: float = Field(5.0, gt=0, description="longest a crew file may take to read")
    api_parse_concurrency: int = Field(2, ge=1, description="crew files read at once (each in a thread)")
    api_submits_per_minute: int = Field(120, ge=1, description="jobs one principal may submit per minute")
    api_running_jobs: int = Field(50, ge=1, description="jobs of one principal that may run at once")
    api_streams: int = Field(
        20, ge=1, description="event streams one principal may hold open per API process"
    )
    api_scan_jobs: int = Field(
        1000, gt=0, description="most recent jobs that GET /jobs filters and /metrics counts"
    )
    project_paths: Annotated[list[PurePath] | None, NoDecode, BeforeValidator(split_paths)] = Field(
        None,
        description="the CrewAI projects the crewai workers declare (as their CREWS_PROJECT_PATHS; only the "
        "directories' names are used): a crew naming another project's code is refused at registration; "
        "unset: not checked (the workers' own declaration decides when a step runs)",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            value = [key.strip() for key in value.split(",") if key.strip()]
        if isinstance(value, list | tuple):
            return tuple(_plain_key(item) if isinstance(item, str) else item for item in value)
        return value

    @field_validator("api_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(host.strip().lower() for host in value.split(",") if host.strip())
        return value

    @field_validator("api_keys", mode="after")
    @classmethod
    def _distinct(cls, keys: tuple[ApiKey, ...]) -> tuple[ApiKey, ...]:
        secrets = [key.key.get_secret_value() for key in keys]
        if len(set(secrets)) != len(secrets):
            raise ValueError("CREWS_API_KEYS lists one key twice: give every principal its own key")
        return keys

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)
