"""Outside A2A agents, declared by the operator: the only addresses an ``engine: a2a`` role can reach.

A crew file names an agent (``agent: translator``); where it is and how to
authenticate to it come from the role worker's settings, never from the crew
file (which arrives over the API and is attacker-written)::

    CREWS_A2A_AGENTS='[{"name": "translator", "url": "https://translator.example.com",
                        "authorization_env": "TRANSLATOR_KEY"}]'
    CREWS_A2A_AGENTS_FILE=/etc/crews/agents.json      # the same list, in a file (JSON or YAML)

- ``url`` (HTTP: where its ``/.well-known/agent-card.json`` is, or the card's own
  URL) or ``nats`` (its name on the bus, ``crews.a2a.<nats>``), exactly one;
- ``authorization_env`` (a variable of the worker, e.g. filled from a Secret) or
  ``authorization_file`` (a mounted Secret): the ``Authorization`` value, a bare
  key is sent as ``Bearer <key>``;
- ``allow_private``: the agent's host may resolve to a loopback or private
  address (an agent inside the cluster). Link-local and cloud metadata addresses
  are refused whatever the declaration says.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from roles.errors import StepFailed

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_NATS_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class OutsideAgentsError(ValueError):
    """The operator's declaration of outside agents cannot be read; the message says what to fix."""


class OutsideAgent(BaseModel):
    """One outside A2A agent the operator lets crews use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="what a crew file's `agent:` names")
    url: str | None = Field(None, description="HTTP(S) address of the agent (its card is found there)")
    nats: str | None = Field(None, description="its name on NATS (crews.a2a.<nats>)")
    authorization_env: str | None = Field(
        None, description="environment variable holding the Authorization value (or a bare key)"
    )
    authorization_file: str | None = Field(None, description="file holding it (a mounted Secret)")
    allow_private: bool = Field(
        False, description="the host may be loopback or private (never link-local or metadata)"
    )

    @model_validator(mode="after")
    def _check(self) -> OutsideAgent:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"agent name {self.name!r}: use only letters, digits, '_' and '-'")
        if (self.url is None) == (self.nats is None):
            raise ValueError(
                f"agent {self.name!r}: give exactly one of url (HTTP) and nats (its name on NATS)"
            )
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"agent {self.name!r}: url must be http:// or https:// with a host")
            if parts.username or parts.password:
                raise ValueError(
                    f"agent {self.name!r}: keep credentials out of the url (use authorization_env)"
                )
        if self.nats is not None and not _NATS_NAME.fullmatch(self.nats):
            raise ValueError(f"agent {self.name!r}: nats must be letters, digits, '_' and '-' joined by '.'")
        if self.authorization_env is not None and not _VARIABLE.fullmatch(self.authorization_env):
            raise ValueError(f"agent {self.name!r}: authorization_env must be a variable name")
        if self.authorization_env is not None and self.authorization_file is not None:
            raise ValueError(f"agent {self.name!r}: give authorization_env or authorization_file, not both")
        return self

    @property
    def where(self) -> str:
        """How messages name the agent: its name and its address (never its credentials)."""
        return f"'{self.name}' ({self.url or f'crews.a2a.{self.nats}'})"

    def authorization(self) -> str | None:
        """The ``Authorization`` value to send (None: none); ``StepFailed`` when the declared source is empty."""
        if self.authorization_env is not None:
            value, source = os.environ.get(self.authorization_env, ""), f"variable {self.authorization_env}"
        elif self.authorization_file is not None:
            try:
                value = Path(self.authorization_file).read_text(encoding="utf-8")
            except OSError:
                value = ""
            source = f"file {self.authorization_file}"
        else:
            return None
        value = value.strip()
        if not value:
            raise StepFailed(
                f"the credential of outside agent '{self.name}' is missing: the {source} named by its "
                "declaration (CREWS_A2A_AGENTS) is empty or not set on this role worker"
            )
        return value if " " in value else f"Bearer {value}"


_LIST = TypeAdapter(list[OutsideAgent])


def parse_agents(declared: list[OutsideAgent] | None, file: str | None) -> dict[str, OutsideAgent]:
    """The declared agents by name, from the setting's list and the file's; a name declared twice is an error."""
    agents = list(declared or [])
    if file:
        agents += _read_file(file)
    by_name: dict[str, OutsideAgent] = {}
    for agent in agents:
        if agent.name in by_name:
            raise OutsideAgentsError(
                f"outside agent {agent.name!r} is declared twice (CREWS_A2A_AGENTS and its file)"
            )
        by_name[agent.name] = agent
    return by_name


def _read_file(file: str) -> list[OutsideAgent]:
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise OutsideAgentsError(f"CREWS_A2A_AGENTS_FILE {file} cannot be read: {exc.strerror}") from None
    data: Any
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise OutsideAgentsError(
                f"CREWS_A2A_AGENTS_FILE {file} is neither JSON nor YAML: {exc}"
            ) from None
    try:
        return _LIST.validate_python(data or [])
    except ValidationError as exc:
        raise OutsideAgentsError(f"CREWS_A2A_AGENTS_FILE {file}: {exc}") from None
