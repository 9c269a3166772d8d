"""Bus settings (prefix ``CREWS_``); every default works with ``crews up``.

``BusSettings`` says how to reach NATS; ``RedisSettings`` how to reach the job
state (one Redis server or a Redis/Valkey cluster), shared by the crews
services' and the role workers' settings.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BusSettings(BaseSettings):
    """How to reach NATS and how role consumers redeliver."""

    model_config = SettingsConfigDict(env_prefix="CREWS_", extra="ignore")

    nats_url: str = Field(
        "nats://127.0.0.1:4222",
        description="the NATS server, or several of one cluster separated by commas (nats://a:4222,nats://b:4222)",
    )
    nats_inbox_prefix: str | None = Field(
        None,
        description="prefix of this process's reply inboxes; default _INBOX_<user> for a URL with a user "
        "(the chart's NATS permissions allow each user only its own), else _INBOX",
    )
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
    stream_replicas: int = Field(
        1,
        ge=1,
        le=5,
        description="copies of each JetStream stream in a NATS cluster (3: survives a node loss)",
    )


class RedisSettings(BaseSettings):
    """Where the job state is: one Redis server, or a Redis (Valkey) cluster."""

    model_config = SettingsConfigDict(env_prefix="CREWS_", extra="ignore")

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="redis://, rediss://, or redis+cluster:// (rediss+cluster://) for a cluster node",
    )
    redis_cluster: bool = Field(
        False, description="talk to a Redis cluster (also chosen by a redis+cluster:// URL)"
    )
    redis_failover_s: float = Field(
        30.0,
        ge=0,
        description="in a cluster, how long a command is retried while a failed primary's replica takes over",
    )

    @property
    def cluster(self) -> bool:
        """Whether the URL names a cluster: the setting, or a ``+cluster`` scheme."""
        return self.redis_cluster or self.redis_url.split("://", 1)[0].endswith("+cluster")
