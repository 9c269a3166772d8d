"""Finding the pool's servers behind one DNS name (a Kubernetes headless Service).

``CREWS_LLM_DISCOVER=http://<release>-crews-vllm-pods:8000/v1`` names the pool
by a host whose A/AAAA records are its servers: a headless Service resolves to
the address of every ready pod. ``Discovery`` resolves the name (``resolve``:
the system resolver, ``getaddrinfo`` through asyncio), again every
``interval_s`` seconds, and hands the endpoint URLs (the URL with each address
in place of the host) to a callback whenever they change, so pods that start
join the pool and pods that go away leave it.

A name that does not exist or has no address (what a headless Service answers
while no pod is ready) empties the pool. Any other failure (the DNS server
does not answer) keeps the endpoints of the last resolution.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port)`` → the host's addresses; ``resolve`` is the real one."""

RESOLVE_TIMEOUT_S = 10.0
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


async def resolve(host: str, port: int) -> list[str]:
    """Every address of ``host`` (A and AAAA records), deduplicated and sorted; [] when it has none."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in _NO_SUCH_NAME:
            return []
        raise
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class DiscoveryURL:
    """``scheme://host:port/path``: the host is the name to resolve, the rest is every endpoint's."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> DiscoveryURL:
        parts = urlsplit(url.strip())
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"CREWS_LLM_DISCOVER={url!r} has a bad port ({exc})") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"CREWS_LLM_DISCOVER={url!r} is not an http(s) URL with a host name: give the headless "
                "Service's URL, e.g. http://crews-crews-vllm-pods:8000/v1"
            )
        default_port = 443 if parts.scheme == "https" else 80
        return cls(parts.scheme, parts.hostname, port or default_port, parts.path.rstrip("/"))

    def url_for(self, address: str) -> str:
        """The endpoint URL of one address (IPv6 in brackets)."""
        host = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path}"


class Discovery:
    """Resolves the pool's name now and every ``interval_s``; calls ``on_change`` with new URL lists."""

    def __init__(
        self,
        url: str,
        on_change: Callable[[list[str]], Awaitable[None]],
        *,
        interval_s: float = 5.0,
        resolver: Resolver = resolve,
    ) -> None:
        self.target = DiscoveryURL.parse(url)
        self.urls: list[str] | None = None
        """The endpoints of the last resolution that answered (None before the first)."""
        self.resolutions = 0
        """How many resolutions have been attempted (failed ones included)."""
        self._on_change = on_change
        self._interval_s = interval_s
        self._resolver = resolver
        self._resolved = asyncio.Condition()

    async def refresh(self) -> list[str] | None:
        """Resolve once; on a change, call ``on_change``. Returns the current URLs."""
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that races the
            # answer, and the cancelled loop then runs forever (LLMPool.aclose hung on it)
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                addresses = await self._resolver(self.target.host, self.target.port)
        except (OSError, TimeoutError) as exc:
            log.warning(
                "cannot resolve the LLM pool's name %s (%s); keeping its %s endpoints",
                self.target.host,
                exc,
                len(self.urls or []),
            )
            addresses = None
        async with self._resolved:
            self.resolutions += 1
            if addresses is not None:
                urls = [self.target.url_for(address) for address in addresses]
                if urls != self.urls:
                    log.info("LLM pool %s: %s endpoints %s", self.target, len(urls), urls)
                    self.urls = urls
                    await self._on_change(urls)
            self._resolved.notify_all()
            return self.urls

    async def run(self) -> None:
        """Re-resolve every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.refresh()
            except Exception:
                log.exception("LLM pool discovery of %s failed; trying again", self.target)

    async def wait_for(self, predicate: Callable[[list[str]], bool]) -> list[str]:
        """Wait until a resolution's URLs satisfy ``predicate``; returns them."""
        async with self._resolved:
            await self._resolved.wait_for(lambda: self.urls is not None and predicate(self.urls))
            assert self.urls is not None
            return self.urls
