"""LLMPool against scripted OpenAI-compatible servers over real HTTP."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from inference.budget import InMemoryTokenBudget
from inference.client import LLMPool
from inference.errors import BadLLMResponse, BudgetExceeded, LLMUnavailable
from inference.results import ChatResult, Usage
from inference.settings import InferenceSettings
from inference.testing.script import Script
from inference.testing.server import ScriptedServer

USER: list[dict[str, Any]] = [{"role": "user", "content": "tell me about crews"}]
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}


def job() -> str:
    return f"job-{uuid.uuid4().hex[:8]}"


def script(*rules: dict[str, object], **fields: object) -> Script:
    return Script.model_validate({"rules": list(rules), **fields})


def chat_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """The client's GenAI spans (the scripted server's FastAPI spans land in the same exporter)."""
    spans = exporter.get_finished_spans()
    return [span for span in spans if (span.attributes or {}).get("gen_ai.operation.name") == "chat"]


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


async def test_text_reply_with_usage_and_headers(scripted: ScriptedServer, pool: LLMPool) -> None:
    scripted.set_script(script({"role": "writer", "step": "draft", "replies": ["a short final answer"]}))
    messages = [{"role": "system", "content": "You write."}, *USER]

    result = await pool.chat(messages, job_id="job-1", role="writer", step="draft")

    assert result.content == "a short final answer"
    assert result.tool_calls == []
    assert result.finish_reason == "stop"
    assert result.model == "crews-local"
    assert result.endpoint == scripted.url
    assert result.attempts == 1
    assert result.usage == Usage(input_tokens=2 + 4, output_tokens=4)
    [seen] = scripted.requests()
    assert (seen.job, seen.role, seen.step) == ("job-1", "writer", "draft")
    assert seen.body["messages"] == messages


async def test_request_parameters_reach_the_server(scripted: ScriptedServer, pool: LLMPool) -> None:
    await pool.chat(
        USER,
        job_id=job(),
        role="r",
        tools=[SEARCH_TOOL],
        tool_choice="required",
        temperature=0.2,
        max_tokens=64,
        extra_body={"top_k": 5},
    )

    body = scripted.requests()[0].body
    assert body["tools"] == [SEARCH_TOOL]
    assert body["tool_choice"] == "required"
    assert (body["temperature"], body["max_tokens"], body["top_k"]) == (0.2, 64, 5)
    assert "response_format" not in body


async def test_tool_call_loop_then_text(scripted: ScriptedServer, pool: LLMPool) -> None:
    scripted.set_script(
        script(
            {
                "role": "researcher",
                "replies": [
                    {"tool_calls": [{"name": "search", "arguments": {"query": "crews", "limit": 3}}]},
                    {"text": "Crews are teams of agents."},
                ],
            }
        )
    )
    job_id = job()
    messages: list[dict[str, Any]] = list(USER)

    first = await pool.chat(messages, job_id=job_id, role="researcher", step="s1", tools=[SEARCH_TOOL])
    [call] = first.tool_calls
    assert (call.name, call.arguments) == ("search", {"query": "crews", "limit": 3})
    assert call.id
    assert first.finish_reason == "tool_calls"
    messages += [first.to_message(), {"role": "tool", "tool_call_id": call.id, "content": "found it"}]
    second = await pool.chat(messages, job_id=job_id, role="researcher", step="s1", tools=[SEARCH_TOOL])

    assert second.content == "Crews are teams of agents."
    sent = scripted.requests()[1].body["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {
        "name": "search",
        "arguments": '{"query": "crews", "limit": 3}',
    }
    assert sent[2]["tool_call_id"] == call.id


async def test_json_reply(scripted: ScriptedServer, pool: LLMPool) -> None:
    scripted.set_script(script({"replies": [{"json": {"title": "Crews", "tags": ["a", "b"]}}]}))

    result = await pool.chat(USER, job_id=job(), role="r", response_format={"type": "json_object"})

    assert result.json_content() == {"title": "Crews", "tags": ["a", "b"]}
    assert scripted.requests()[0].body["response_format"] == {"type": "json_object"}


async def test_json_content_of_prose_says_how_to_ask_for_json(
    scripted: ScriptedServer, pool: LLMPool
) -> None:
    scripted.set_script(script({"replies": ["not json at all"]}))
    result = await pool.chat(USER, job_id=job(), role="r")
    with pytest.raises(BadLLMResponse, match="response_format"):
        result.json_content()


async def test_echo_makes_outputs_differ_per_input(scripted: ScriptedServer, pool: LLMPool) -> None:
    scripted.set_script(script(default=[{"echo": "{role} saw: {input}"}]))
    one = await pool.chat([{"role": "user", "content": "alpha"}], job_id=job(), role="a")
    two = await pool.chat([{"role": "user", "content": "beta"}], job_id=job(), role="b")
    assert (one.content, two.content) == ("a saw: alpha", "b saw: beta")


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_retries_transient_errors_then_succeeds(
    scripted: ScriptedServer, pool: LLMPool, status: int
) -> None:
    scripted.set_script(script({"replies": [{"error": status, "times": 2}, "finally"]}))

    result = await pool.chat(USER, job_id=job(), role="r")

    assert (result.content, result.attempts) == ("finally", 3)
    assert len(scripted.requests()) == 3


async def test_429_retry_after_is_honoured(
    scripted: ScriptedServer, make_pool: Callable[..., LLMPool]
) -> None:
    scripted.set_script(script({"replies": [{"error": 429, "retry_after": 0.3}, "ok"]}))
    pool = make_pool(scripted.url, llm_backoff_max_s=5.0)

    started = time.monotonic()
    result = await pool.chat(USER, job_id=job(), role="r")

    assert result.content == "ok"
    assert time.monotonic() - started >= 0.3


async def test_gives_up_with_a_retryable_error(
    scripted: ScriptedServer, pool: LLMPool, spans: InMemorySpanExporter
) -> None:
    scripted.set_script(script({"replies": [{"error": 503}]}))

    with pytest.raises(LLMUnavailable, match="CREWS_LLM_URLS") as caught:
        await pool.chat(USER, job_id="job-down", role="r", step="s")

    assert caught.value.retryable is True
    assert caught.value.retry_after > 0
    assert "HTTP 503" in str(caught.value)
    assert len(scripted.requests()) == pool.settings.llm_max_retries + 1
    [span] = chat_spans(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "LLMUnavailable"


async def test_connection_refused_is_unavailable(make_pool: Callable[..., LLMPool]) -> None:
    pool = make_pool(closed_port_url(), llm_max_retries=1)
    with pytest.raises(LLMUnavailable, match="ClientConnectorError"):
        await pool.chat(USER, job_id=job(), role="r")


async def test_timeout_is_retried_then_unavailable(
    scripted: ScriptedServer, make_pool: Callable[..., LLMPool]
) -> None:
    scripted.set_script(script(latency_s=2.0))
    pool = make_pool(scripted.url, llm_timeout_s=0.2, llm_max_retries=1)
    with pytest.raises(LLMUnavailable, match="SocketTimeoutError"):
        await pool.chat(USER, job_id=job(), role="r")


async def test_fails_over_from_a_dead_endpoint(
    scripted: ScriptedServer, make_pool: Callable[..., LLMPool]
) -> None:
    dead = closed_port_url()
    pool = make_pool(dead, scripted.url)
    results = [await pool.chat(USER, job_id=job(), role="r") for _ in range(4)]
    assert {r.endpoint for r in results} == {scripted.url}
    assert sum(r.attempts for r in results) <= 5  # the dead one is tried at most once, then cooled down


async def test_client_errors_are_not_retried(scripted: ScriptedServer, pool: LLMPool) -> None:
    scripted.set_script(script({"replies": [{"error": 400, "message": "max_tokens is too large"}]}))

    with pytest.raises(BadLLMResponse, match="max_tokens is too large") as caught:
        await pool.chat(USER, job_id=job(), role="r")

    assert (caught.value.retryable, caught.value.status_code) == (False, 400)
    assert len(scripted.requests()) == 1


async def test_unknown_model_says_which_setting_to_fix(scripted: ScriptedServer, pool: LLMPool) -> None:
    with pytest.raises(BadLLMResponse, match="CREWS_LLM_MODEL") as caught:
        await pool.chat(USER, job_id=job(), role="r", model="gpt-nonexistent")
    assert caught.value.status_code == 404


async def test_least_outstanding_spreads_concurrent_requests() -> None:
    slow = Script(latency_s=0.3)
    async with ScriptedServer(slow) as a, ScriptedServer(slow) as b:
        async with LLMPool(InferenceSettings(llm_urls=[a.url, b.url])) as pool:
            results = await asyncio.gather(*(pool.chat(USER, job_id=f"j{i}", role="r") for i in range(6)))
            assert {e.url: e.outstanding for e in pool.router.endpoints} == {a.url: 0, b.url: 0}
        assert Counter(r.endpoint for r in results) == {a.url: 3, b.url: 3}
        assert (len(a.requests()), len(b.requests())) == (3, 3)


async def test_job_affinity_keeps_a_job_on_its_endpoint() -> None:
    async with (
        ScriptedServer() as a,
        ScriptedServer() as b,
        LLMPool(InferenceSettings(llm_urls=[a.url, b.url])) as pool,
    ):
        first = [await pool.chat(USER, job_id=name, role="r") for name in ("job-a", "job-b")]
        later = [await pool.chat(USER, job_id=name, role="r") for name in ("job-a", "job-b") * 3]
    assert first[0].endpoint != first[1].endpoint
    assert [r.endpoint for r in later] == [first[0].endpoint, first[1].endpoint] * 3


async def test_affinity_spills_when_its_endpoint_is_overloaded() -> None:
    slow = Script(latency_s=0.3)
    async with ScriptedServer(slow) as a, ScriptedServer(slow) as b:
        settings = InferenceSettings(llm_urls=[a.url, b.url], llm_affinity_slack=1)
        async with LLMPool(settings) as pool:
            home = (await pool.chat(USER, job_id="busy", role="r")).endpoint
            burst = await asyncio.gather(*(pool.chat(USER, job_id="busy", role="r") for _ in range(3)))
            after = await pool.chat(USER, job_id="busy", role="r")
    # slack 1: the job's endpoint takes 2 in flight (0 and 1 more than the idle one), the third spills
    assert Counter(r.endpoint for r in burst)[home] == 2
    assert after.endpoint == home


async def test_budget_stops_a_job_that_spent_it(scripted: ScriptedServer, pool: LLMPool) -> None:
    scripted.set_script(script(default=["one two three four five six"]))
    budget = InMemoryTokenBudget(limit=10)
    job_id = job()

    first = await pool.chat(USER, job_id=job_id, role="writer", budget=budget)
    assert first.usage.total_tokens == 4 + 6
    with pytest.raises(BudgetExceeded, match="10 tokens") as caught:
        await pool.chat(USER, job_id=job_id, role="editor", budget=budget)

    assert caught.value.retryable is False
    assert len(scripted.requests()) == 1
    other = await pool.chat(USER, job_id=job(), role="writer", budget=budget)
    assert other.content
    assert budget.used(job_id) == Usage(input_tokens=4, output_tokens=6)
    assert budget.used_by_role(job_id) == {"writer": Usage(input_tokens=4, output_tokens=6)}


async def test_pool_wide_budget_counts_per_role(scripted: ScriptedServer) -> None:
    budget = InMemoryTokenBudget()
    async with LLMPool(InferenceSettings(llm_urls=[scripted.url]), budget=budget) as pool:
        await pool.chat([{"role": "user", "content": "a b"}], job_id="jb", role="x")
        await pool.chat([{"role": "user", "content": "c d e"}], job_id="jb", role="y")
        await pool.chat([{"role": "user", "content": "f"}], job_id="jb", role="x")
    assert budget.used_by_role("jb") == {
        "x": Usage(input_tokens=3, output_tokens=3),
        "y": Usage(input_tokens=3, output_tokens=3),
    }


async def test_genai_span_per_call(
    scripted: ScriptedServer, pool: LLMPool, spans: InMemorySpanExporter
) -> None:
    scripted.set_script(script(default=["three word answer"]))

    result: ChatResult = await pool.chat(
        USER, job_id="job-span", role="writer", step="draft", temperature=0.5, max_tokens=20
    )

    [span] = chat_spans(spans)
    assert span.name == "chat crews-local"
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "crews-local"
    assert attributes["gen_ai.response.model"] == "crews-local"
    assert attributes["gen_ai.provider.name"] == attributes["gen_ai.system"] == "vllm"
    assert attributes["gen_ai.usage.input_tokens"] == result.usage.input_tokens == 4
    assert attributes["gen_ai.usage.output_tokens"] == result.usage.output_tokens == 3
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.request.max_tokens"] == 20
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert (attributes["crews.job.id"], attributes["crews.role"], attributes["crews.step"]) == (
        "job-span",
        "writer",
        "draft",
    )
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == int(scripted.url.split(":")[-1].split("/")[0])


async def test_trace_context_travels_to_the_server(
    scripted: ScriptedServer, pool: LLMPool, spans: InMemorySpanExporter
) -> None:
    await pool.chat(USER, job_id=job(), role="r")
    [span] = chat_spans(spans)
    traceparent = scripted.requests()[0].traceparent
    assert traceparent is not None
    assert traceparent.split("-")[1] == format(span.context.trace_id, "032x")


def test_llm_urls_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREWS_LLM_URLS", "http://a:8000/v1/, http://b:8000/v1")
    monkeypatch.setenv("CREWS_LLM_MODEL", "served")
    settings = InferenceSettings()
    assert settings.llm_urls == ["http://a:8000/v1", "http://b:8000/v1"]
    assert settings.llm_model == "served"


def test_default_settings_point_at_the_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREWS_LLM_URLS", raising=False)
    monkeypatch.delenv("CREWS_LLM_MODEL", raising=False)
    settings = InferenceSettings()
    assert settings.llm_urls == ["http://127.0.0.1:8000/v1"]
    assert settings.llm_model == "crews-local"


async def test_a_server_that_is_not_an_llm_is_a_bad_response_naming_the_url_setting(
    make_pool: Callable[..., LLMPool],
) -> None:
    """A 200 that is not a chat completion (a proxy's login page, a URL without /v1) is not retried."""
    asked: list[bytes] = []

    async def login_page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        asked.append(await reader.readuntil(b"\r\n\r\n"))
        page = b"<html>please log in</html>"
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(page), page)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(login_page, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        pool = make_pool(f"http://127.0.0.1:{port}/v1")
        with pytest.raises(BadLLMResponse, match=r"not a chat completion.*CREWS_LLM_URLS") as caught:
            await pool.chat(USER, job_id=job(), role="r")
    assert not caught.value.retryable
    assert len(asked) == 1 and asked[0].startswith(b"POST /v1/chat/completions ")
