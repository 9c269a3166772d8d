"""The MCP servers the operator declares: settings only, never a crew file.

``CREWS_MCP_SERVERS`` (JSON) or ``CREWS_MCP_SERVERS_FILE`` (a JSON or YAML
file; both may be set, a name in both is an error) map a server name to how to
reach it::

    {"payments": {"url": "http://payments-mcp:8000/mcp",
                  "headers_from": {"Authorization": "PAYMENTS_MCP_AUTH"},
                  "approval": {"refund": "required"},
                  "timeout_s": 20},
     "files":    {"command": "python", "args": ["-m", "files_server"],
                  "env_from": {"FILES_ROOT": "CREWS_FILES_ROOT"}}}

- ``url`` (streamable HTTP) or ``command`` + ``args`` (stdio, for local development);
- ``headers_from`` / ``env_from``: header (or child environment variable) →
  the name of an environment variable of the worker that holds its value; the
  values are read when connecting and never logged, traced or stored;
- ``approval``: per tool (``"*"``: every tool of the server) ``required`` (a
  crew file cannot loosen it) or ``none``; otherwise a tool not marked
  ``readOnlyHint: true`` by the server needs approval unless the crew file says
  ``approval: none``;
- ``timeout_s`` (one call), ``retries`` (connection failures, with backoff),
  ``list_ttl_s`` (how long a tool listing is reused; a list-changed
  notification drops it sooner).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from roles.errors import RoleError

SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
Approval = Literal["none", "required"]


class McpConfigError(RoleError):
    """The operator's MCP server declarations are wrong; the message says which and how to fix them."""


class McpServer(BaseModel):
    """How to reach one MCP server, and the operator's approval rules for its tools."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    url: str | None = Field(None, description="streamable HTTP endpoint, e.g. http://payments:8000/mcp")
    command: str | None = Field(None, description="stdio: the program to start (local development)")
    args: list[str] = Field(default_factory=list)
    headers_from: dict[str, Annotated[str, Field(pattern=ENV_NAME)]] = Field(default_factory=dict)
    env_from: dict[str, Annotated[str, Field(pattern=ENV_NAME)]] = Field(default_factory=dict)
    approval: dict[str, Approval] = Field(default_factory=dict)
    timeout_s: float = Field(30.0, gt=0, le=3600)
    retries: int = Field(3, ge=0, le=10)
    list_ttl_s: float = Field(300.0, ge=0)

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.url is None) == (self.command is None):
            raise ValueError("set either url (streamable HTTP) or command (stdio), not both and not neither")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url {self.url!r} must start with http:// or https://")
        return self

    def headers(self) -> dict[str, str]:
        """The headers to send, read now from the environment variables the operator named."""
        return {header: _env(self.name, var) for header, var in self.headers_from.items()}

    def child_env(self) -> dict[str, str]:
        return {name: _env(self.name, var) for name, var in self.env_from.items()}

    def operator_rule(self, tool: str) -> Approval | None:
        return self.approval.get(tool) or self.approval.get("*")


def _env(server: str, var: str) -> str:
    value = os.environ.get(var)
    if value is None:
        raise McpConfigError(
            f"MCP server {server!r} takes a credential from ${var}, which is not set: set it in the "
            "worker's environment (in Kubernetes: from a Secret)"
        )
    return value


class McpSettings(BaseSettings):
    """Where the declarations are: ``CREWS_MCP_SERVERS`` (JSON) and/or ``CREWS_MCP_SERVERS_FILE``."""

    model_config = SettingsConfigDict(env_prefix="CREWS_", extra="ignore")

    mcp_servers: str = Field("", description="JSON object: server name → declaration")
    mcp_servers_file: Path | None = Field(None, description="JSON or YAML file of the same shape")

    @property
    def declared(self) -> bool:
        return bool(self.mcp_servers.strip()) or self.mcp_servers_file is not None

    def servers(self) -> dict[str, McpServer]:
        """Every declared server by name; ``McpConfigError`` naming the setting and the mistake."""
        found: dict[str, McpServer] = {}
        if self.mcp_servers.strip():
            found.update(_parse(_json(self.mcp_servers), "CREWS_MCP_SERVERS"))
        if self.mcp_servers_file is not None:
            where = f"CREWS_MCP_SERVERS_FILE ({self.mcp_servers_file})"
            for name, server in _parse(_file(self.mcp_servers_file, where), where).items():
                if name in found:
                    raise McpConfigError(
                        f"MCP server {name!r} is declared twice ({where} and CREWS_MCP_SERVERS)"
                    )
                found[name] = server
        return found


def _json(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise McpConfigError(f"CREWS_MCP_SERVERS is not JSON ({exc}): give an object of servers") from None


def _file(path: Path, where: str) -> object:
    import yaml  # here: a worker with no MCP file starts without it

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise McpConfigError(f"{where} cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise McpConfigError(f"{where} is not JSON or YAML: {exc}") from None


def _parse(data: object, where: str) -> dict[str, McpServer]:
    if not isinstance(data, dict):
        raise McpConfigError(
            f'{where} must be an object of servers by name, e.g. {{"payments": {{"url": …}}}}'
        )
    servers = {}
    for name, body in data.items():
        if not isinstance(name, str) or not SERVER_NAME.fullmatch(name):
            raise McpConfigError(
                f"{where}: {name!r} cannot be a server name: use 1-40 letters, digits, '_', '-'"
            )
        if not isinstance(body, dict):
            raise McpConfigError(f"{where}: server {name!r} must be an object with url or command")
        try:
            servers[name] = McpServer.model_validate({**body, "name": name})
        except ValidationError as exc:
            issues = "; ".join(f"{'.'.join(map(str, e['loc'])) or name}: {e['msg']}" for e in exc.errors())
            raise McpConfigError(f"{where}: server {name!r}: {issues}") from None
    return servers
