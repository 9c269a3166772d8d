"""Connect to NATS the way every crews process does: reconnect forever, log state changes.

``CREWS_NATS_URL`` may list several servers of one cluster separated by commas;
the client also learns the cluster's other servers from the one it reaches,
and moves to another when its server goes away.
"""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client as NATS

from bus.settings import BusSettings

log = logging.getLogger(__name__)


def nats_servers(url: str) -> list[str]:
    """The servers of ``url``: one URL, or several separated by commas."""
    return [part.strip() for part in url.split(",") if part.strip()]


async def connect(settings: BusSettings, name: str) -> NATS:
    """A NATS connection named ``name`` that reconnects forever (JetStream state survives restarts)."""

    async def disconnected() -> None:
        log.warning("%s: disconnected from NATS", name)

    async def reconnected() -> None:
        log.info("%s: reconnected to NATS", name)

    async def error(exc: Exception) -> None:
        log.warning("%s: NATS error: %s", name, exc)

    return await nats.connect(
        nats_servers(settings.nats_url),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
    )
