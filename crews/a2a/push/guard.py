"""Which webhook URLs the service may call: http(s) to public addresses only, unless the operator allows more.

A webhook URL comes from a caller, so it could point the service at itself or
its neighbours (server-side request forgery). The host is resolved (every
address it has) and refused when any address is loopback, link-local (the
cloud metadata endpoint 169.254.169.254 among them), private, shared
(100.64/10), multicast, reserved or unspecified; an IPv4-mapped IPv6 address
is judged as its IPv4 address. ``CREWS_A2A_PUSH_ALLOW_PRIVATE=true`` lifts the
address check (local use, tests). Deliveries check again before each
attempt, so a name that later resolves elsewhere is refused then too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from crews.errors import CrewsError


class WebhookRefused(CrewsError):
    """A webhook URL the service will not call; the message says why and what is allowed."""


async def check_webhook(url: str, *, allow_private: bool) -> None:
    """Return when ``url`` may be called; ``WebhookRefused`` otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise WebhookRefused(f"the webhook URL {url!r} cannot be parsed: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused(f"the webhook URL {url!r} must be http(s)://host[:port]/path")
    if parts.username or parts.password:
        raise WebhookRefused("the webhook URL must not carry credentials: use the config's authentication")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookRefused(f"the webhook host {parts.hostname!r} does not resolve: {exc}") from exc
    for info in infos:
        address = str(info[4][0])
        if blocked(address):
            raise WebhookRefused(
                f"the webhook host {parts.hostname!r} resolves to {address}, a loopback, link-local, private "
                "or reserved address: give a public URL (the operator may allow private ones with "
                "CREWS_A2A_PUSH_ALLOW_PRIVATE)"
            )


def blocked(address: str) -> bool:
    """Whether ``address`` is not a public unicast destination."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        not ip.is_global
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )
