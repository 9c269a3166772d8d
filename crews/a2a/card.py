"""The agent card of a crew: served at ``/a2a/<crew>/.well-known/agent-card.json``.

- One skill, the crew: its description, and its inputs with their types,
  defaults and descriptions (and how a message's parts fill them).
- ``capabilities.streaming``: every job streams its steps' status and artifacts;
  ``capabilities.pushNotifications``: every task takes webhooks (``crews.a2a.push``).
- ``supportedInterfaces``: JSON-RPC at ``/a2a/<crew>`` and HTTP+JSON (REST) under
  the same URL, then the NATS binding (``crews.a2a.<crew>``) for peers on the bus.
- ``securitySchemes`` ``api-key`` (HTTP bearer) when the API has keys, required
  on every call but the card itself.
"""

from __future__ import annotations

import json

from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from a2a.utils.constants import PROTOCOL_VERSION_CURRENT, TransportProtocol

from bus.a2a_nats.client import nats_agent_interface
from crews.a2a.inputs import TEXT_INPUT
from crews.spec.models import CrewSpec, InputSpec

SECURITY_SCHEME = "api-key"
MODES = ["text/plain", "application/json"]


def crew_card(
    spec: CrewSpec, agent_url: str, *, nats_url: str | None, auth: bool, version: str = "1.0.0"
) -> AgentCard:
    """The card of ``spec`` served at ``agent_url`` (``…/a2a/<crew>``)."""
    card = AgentCard(
        name=spec.name,
        description=spec.description or f"The crew '{spec.name}' ({spec.process}, {len(spec.roles)} roles).",
        version=version,
        provider=AgentProvider(organization="crews", url=agent_url.split("/a2a/")[0]),
        capabilities=AgentCapabilities(streaming=True, push_notifications=True),
        default_input_modes=MODES,
        default_output_modes=MODES,
        skills=[crew_skill(spec)],
    )
    card.supported_interfaces.extend(interfaces(spec.name, agent_url, nats_url))
    if auth:
        scheme = HTTPAuthSecurityScheme(
            scheme="bearer", description="An API key of the crews API (CREWS_API_KEYS), as a bearer token."
        )
        card.security_schemes[SECURITY_SCHEME].CopyFrom(SecurityScheme(http_auth_security_scheme=scheme))
        card.security_requirements.append(SecurityRequirement(schemes={SECURITY_SCHEME: StringList()}))
    return card


def interfaces(crew: str, agent_url: str, nats_url: str | None) -> list[AgentInterface]:
    http = [
        AgentInterface(url=agent_url, protocol_binding=binding, protocol_version=PROTOCOL_VERSION_CURRENT)
        for binding in (TransportProtocol.JSONRPC.value, TransportProtocol.HTTP_JSON.value)
    ]
    return [*http, nats_agent_interface(crew, nats_url)] if nats_url else http


def crew_skill(spec: CrewSpec) -> AgentSkill:
    lines = [spec.description or f"Runs the crew '{spec.name}'."]
    if spec.inputs:
        lines.append("Inputs (send them as a JSON object in a data part):")
        lines += [f"- {name}: {_input_line(value)}" for name, value in spec.inputs.items()]
        lines.append(_text_rule(spec))
    lines.append(f"Tasks: {', '.join(spec.tasks)}. The answer is the output of the crew's last task.")
    return AgentSkill(
        id=spec.name,
        name=spec.name,
        description="\n".join(lines),
        tags=["crew", spec.process, *spec.roles],
        examples=[_example(spec)] if spec.inputs else [],
        input_modes=MODES,
        output_modes=MODES,
    )


def _input_line(value: InputSpec) -> str:
    need = "required" if value.required else f"default {value.default!r}"
    return f"{value.type}, {need}" + (f": {value.description}" if value.description else "")


def _text_rule(spec: CrewSpec) -> str:
    required = [name for name, value in spec.inputs.items() if value.required]
    if TEXT_INPUT in spec.inputs:
        target = TEXT_INPUT
    elif len(required) == 1:
        target = required[0]
    elif len(spec.inputs) == 1:
        target = next(iter(spec.inputs))
    else:
        return "A text part alone is not enough: send the inputs in a data part."
    return f"A text part alone fills '{target}'."


def _example(spec: CrewSpec) -> str:
    return json.dumps(
        {name: "..." if value.required else value.default for name, value in spec.inputs.items()}
    )
