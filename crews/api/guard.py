"""What every request must show before a route sees it: a served Host, an allowed Origin, a JSON body type.

- ``Host`` must be one of ``CREWS_API_ALLOWED_HOSTS`` (default: the loopback
  names; ``*`` turns the check off), else 421: a page on another site that
  re-points its DNS name at this server (DNS rebinding) is not served. The
  probes (``/healthz``, ``/readyz``) and ``/metrics`` (an admin key) are exempt:
  kubelets and scrapers call them by pod address.
- ``Origin``, when a browser sends one, must name an allowed host too, else 403.
- A ``POST`` must say its body is JSON (``application/json``, ``…+json``; a crew
  file may also be YAML), else 415. Browsers send ``text/plain``, form types or
  no type without asking first (a "simple" cross-site request: CSRF); any other
  type needs a CORS preflight, which this API never grants. A POST without a
  body (A2A's ``:cancel``, ``:subscribe``) passes when it carries a header that
  also needs a preflight (``Authorization`` or ``A2A-Version``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from a2a.utils.constants import VERSION_HEADER
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from crews.api.errors import Forbidden, MisdirectedHost, UnsupportedMediaType, error_response
from crews.api.parsing import YAML_TYPES

EXEMPT = ("/healthz", "/readyz", "/metrics")


def host_name(value: str) -> str:
    """The name in a ``Host`` header, without port or brackets, lower-case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_json(media: str) -> bool:
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class RequestGuard:
    """Refuses requests whose Host, Origin or body type the API does not serve (see the module doc)."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...]) -> None:
        self.app = app
        self.any_host = "*" in allowed_hosts
        self.allowed = frozenset(host.lower() for host in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            await error_response(refusal)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> Exception | None:
        headers = Headers(scope=scope)
        path: str = scope["path"]
        if path not in EXEMPT and not self._served(host_name(headers.get("host", ""))):
            return MisdirectedHost(
                f"this server does not serve the host {headers.get('host', '')!r}: call it by one of its names "
                "(CREWS_API_ALLOWED_HOSTS)"
            )
        origin = headers.get("origin")
        if origin is not None and not self._served((urlsplit(origin).hostname or "").lower()):
            return Forbidden(
                f"requests from the web origin {origin!r} are not served: only the API's own names "
                "(CREWS_API_ALLOWED_HOSTS) may call it from a browser"
            )
        if scope["method"] == "POST":
            media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            crew_file = path.rstrip("/") == "/crews" and media in YAML_TYPES
            bodiless = (
                not media and headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers
            )
            preflighted = "authorization" in headers or VERSION_HEADER.lower() in headers
            if not (is_json(media) or crew_file or (bodiless and preflighted)):
                return UnsupportedMediaType(
                    f"a POST must send JSON (Content-Type: application/json; a crew file may be "
                    f"application/yaml), not {media or 'a body without Content-Type'}"
                )
        return None

    def _served(self, host: str) -> bool:
        return self.any_host or host in self.allowed
