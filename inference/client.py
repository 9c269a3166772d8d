"""The one LLM client every engine uses: OpenAI-compatible chat completions over a pool of endpoints.

``LLMPool.chat`` routes each request (``inference.routing``), retries transient
failures with exponential backoff, checks and records the job's token budget,
tags the request with the job, role and step (headers and W3C trace context),
and wraps it in an OpenTelemetry GenAI span.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionMessageFunctionToolCall
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from inference.budget import TokenBudget
from inference.content import as_attribute, capture_enabled, input_messages, known_secrets, output_messages
from inference.errors import BadLLMResponse, InferenceError, LLMUnavailable
from inference.headers import request_headers
from inference.pricing import call_cost
from inference.results import ChatResult, ToolCall, Usage
from inference.routing import Endpoint, Router
from inference.settings import InferenceSettings

ToolChoice = Literal["auto", "none", "required"] | Mapping[str, Any]
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


class LLMPool:
    """Async client for a pool of OpenAI-compatible endpoints (vLLM, the scripted server, any provider)."""

    def __init__(
        self,
        settings: InferenceSettings | None = None,
        *,
        budget: TokenBudget | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings or InferenceSettings()
        self.budget = budget
        s = self.settings
        self.router = Router(
            s.llm_urls, affinity_slack=s.llm_affinity_slack, cooldown_s=s.llm_endpoint_cooldown_s
        )
        timeout = openai.Timeout(s.llm_timeout_s, connect=s.llm_connect_timeout_s)
        self._clients = {
            e.url: AsyncOpenAI(
                base_url=e.url, api_key=s.llm_api_key.get_secret_value(), timeout=timeout, max_retries=0
            )
            for e in self.router.endpoints
        }
        self._sleep = sleep
        self._tracer = trace.get_tracer("inference")

    async def __aenter__(self) -> LLMPool:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()

    async def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        job_id: str,
        role: str,
        step: str = "",
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: ToolChoice | None = None,
        response_format: Mapping[str, Any] | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        budget: TokenBudget | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatResult:
        """One chat completion for ``role`` on ``step`` of ``job_id``.

        Raises ``BudgetExceeded`` before calling when the job's budget is spent,
        ``LLMUnavailable`` (retryable) when every attempt failed with 429/5xx,
        a timeout or a refused connection, and ``BadLLMResponse`` when the pool
        refused the request (4xx) or answered with unusable tool arguments.
        """
        budget = budget or self.budget
        reserve = (max_tokens or self.settings.llm_default_max_tokens) + prompt_estimate(messages)
        if budget is not None:
            await budget.check(job_id, role, reserve=reserve)
        model = model or self.settings.llm_model
        request: dict[str, Any] = {"model": model, "messages": list(messages)}
        optional = {
            "tools": list(tools) if tools else None,
            "tool_choice": tool_choice,
            "response_format": response_format,
            "temperature": temperature,
            "max_tokens": max_tokens or self.settings.llm_default_max_tokens,
            "extra_body": extra_body,
        }
        request.update({key: value for key, value in optional.items() if value is not None})
        with self._tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT) as span:
            _set_request_attributes(span, self.settings.llm_provider, request, job_id, role, step)
            try:
                try:
                    completion, endpoint, attempts = await self._complete(request, job_id, role, step)
                except BaseException:
                    if budget is not None:
                        await budget.release(job_id, role, reserve)
                    raise
                usage = _usage(completion, model, self.settings)
                if budget is not None:
                    await budget.record(job_id, role, usage, reserved=reserve)
                result = _result(completion, usage, endpoint.url, attempts)
            except InferenceError as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            _set_response_attributes(span, completion, result)
            if capture_enabled():
                self._capture(span, request, result)
            return result

    def _capture(self, span: Span, request: Mapping[str, Any], result: ChatResult) -> None:
        """Opt-in content capture (``inference.content``), secrets redacted."""
        secrets = known_secrets([self.settings.llm_api_key.get_secret_value()])
        span.set_attribute(
            "gen_ai.input.messages", as_attribute(input_messages(request["messages"]), secrets)
        )
        calls = [(call.id, call.name, call.arguments) for call in result.tool_calls]
        output = output_messages(result.content, calls, result.finish_reason)
        span.set_attribute("gen_ai.output.messages", as_attribute(output, secrets))

    async def _complete(
        self, request: dict[str, Any], job_id: str, role: str, step: str
    ) -> tuple[ChatCompletion, Endpoint, int]:
        headers = request_headers(job_id, role, step)
        propagate.inject(headers)
        attempts = self.settings.llm_max_retries + 1
        avoid: Endpoint | None = None
        failures: list[str] = []
        for attempt in range(attempts):
            endpoint = self.router.pick(job_id, avoid=avoid)
            hint: float | None = None
            try:
                with self.router.track(endpoint):
                    completion = await self._post(endpoint, request, headers)
            except openai.APIConnectionError as exc:  # includes APITimeoutError
                failures.append(f"{endpoint.url}: {type(exc).__name__}")
            except openai.APIStatusError as exc:
                if exc.status_code < 500 and exc.status_code not in RETRYABLE_STATUS:
                    raise _refused(exc, endpoint, request["model"]) from exc
                failures.append(f"{endpoint.url}: HTTP {exc.status_code}")
                hint = _retry_after(exc)
            else:
                self.router.mark_ok(endpoint)
                return completion, endpoint, attempt + 1
            self.router.mark_failed(endpoint)
            avoid = endpoint
            if attempt + 1 < attempts:
                await self._sleep(self._backoff(attempt, hint))
        raise LLMUnavailable(
            f"the LLM pool did not answer {role}/{step or '-'} of job {job_id} after {attempts} attempts "
            f"({'; '.join(failures[-3:])}): check that the servers in CREWS_LLM_URLS are up, "
            "or retry the step later",
            retry_after=self.settings.llm_backoff_max_s,
        )

    async def _post(
        self, endpoint: Endpoint, request: dict[str, Any], headers: dict[str, str]
    ) -> ChatCompletion:
        """POST the request as built: the SDK's per-message request transform costs ~1 ms of CPU a call
        and changes nothing for JSON messages (bench/FINDINGS.md); errors and retries stay the SDK's."""
        body = {k: v for k, v in request.items() if k != "extra_body"}
        body.update(request.get("extra_body") or {})
        return await self._clients[endpoint.url].post(
            "/chat/completions", cast_to=ChatCompletion, body=body, options={"headers": headers}
        )

    def _backoff(self, attempt: int, hint: float | None) -> float:
        s = self.settings
        delay = s.llm_backoff_base_s * (2.0**attempt) * random.uniform(0.5, 1.0)  # jitter
        if hint is not None:
            delay = max(delay, hint)
        return min(delay, s.llm_backoff_max_s)


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value: str | None = exc.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _refused(exc: openai.APIStatusError, endpoint: Endpoint, model: str) -> BadLLMResponse:
    advice = {
        401: "set CREWS_LLM_API_KEY to the pool's key",
        403: "set CREWS_LLM_API_KEY to a key allowed to use this model",
        404: f"check CREWS_LLM_MODEL ({model!r}) against the endpoint's /v1/models and the URL's /v1 suffix",
    }.get(exc.status_code, "fix the request (messages, tools, tool_choice, response_format, max_tokens)")
    return BadLLMResponse(
        f"{endpoint.url} refused the chat request with HTTP {exc.status_code}: {exc.message}; {advice}",
        status_code=exc.status_code,
    )


def _usage(completion: ChatCompletion, model: str, settings: InferenceSettings) -> Usage:
    """The call's tokens, priced at the requested model's price (else the answering model's)."""
    if completion.usage is None:
        return Usage()
    tokens_in, tokens_out = completion.usage.prompt_tokens, completion.usage.completion_tokens
    priced = model if model in settings.llm_prices else completion.model
    return Usage(
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost_usd=call_cost(settings.llm_prices, priced, tokens_in, tokens_out),
    )


def _result(completion: ChatCompletion, usage: Usage, endpoint: str, attempts: int) -> ChatResult:
    if not completion.choices:
        raise BadLLMResponse(f"{endpoint} answered with no choices: check the server's logs")
    choice = completion.choices[0]
    calls: list[ToolCall] = []
    for call in choice.message.tool_calls or []:
        if not isinstance(call, ChatCompletionMessageFunctionToolCall):
            raise BadLLMResponse(
                f"{endpoint} answered with a {call.type} tool call; only functions are supported"
            )
        calls.append(ToolCall(id=call.id, name=call.function.name, arguments=_arguments(call, endpoint)))
    return ChatResult(
        content=choice.message.content,
        tool_calls=calls,
        usage=usage,
        model=completion.model,
        endpoint=endpoint,
        finish_reason=choice.finish_reason,
        attempts=attempts,
    )


def _arguments(call: ChatCompletionMessageFunctionToolCall, endpoint: str) -> dict[str, Any]:
    raw = call.function.arguments or "{}"
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadLLMResponse(
            f"{endpoint}: arguments of tool call {call.function.name!r} are not JSON ({exc}): "
            f"mark the tool strict or serve with --tool-strict-level parameter; got {raw[:80]!r}"
        ) from exc
    if not isinstance(parsed, dict):
        raise BadLLMResponse(f"{endpoint}: arguments of tool call {call.function.name!r} are not an object")
    return cast(dict[str, Any], parsed)


def _set_request_attributes(
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


def _set_response_attributes(span: Span, completion: ChatCompletion, result: ChatResult) -> None:
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


def prompt_estimate(messages: Sequence[Mapping[str, Any]]) -> int:
    """A generous guess of a prompt's tokens before it is sent (about 3 characters per token)."""
    return sum(len(str(message.get("content") or "")) + 8 for message in messages) // 3
