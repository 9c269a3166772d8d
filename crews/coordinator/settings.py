"""Settings of the crews services (prefix ``CREWS_``); every default works with ``crews up``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bus.settings import RedisSettings


class CrewsSettings(RedisSettings):
    """Where the job store lives (``RedisSettings``) and how long jobs may run and are kept."""

    model_config = SettingsConfigDict(env_prefix="CREWS_", extra="ignore")

    job_timeout_s: float = Field(3600.0, gt=0, description="a job still running after this long fails")
    job_ttl_s: int = Field(7 * 24 * 3600, gt=0, description="how long a finished job's keys are kept")
    tick_s: float = Field(
        1.0, gt=0, description="how often the coordinator checks deadlines and dead letters"
    )
    tick_max_backoff_s: float = Field(
        10.0, gt=0, description="longest wait between two checks while Redis or NATS is down"
    )
    coordinator_event_concurrency: int = Field(
        64,
        ge=1,
        description="step ends a coordinator handles at once: above the slots of the workers it feeds, "
        "or they wait for its dispatches (each handling waits on Redis and NATS, not on the CPU)",
    )
    coordinator_submission_concurrency: int = Field(
        32, ge=1, description="job submissions a coordinator plans and starts at once"
    )
    a2a_public_url: str = Field(
        "",
        description="base URL clients reach the API at, for the crews' agent cards (empty: the request's URL)",
    )
