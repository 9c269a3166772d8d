"""Settings of the all-in-one local stack (``crews up``), prefix ``CREWS_``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from crews.deploy.helm_values import SCALING_POLICY
from crews.spec.project_refs import split_paths
from inference.cache_dir import default_cache_dir


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CREWS_", extra="ignore")

    home: Path = Field(
        default_factory=lambda: default_cache_dir() / "stack", description="data of the local servers"
    )
    local_llm: Literal["vllm", "scripted"] = Field(
        "vllm",
        description="the local LLM pool when CREWS_LLM_URLS is unset: a real vLLM, or the scripted echo server",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    nats_port: int = 4222
    redis_port: int = 6379
    llm_port: int = 8000
    scale_poll_s: float = Field(
        1.0, gt=0, description="how often the local autoscaler reads queue depth (the chart's KEDA: 15 s)"
    )
    scale_cooldown_s: float = Field(
        SCALING_POLICY.cooldown_s,
        ge=0,
        description="time without need before a role scales in (as the chart)",
    )
    project_paths: Annotated[list[Path], NoDecode, BeforeValidator(split_paths)] = Field(
        [],
        description="CrewAI projects (package directories) whose code the crewai workers may import "
        "(`crews up --project DIR`); passed to them as CREWS_PROJECT_PATHS",
    )
