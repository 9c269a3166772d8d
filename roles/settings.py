"""Role worker settings (prefix ``CREWS_``); every default works with ``crews up``."""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bus.settings import RedisSettings


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
