"""Prompts and answers on chat spans, opt-in, as the OpenTelemetry GenAI conventions define them.

Off by default. With ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``
each chat span carries ``gen_ai.input.messages`` and ``gen_ai.output.messages``
(JSON: ``[{"role", "parts": [{"type": "text", "content"} | {"type": "tool_call", ...}
| {"type": "tool_call_response", ...}]}]``). Secrets never: every value of a
secret this process knows (settings marked secret, and environment variables
whose names say KEY, TOKEN, SECRET or PASSWORD) is replaced by ``[redacted]``
before it reaches a span.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_MIN_SECRET = 6  # shorter values would redact ordinary words
REDACTED = "[redacted]"


def capture_enabled() -> bool:
    return os.environ.get(CAPTURE_ENV, "").strip().lower() in {"1", "true", "yes"}


def known_secrets(extra: Iterable[str] = ()) -> list[str]:
    """Values to keep out of spans: ``extra`` and secret-looking environment variables (comma lists split)."""
    values = set(extra)
    for name, value in os.environ.items():
        if _SECRET_NAME.search(name) or name.endswith("_URL"):
            values.update(part.strip() for part in value.split(","))
    return sorted((v for v in values if len(v) >= _MIN_SECRET), key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return "" if content is None else json.dumps(content)


def input_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chat-completion messages → GenAI input messages."""
    converted = []
    for message in messages:
        parts: list[dict[str, Any]] = []
        if message.get("role") == "tool":
            parts.append(
                {
                    "type": "tool_call_response",
                    "id": message.get("tool_call_id"),
                    "response": _text(message.get("content")),
                }
            )
        elif message.get("content"):
            parts.append({"type": "text", "content": _text(message.get("content"))})
        for call in message.get("tool_calls") or []:
            function = call.get("function", {})
            parts.append(
                {"type": "tool_call", "id": call.get("id"), "name": function.get("name"),
                 "arguments": function.get("arguments")}
            )  # fmt: skip
        converted.append({"role": message.get("role", "user"), "parts": parts})
    return converted


def output_messages(
    content: str | None, tool_calls: Iterable[tuple[str, str, Any]], finish: str | None
) -> list[dict[str, Any]]:
    """The answer → GenAI output messages (``tool_calls``: id, name, arguments)."""
    parts: list[dict[str, Any]] = [{"type": "text", "content": content}] if content else []
    parts += [{"type": "tool_call", "id": i, "name": n, "arguments": a} for i, n, a in tool_calls]
    return [{"role": "assistant", "parts": parts, "finish_reason": finish or "stop"}]


def as_attribute(messages: list[dict[str, Any]], secrets: Sequence[str]) -> str:
    return redact(json.dumps(messages, ensure_ascii=False), secrets)
