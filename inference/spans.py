"""The attributes of the client's GenAI spans (OpenTelemetry semantic conventions for GenAI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import Span

from inference.results import ChatResult
from inference.wire import Completion


def set_request_attributes(
    span: Span, provider: str, request: Mapping[str, Any], job_id: str, role: str, step: str
) -> None:
    span.set_attribute("gen_ai.operation.name", "chat")
    span.set_attribute("gen_ai.provider.name", provider)
    span.set_attribute("gen_ai.system", provider)
    span.set_attribute("gen_ai.request.model", request["model"])
    if "temperature" in request:
        span.set_attribute("gen_ai.request.temperature", request["temperature"])
    if "max_tokens" in request:
        span.set_attribute("gen_ai.request.max_tokens", request["max_tokens"])
    span.set_attribute("crews.job.id", job_id)
    span.set_attribute("crews.role", role)
    if step:
        span.set_attribute("crews.step", step)


def set_response_attributes(span: Span, completion: Completion, result: ChatResult) -> None:
    span.set_attribute("gen_ai.response.model", completion.model)
    span.set_attribute("gen_ai.response.id", completion.id)
    if result.finish_reason:
        span.set_attribute("gen_ai.response.finish_reasons", [result.finish_reason])
    span.set_attribute("gen_ai.usage.input_tokens", result.usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", result.usage.output_tokens)
    span.set_attribute("crews.cost_usd", result.usage.cost_usd)
    url = urlsplit(result.endpoint)
    if url.hostname:
        span.set_attribute("server.address", url.hostname)
    if url.port:
        span.set_attribute("server.port", url.port)
    span.set_attribute("crews.llm.attempts", result.attempts)


def set_overflow_attributes(span: Span, provider: str, model: str) -> None:
    """The overflow endpoint answered: its provider, and the model the request asked it for."""
    span.update_name(f"chat {model}")
    span.set_attribute("gen_ai.provider.name", provider)
    span.set_attribute("gen_ai.system", provider)
    span.set_attribute("gen_ai.request.model", model)
    span.set_attribute("crews.llm.overflow", True)
