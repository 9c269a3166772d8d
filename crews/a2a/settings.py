"""Settings of the crews' A2A endpoints (prefix ``CREWS_A2A_``); every default works with ``crews up``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class A2ASettings(BaseSettings):
    """Discovery and push notifications of the crews served as A2A agents."""

    model_config = SettingsConfigDict(env_prefix="CREWS_A2A_", extra="ignore")

    default_crew: str = Field(
        "", description="the crew whose card the origin serves at /.well-known/agent-card.json (empty: none)"
    )
    push_allow_private: bool = Field(
        False,
        description="allow webhook URLs on loopback, link-local, private or metadata addresses (local use, tests)",
    )
    push_max_attempts: int = Field(8, gt=0, description="deliveries of one update before it is dropped")
    push_backoff_s: float = Field(1.0, gt=0, description="wait before the first retry; doubles each retry")
    push_backoff_max_s: float = Field(300.0, gt=0, description="longest wait between retries")
    push_timeout_s: float = Field(10.0, gt=0, description="how long one delivery may take")
    push_max_configs: int = Field(10, gt=0, description="most webhooks one task may have")
