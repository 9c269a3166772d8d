"""Role worker settings (prefix ``CREWS_``); every default works with ``crews up``."""

from __future__ import annotations

import os
import socket
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from bus.settings import RedisSettings
from crews.spec.limits import SpecLimits
from roles.outside_agents import OutsideAgent, parse_agents


def _default_worker_id() -> str:
    # In Kubernetes the hostname is the pod name.
    return f"{socket.gethostname()}-{os.getpid()}"


class RoleSettings(RedisSettings):
    """Where the job state is (``RedisSettings``), and how many steps one worker runs at once."""

    model_config = SettingsConfigDict(env_prefix="CREWS_", extra="ignore")

    worker_concurrency: int = Field(4, ge=1, description="steps one worker process runs at the same time")
    worker_grace_s: float = Field(
        30.0,
        ge=0,
        description="on SIGTERM, how long running steps may take to finish before they are given back",
    )
    worker_id: str = Field(
        default_factory=_default_worker_id, description="recorded with each result (default: hostname-pid)"
    )
    tool_output_max_chars: int = Field(
        16_000, ge=100, description="longer tool results are cut for the model"
    )
    memory_prompt_max_chars: int = Field(
        8_000,
        ge=100,
        description="longer shared memory is cut in the prompt (memory_read still reads it all)",
    )
    memory_max_chars: int = Field(256_000, ge=1000, description="most characters a job's shared memory holds")
    max_tool_calls_per_turn: int = Field(
        8, ge=1, description="tool calls of one LLM answer that run; the rest are answered with an error"
    )
    default_job_tokens: int = Field(
        200_000, ge=1, description="a job's token budget when its crew sets no budgets.max_tokens"
    )
    limits: SpecLimits = Field(
        default_factory=SpecLimits,
        description="ceilings on crew-file numbers (CREWS_MAX_*), clamped here too",
    )
    a2a_agents: list[OutsideAgent] = Field(
        default_factory=list,
        description="outside A2A agents crews may name (JSON list; see roles.outside_agents)",
    )
    a2a_agents_file: str | None = Field(None, description="a file with more of them (JSON or YAML list)")
    role_a2a_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (),
        description="bearer keys a call to the role's A2A agent on NATS must carry (comma-separated); "
        "empty: any caller the NATS server lets publish on crews.a2a.<crew>.<role> (the chart's accounts)",
    )

    @field_validator("role_a2a_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    def outside_agents(self) -> dict[str, OutsideAgent]:
        """The operator's outside agents by name (``OutsideAgentsError`` when they cannot be read)."""
        return parse_agents(self.a2a_agents, self.a2a_agents_file)
