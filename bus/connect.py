"""Connect to NATS the way every crews process does: reconnect forever, log state changes.

``CREWS_NATS_URL`` may list several servers of one cluster separated by commas;
the client also learns the cluster's other servers from the one it reaches,
and moves to another when its server goes away.

Replies (JetStream acks and pulled messages, A2A replies) come to inboxes under
the process's own prefix, ``_INBOX_<user>`` for a URL that names a NATS user
(``CREWS_NATS_INBOX_PREFIX`` overrides it): the chart lets each user subscribe
only to its own, so no component reads another's replies.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote, urlsplit

import nats
from nats.aio.client import Client as NATS

from bus.lazy_imports import enable_websockets
from bus.settings import BusSettings
from bus.subjects import INBOX_PREFIX, token, user_inbox

log = logging.getLogger(__name__)


def nats_servers(url: str) -> list[str]:
    """The servers of ``url``: one URL, or several separated by commas."""
    return [part.strip() for part in url.split(",") if part.strip()]


def inbox_prefix(settings: BusSettings) -> str:
    """The inbox prefix of this process: the setting, else ``_INBOX_<user>`` of the URL, else ``_INBOX``."""
    prefix = settings.nats_inbox_prefix
    servers = nats_servers(settings.nats_url)
    user = unquote(urlsplit(servers[0]).username or "") if servers else ""
    try:
        if prefix:
            for part in prefix.split("."):
                token(part)
            return prefix
        return user_inbox(user) if user else INBOX_PREFIX
    except ValueError as exc:
        raise ValueError(
            f"no NATS inbox prefix of plain subject tokens for {prefix or user!r}: set CREWS_NATS_INBOX_PREFIX"
        ) from exc


async def connect(settings: BusSettings, name: str) -> NATS:
    """A NATS connection named ``name`` that reconnects forever (JetStream state survives restarts)."""

    async def disconnected() -> None:
        log.warning("%s: disconnected from NATS", name)

    async def reconnected() -> None:
        log.info("%s: reconnected to NATS", name)

    async def error(exc: Exception) -> None:
        log.warning("%s: NATS error: %s", name, exc)

    servers = nats_servers(settings.nats_url)
    if any(urlsplit(server).scheme in ("ws", "wss") for server in servers):
        enable_websockets()
    return await nats.connect(
        servers,
        name=name,
        inbox_prefix=inbox_prefix(settings),
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
    )
