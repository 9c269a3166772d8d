"""The overflow endpoint, switched on and off by the pool's /metrics, over real scripted servers.

What is real: the pool's two pods and the managed API are scripted OpenAI-compatible servers over
HTTP on their own loopback addresses; the pods' ``GET /metrics`` expose
``vllm:num_requests_waiting`` (set by the test through the server), which the pool polls and sums
to drive the switch; requests, prices, budgets and spans are the pool's own. What is injected: the
resolver answering the headless name ``vllm-pods`` with the pods' addresses (see test_discovery).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from inference.budget import InMemoryTokenBudget
from inference.client import LLMPool
from inference.overflow import OverflowSwitch, PoolLoad, metrics_url, waiting_requests
from inference.pricing import ModelPrice
from inference.results import Usage
from inference.settings import InferenceSettings
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.inference.conftest import fast_settings
from tests.inference.test_client import chat_spans

USER: list[dict[str, Any]] = [{"role": "user", "content": "burst of work"}]
KEY_ENV = "CREWS_TEST_OVERFLOW_KEY"
PRICES = {
    "crews-local": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
    "managed-mini": {"input_per_mtok": 150.0, "output_per_mtok": 600.0},
}


@dataclass
class Burst:
    a: ScriptedServer
    b: ScriptedServer
    managed: ScriptedServer
    stack: AsyncExitStack

    def settings(self, **overrides: Any) -> InferenceSettings:
        values: dict[str, Any] = {
            "llm_discover": f"http://vllm-pods:{self.a.port}/v1",
            "llm_discover_interval_s": 0.05,
            "llm_overflow_url": self.managed.url,
            "llm_overflow_model": "managed-mini",
            "llm_overflow_api_key_env": KEY_ENV,
            "llm_overflow_start_waiting": 8,
            "llm_overflow_stop_waiting": 2,
            "llm_metrics_interval_s": 0.02,
            "llm_prices": PRICES,
            "llm_endpoint_cooldown_s": 60,
        }
        values.update(overrides)
        return fast_settings(**values)

    async def pool(self, **overrides: Any) -> LLMPool:
        async def dns(host: str, port: int) -> list[str]:
            return ["127.0.0.2", "127.0.0.3"] if host == "vllm-pods" else []

        return await self.stack.enter_async_context(LLMPool(self.settings(**overrides), resolver=dns))


@pytest.fixture
async def burst(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Burst]:
    monkeypatch.setenv(KEY_ENV, "sk-managed-test")
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(
            ScriptedServer(Script(default=["from the pool"]), host="127.0.0.2")
        )
        b = await stack.enter_async_context(
            ScriptedServer(Script(default=["from the pool"]), host="127.0.0.3", port=a.port)
        )
        managed = await stack.enter_async_context(
            ScriptedServer(Script(model="managed-mini", default=["from the managed API"]), host="127.0.0.4")
        )
        yield Burst(a, b, managed, stack)


def job() -> str:
    return f"job-{uuid.uuid4().hex[:8]}"


async def polled(pool: LLMPool, predicate: Callable[[PoolLoad], bool]) -> PoolLoad:
    """Wait for a poll of the pool's /metrics after which ``predicate`` holds."""
    assert pool.endpoints.overflow is not None
    load = pool.endpoints.overflow.load
    await asyncio.wait_for(load.wait_for(predicate), 10)
    return load


async def test_pool_metrics_switch_the_overflow_on_and_off(burst: Burst, spans: InMemorySpanExporter) -> None:
    pool = await burst.pool()
    budget = InMemoryTokenBudget()
    pool_url = {f"http://127.0.0.{n}:{burst.a.port}/v1" for n in (2, 3)}

    quiet = await pool.chat(USER, job_id="calm", role="r", budget=budget)
    assert quiet.endpoint in pool_url
    assert quiet.usage == Usage(input_tokens=3, output_tokens=3, cost_usd=(3 * 1.0 + 3 * 2.0) / 1e6)

    # 5 + 4 waiting across the two pods: at the start threshold (8) or over
    burst.a.set_waiting(5)
    burst.b.set_waiting(4)
    load = await polled(pool, lambda load: load.switch.active)
    assert load.waiting == 9
    spans.clear()
    spilled = await pool.chat(
        USER, job_id="spike", role="r", budget=budget, extra_body={"repetition_penalty": 1.1, "seed": 7}
    )
    assert (spilled.content, spilled.endpoint, spilled.model) == (
        "from the managed API",
        burst.managed.url,
        "managed-mini",
    )
    assert spilled.usage.cost_usd == pytest.approx((3 * 150.0 + 4 * 600.0) / 1e6)
    assert budget.used("spike") == spilled.usage
    [seen] = burst.managed.requests()
    assert seen.body["model"] == "managed-mini"
    assert seen.authorization == "Bearer sk-managed-test"
    assert "repetition_penalty" not in seen.body and seen.body["seed"] == 7
    [span] = chat_spans(spans)
    attributes = dict(span.attributes or {})
    assert span.name == "chat managed-mini"
    assert attributes["server.address"] == "127.0.0.4"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "managed-mini"
    assert attributes["crews.llm.overflow"] is True
    assert attributes["crews.cost_usd"] == spilled.usage.cost_usd

    # 3 waiting: below the start threshold, above the stop threshold: the overflow stays on
    burst.a.set_waiting(2)
    burst.b.set_waiting(1)
    await polled(pool, lambda load: load.waiting == 3)
    assert (await pool.chat(USER, job_id=job(), role="r")).endpoint == burst.managed.url

    # at most 2 waiting: back to the pool
    burst.a.set_waiting(1)
    burst.b.set_waiting(0)
    await polled(pool, lambda load: not load.switch.active)
    assert load.waiting == 1
    back = await pool.chat(USER, job_id=job(), role="r")
    assert back.endpoint in pool_url
    assert len(burst.managed.requests()) == 2


async def test_only_requests_for_the_pools_model_overflow(burst: Burst) -> None:
    pool = await burst.pool()
    burst.a.set_waiting(20)
    await polled(pool, lambda load: load.switch.active)
    assert pool.endpoints.route(job(), "crews-local", None).overflow
    assert not pool.endpoints.route(job(), "some-other-model", None).overflow


async def test_a_failing_overflow_falls_back_to_the_pool(burst: Burst) -> None:
    burst.managed.set_script(Script(model="managed-mini", default=[{"error": 503}]))
    pool = await burst.pool()
    burst.b.set_waiting(10)
    await polled(pool, lambda load: load.switch.active)
    first = await pool.chat(USER, job_id=job(), role="r")
    second = await pool.chat(USER, job_id=job(), role="r")  # the overflow is cooling down
    assert (first.content, first.attempts) == ("from the pool", 2)
    assert (second.content, second.attempts) == ("from the pool", 1)
    assert len(burst.managed.requests()) == 1


async def test_an_empty_pool_sends_everything_to_the_overflow(burst: Burst) -> None:
    async def nobody(host: str, port: int) -> list[str]:
        return []

    burst.managed.set_script(Script(model="managed-mini", default=[{"error": 503}, "from the managed API"]))
    settings = burst.settings()
    async with LLMPool(settings, resolver=nobody) as pool:
        result = await pool.chat(USER, job_id=job(), role="r")
    # no pod to fail over to: the retry goes to the overflow again
    assert (result.endpoint, result.content, result.attempts) == (
        burst.managed.url,
        "from the managed API",
        2,
    )


async def test_the_scripted_server_metrics_over_http(burst: Burst) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(metrics_url(burst.a.url), json={"num_requests_waiting": 6})
        assert response.status_code == 200
        text = (await http.get(metrics_url(burst.a.url))).text
        refused = await http.post(metrics_url(burst.a.url), json={"num_requests_waiting": -1})
    assert waiting_requests(text) == 6
    assert 'vllm:num_requests_waiting{engine="0",model_name="crews-local"} 6.0' in text
    assert refused.status_code == 422
    burst.a.set_script(Script())
    assert burst.a.state.waiting == 0


def test_waiting_requests_of_a_vllm_exposition() -> None:
    text = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="crews-local"} 12.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="crews-local"} 3.0
vllm:num_requests_waiting{engine="1",model_name="crews-local"} 4.0
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="crews-local"} 1234.0
"""
    assert waiting_requests(text) == 7
    assert waiting_requests("") == 0
    assert metrics_url("http://10.0.0.5:8000/v1") == "http://10.0.0.5:8000/metrics"


def test_the_switch_has_hysteresis() -> None:
    switch = OverflowSwitch(start_waiting=8, stop_waiting=2)
    states = []
    for waiting in (0, 7, 8, 5, 3, 2, 5, 9, 0):
        switch.update(waiting)
        states.append(switch.active)
    assert states == [False, False, True, True, True, False, False, True, False]
    with pytest.raises(ValueError, match="STOP_WAITING"):
        OverflowSwitch(start_waiting=2, stop_waiting=2)


def test_an_overflow_needs_its_model_key_and_price(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"llm_overflow_url": "https://api.example.com/v1"}
    with pytest.raises(ValueError, match="CREWS_LLM_OVERFLOW_MODEL and CREWS_LLM_OVERFLOW_API_KEY_ENV"):
        InferenceSettings(**base)
    monkeypatch.delenv("CREWS_TEST_UNSET_KEY", raising=False)
    named = {**base, "llm_overflow_model": "managed-mini", "llm_overflow_api_key_env": "CREWS_TEST_UNSET_KEY"}
    with pytest.raises(ValueError, match="CREWS_TEST_UNSET_KEY, which is not set"):
        InferenceSettings(**named)
    monkeypatch.setenv("CREWS_TEST_UNSET_KEY", "sk-x")
    with pytest.raises(ValueError, match="no price for the overflow model 'managed-mini'"):
        InferenceSettings(**named)
    with pytest.raises(ValueError, match="must be below"):
        InferenceSettings(**named, llm_prices=PRICES, llm_overflow_stop_waiting=10)
    settings = InferenceSettings(**named, llm_prices=PRICES)
    assert settings.overflow_api_key() == "sk-x"
    assert settings.llm_prices["managed-mini"] == ModelPrice(input_per_mtok=150.0, output_per_mtok=600.0)


def test_overflow_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "CREWS_LLM_OVERFLOW_URL": "https://api.example.com/v1",
        "CREWS_LLM_OVERFLOW_MODEL": "managed-mini",
        "CREWS_LLM_OVERFLOW_API_KEY_ENV": "OPENAI_API_KEY",
        "OPENAI_API_KEY": "sk-env",
        "CREWS_LLM_PRICES": '{"managed-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}',
        "CREWS_LLM_OVERFLOW_START_WAITING": "20",
        "CREWS_LLM_OVERFLOW_STOP_WAITING": "5",
        "CREWS_LLM_OVERFLOW_DROP_PARAMS": "repetition_penalty, top_k",
        "CREWS_LLM_METRICS_INTERVAL_S": "3",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = InferenceSettings()
    assert settings.overflow_api_key() == "sk-env"
    assert (settings.llm_overflow_start_waiting, settings.llm_overflow_stop_waiting) == (20, 5)
    assert settings.llm_overflow_drop_params == ["repetition_penalty", "top_k"]
    assert settings.llm_metrics_interval_s == 3
