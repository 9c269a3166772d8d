"""Bus settings (prefix ``CREWS_``); every default works with ``crews up``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BusSettings(BaseSettings):
    """How to reach NATS and how role consumers redeliver."""

    model_config = SettingsConfigDict(env_prefix="CREWS_", extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    manage_streams: bool = Field(
        True, description="create/update the streams at start; false: wait for the coordinator to (the chart)"
    )
    ack_wait_s: float = Field(
        30.0, gt=0, description="redeliver a step when no ack or progress for this long"
    )
    max_deliver: int = Field(5, ge=1, description="deliveries before a step is dead-lettered")
    max_ack_pending: int = Field(1000, ge=1)
    events_max_age_s: float = Field(7 * 24 * 3600.0, gt=0, description="how long job events stay replayable")
    dead_max_age_s: float = Field(30 * 24 * 3600.0, gt=0)
