"""Each call is priced at the operator's table: the usage it returns carries tokens times prices."""

from __future__ import annotations

import pytest

from inference.client import LLMPool
from inference.pricing import ModelPrice, call_cost
from inference.settings import DEFAULT_MODEL, InferenceSettings
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.inference.conftest import fast_settings

USER = [{"role": "user", "content": "tell me about crews"}]  # 4 input tokens on the scripted server


async def test_a_call_costs_its_tokens_at_the_models_price(scripted: ScriptedServer) -> None:
    scripted.set_script(Script.model_validate({"default": ["one two three four five six"]}))
    prices = {DEFAULT_MODEL: ModelPrice(input_per_mtok=3.0, output_per_mtok=15.0)}
    async with LLMPool(fast_settings(scripted.url, llm_prices=prices)) as pool:
        result = await pool.chat(USER, job_id="j", role="writer")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (4, 6)
    assert result.usage.cost_usd == pytest.approx((4 * 3.0 + 6 * 15.0) / 1e6)


async def test_a_model_without_a_price_costs_nothing(scripted: ScriptedServer) -> None:
    async with LLMPool(fast_settings(scripted.url)) as pool:
        result = await pool.chat(USER, job_id="j", role="writer")
    assert result.usage.total_tokens > 0 and result.usage.cost_usd == 0.0
    assert call_cost({"other": ModelPrice(input_per_mtok=1)}, DEFAULT_MODEL, 10, 10) == 0.0


def test_prices_come_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "CREWS_LLM_PRICES", '{"crews-local": {"input_per_mtok": 0.2, "output_per_mtok": 0.6}, "big": {}}'
    )
    prices = InferenceSettings().llm_prices
    assert prices == {
        "crews-local": ModelPrice(input_per_mtok=0.2, output_per_mtok=0.6),
        "big": ModelPrice(),
    }
    assert prices["crews-local"].cost(1_000_000, 500_000) == pytest.approx(0.2 + 0.3)
