"""The HTTP under the LLM client: one keep-alive aiohttp session per endpoint, POSTing JSON bytes.

aiohttp, not httpx: its C HTTP parser makes a chat completion's round trip
cost ~260 µs of the caller's CPU against httpx's ~1,200 (bench/FINDINGS.md,
session 6), and the LLM call is on every step. The session is opened on the
first request (aiohttp binds it to the running event loop), follows the
``HTTP(S)_PROXY`` / ``NO_PROXY`` environment as httpx did, and reads each reply
whole before returning it as an ``HTTPReply``, so nothing outside this module
sees aiohttp. The proxy is looked up once, when the client is made: aiohttp's
``trust_env`` looks it up (and reads ``~/.netrc``) in a thread on every
request, ~350 µs of the caller's CPU a call (bench/FINDINGS.md, session 10).
Transport failures (refused, reset, timed out) raise ``TransportFailed``
naming aiohttp's exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus

import aiohttp
from aiohttp import BasicAuth
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL


class TransportFailed(Exception):
    """The request got no HTTP answer: ``kind`` names the failure (``ClientConnectorError``, ``SocketTimeoutError``)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass(frozen=True)
class Timeouts:
    """Seconds: to connect (and to wait for a free connection), and between two reads of an answer."""

    connect_s: float
    read_s: float


@dataclass(frozen=True)
class HTTPReply:
    """An answer, read whole: its status, headers and body."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def reason_phrase(self) -> str:
        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""


class EndpointClient:
    """Keep-alive HTTP to one endpoint (its base URL, e.g. ``…/v1``) with its bearer key and timeouts."""

    def __init__(self, base_url: str, api_key: str, timeouts: Timeouts) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeouts.connect_s, sock_connect=timeouts.connect_s, sock_read=timeouts.read_s
        )
        self._session: aiohttp.ClientSession | None = None
        self._proxy = _env_proxy(self.base_url)

    def _opened(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0, keepalive_timeout=30.0)
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout, connector=connector
            )
        return self._session

    async def post(self, path: str, content: bytes, headers: Mapping[str, str]) -> HTTPReply:
        """POST ``content`` to ``<base_url>/<path>``; the answer, whatever its status."""
        try:
            proxy, proxy_auth = self._proxy or (None, None)
            async with self._opened().post(
                f"{self.base_url}/{path}", data=content, headers=headers, proxy=proxy, proxy_auth=proxy_auth
            ) as reply:
                body = await reply.read()
                return HTTPReply(reply.status, body, reply.headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TransportFailed(type(exc).__name__, str(exc)) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _env_proxy(url: str) -> tuple[URL, BasicAuth | None] | None:
    """The environment's proxy for ``url`` (``HTTP_PROXY`` and ``NO_PROXY``, proxy auth from ``~/.netrc``) as
    aiohttp's ``trust_env`` finds it; None: connect directly."""
    try:
        return get_env_proxy_for_url(URL(url))
    except LookupError:
        return None
