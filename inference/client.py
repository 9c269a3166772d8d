"""The one LLM client every engine uses: OpenAI-compatible chat completions over a pool of endpoints.

``LLMPool.chat`` routes each request (``inference.routing``) over the pool's
endpoints (a fixed list, or discovered from DNS) or to the overflow endpoint
while the pool is overloaded (``inference.endpoints``), retries transient
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

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from inference.budget import TokenBudget
from inference.content import as_attribute, capture_enabled, input_messages, known_secrets, output_messages
from inference.discovery import Resolver, resolve
from inference.endpoints import PoolEndpoints, Route
from inference.errors import BadLLMResponse, InferenceError, LLMUnavailable
from inference.headers import request_headers
from inference.pricing import call_cost
from inference.results import ChatResult, ToolCall, Usage
from inference.routing import Endpoint, Router
from inference.settings import InferenceSettings
from inference.spans import set_overflow_attributes, set_request_attributes, set_response_attributes
from inference.transport import HTTPReply, TransportFailed
from inference.wire import Completion, WireToolCall

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
        resolver: Resolver = resolve,
    ) -> None:
        self.settings = settings or InferenceSettings()
        self.budget = budget
        self.endpoints = PoolEndpoints(self.settings, resolver=resolver)
        self._sleep = sleep
        self._tracer = trace.get_tracer("inference")

    @property
    def router(self) -> Router:
        """The pool's router (its endpoints change with discovery)."""
        return self.endpoints.router

    async def start(self) -> None:
        """Resolve a discovered pool and start its background refresh; ``chat`` calls it first."""
        await self.endpoints.start()

    async def __aenter__(self) -> LLMPool:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.endpoints.aclose()

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
        await self.endpoints.start()
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
            set_request_attributes(span, self.settings.llm_provider, request, job_id, role, step)
            try:
                try:
                    completion, route, attempts = await self._complete(request, job_id, role, step)
                except BaseException:
                    if budget is not None:
                        await budget.release(job_id, role, reserve)
                    raise
                if route.overflow:
                    assert self.endpoints.overflow is not None
                    set_overflow_attributes(span, self.endpoints.overflow.provider, route.model)
                usage = _usage(completion, route.model, self.settings)
                if budget is not None:
                    await budget.record(job_id, role, usage, reserved=reserve)
                result = _result(completion, usage, route.endpoint.url, attempts)
            except InferenceError as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            set_response_attributes(span, completion, result)
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
    ) -> tuple[Completion, Route, int]:
        headers = request_headers(job_id, role, step)
        propagate.inject(headers)
        attempts = self.settings.llm_max_retries + 1
        avoid: Endpoint | None = None
        failures: list[str] = []
        for attempt in range(attempts):
            hint: float | None = None
            route: Route | None
            try:
                route = self.endpoints.route(job_id, request["model"], avoid)
            except LLMUnavailable as exc:  # no endpoint: discovery may find one before the next attempt
                failures.append(str(exc).split(":")[0])
                route, avoid = None, None
            if route is not None:
                try:
                    with self.router.track(route.endpoint):
                        response = await self._post(route, request, headers)
                except TransportFailed as exc:  # refused, reset, timed out
                    failures.append(f"{route.endpoint.url}: {exc.kind}")
                else:
                    status = response.status_code
                    if status < 400:
                        self.endpoints.mark_ok(route)
                        return Completion.parse(response.content, route.endpoint.url), route, attempt + 1
                    if status < 500 and status not in RETRYABLE_STATUS:
                        raise _refused(response, route)
                    failures.append(f"{route.endpoint.url}: HTTP {status}")
                    hint = _retry_after(response)
                finally:
                    await self.endpoints.finished(route)
                self.endpoints.mark_failed(route)
                avoid = route.endpoint
            if attempt + 1 < attempts:
                await self._sleep(self._backoff(attempt, hint))
        raise LLMUnavailable(
            f"the LLM pool did not answer {role}/{step or '-'} of job {job_id} after {attempts} attempts "
            f"({'; '.join(failures[-3:])}): check that the servers in {self.endpoints.source} are up, "
            "or retry the step later",
            retry_after=self.settings.llm_backoff_max_s,
        )

    async def _post(self, route: Route, request: dict[str, Any], headers: dict[str, str]) -> HTTPReply:
        """POST the request as built, as JSON, on the endpoint's keep-alive client (no SDK: its request
        transform and response models cost ~0.5 ms of CPU a call, bench/FINDINGS.md). The overflow
        endpoint is asked for its own model, without the parameters it refuses."""
        body = {k: v for k, v in request.items() if k != "extra_body"}
        body.update(request.get("extra_body") or {})
        body["model"] = route.model
        if route.overflow:
            assert self.endpoints.overflow is not None
            for name in self.endpoints.overflow.drop_params:
                body.pop(name, None)
        content = json.dumps(body, ensure_ascii=False).encode()
        return await route.client.post("chat/completions", content, headers)

    def _backoff(self, attempt: int, hint: float | None) -> float:
        s = self.settings
        delay = s.llm_backoff_base_s * (2.0**attempt) * random.uniform(0.5, 1.0)  # jitter
        if hint is not None:
            delay = max(delay, hint)
        return min(delay, s.llm_backoff_max_s)


def _retry_after(response: HTTPReply) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _error_message(response: HTTPReply) -> str:
    """What the server said about a refusal: its JSON error's message (OpenAI, vLLM, FastAPI), else the text."""
    text = response.text[:500]
    try:
        body = json.loads(text) if text.startswith("{") else None
    except json.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            return str(error)[:300]
    return text[:300] or response.reason_phrase


def _refused(response: HTTPReply, route: Route) -> BadLLMResponse:
    endpoint, model, status = route.endpoint, route.model, response.status_code
    message = _error_message(response)
    if route.overflow:
        return BadLLMResponse(
            f"the overflow endpoint {endpoint.url} refused the chat request with HTTP {status}: "
            f"{message}; check CREWS_LLM_OVERFLOW_MODEL ({model!r}), the key in the variable "
            "CREWS_LLM_OVERFLOW_API_KEY_ENV names, and CREWS_LLM_OVERFLOW_DROP_PARAMS",
            status_code=status,
        )
    advice = {
        401: "set CREWS_LLM_API_KEY to the pool's key",
        403: "set CREWS_LLM_API_KEY to a key allowed to use this model",
        404: f"check CREWS_LLM_MODEL ({model!r}) against the endpoint's /v1/models and the URL's /v1 suffix",
    }.get(status, "fix the request (messages, tools, tool_choice, response_format, max_tokens)")
    return BadLLMResponse(
        f"{endpoint.url} refused the chat request with HTTP {status}: {message}; {advice}",
        status_code=status,
    )


def _usage(completion: Completion, model: str, settings: InferenceSettings) -> Usage:
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


def _result(completion: Completion, usage: Usage, endpoint: str, attempts: int) -> ChatResult:
    if not completion.choices:
        raise BadLLMResponse(f"{endpoint} answered with no choices: check the server's logs")
    choice = completion.choices[0]
    calls: list[ToolCall] = []
    for call in choice.message.tool_calls or []:
        if call.type != "function" or call.function is None:
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


def _arguments(call: WireToolCall, endpoint: str) -> dict[str, Any]:
    assert call.function is not None
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


def prompt_estimate(messages: Sequence[Mapping[str, Any]]) -> int:
    """A generous guess of a prompt's tokens before it is sent (about 3 characters per token)."""
    return sum(len(str(message.get("content") or "")) + 8 for message in messages) // 3
