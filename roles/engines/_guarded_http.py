"""An httpx transport that keeps to one declared origin and refuses internal addresses (SSRF guard).

Every request must go to the declared scheme, host and port (an agent card
cannot send the call elsewhere). The host is resolved here, each address is
checked, and the connection is made to the checked address (the ``Host``
header and TLS server name stay the declared host), so DNS cannot answer one
address to the check and another to the connection.

Refused whatever the declaration says: link-local addresses (``169.254.0.0/16``,
``fe80::/10``, where cloud metadata lives), the metadata addresses themselves,
unspecified, multicast and reserved ones. Refused unless the operator allows
private hosts for that agent: loopback, private (RFC 1918, ``fc00::/7``),
shared (``100.64.0.0/10``) and any other address that is not global.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from roles.errors import StepFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class AddressRefused(StepFailed):
    """A request to an address the declaration does not allow; never retried (it cannot improve)."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        return cls(parts.scheme.lower(), host, parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why ``address`` may not be reached (None: it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA or address.is_link_local:
        return "a link-local or cloud metadata address"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "not a unicast address"
    if not allow_private and (address.is_loopback or address.is_private or not address.is_global):
        return "a loopback or private address (the agent's declaration does not set allow_private)"
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to (an address literal: itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


class GuardedTransport(httpx.AsyncBaseTransport):
    """Sends only to ``origin``, connecting to a checked address of its host."""

    def __init__(self, origin: Origin, *, allow_private: bool, agent: str) -> None:
        self.origin = origin
        self.allow_private = allow_private
        self.agent = agent
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        asked = Origin(url.scheme, (url.host or "").lower(), url.port or _DEFAULT_PORTS.get(url.scheme, 0))
        if asked != self.origin:
            raise AddressRefused(
                f"outside agent {self.agent!r} is declared at {self.origin}, but a call went to {asked}: "
                "its card names another host (declare the agent at the address its card uses)"
            )
        address = await self._checked_address()
        request.url = url.copy_with(host=str(address))  # the Host header keeps the declared name
        if url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": self.origin.host}
        return await self._inner.handle_async_request(request)

    async def _checked_address(self) -> IPAddress:
        try:
            addresses = await resolve(self.origin.host, self.origin.port)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {self.origin.host}: {exc}") from exc
        for address in addresses:
            why = refusal(address, allow_private=self.allow_private)
            if why is not None:
                raise AddressRefused(
                    f"outside agent {self.agent!r} at {self.origin.host} resolves to {address}, {why}: "
                    "refused (the operator can set allow_private for an agent inside the network)"
                )
        if not addresses:
            raise httpx.ConnectError(f"{self.origin.host} resolves to no address")
        return addresses[0]

    async def aclose(self) -> None:
        await self._inner.aclose()
