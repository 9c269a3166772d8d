"""LLMPool against the real local vLLM (CPU build, SmolLM2-135M-Instruct), started once per session.

A 135M model is checked for structure, not wisdom: non-empty text, a valid
tool call when one is required, valid JSON when JSON is asked for. The first
run on a machine installs vLLM and converts the model (about 2.5 minutes);
later runs reuse ``~/.cache/crews`` and start the server in about 30 s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from inference.client import LLMPool
from inference.local.vllm import LocalVLLM, ensure_installed
from inference.settings import InferenceSettings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.xdist_group("vllm")]

SEARCH_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web for a query",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "what to search for"}},
            "required": ["query"],
        },
    },
}


@pytest.fixture(scope="session")
def local_vllm() -> Iterator[LocalVLLM]:
    with LocalVLLM(ensure_installed(), port=0) as server:
        yield server


@pytest.fixture
async def pool(local_vllm: LocalVLLM) -> AsyncIterator[LLMPool]:
    async with LLMPool(InferenceSettings(llm_urls=[local_vllm.url], llm_timeout_s=120.0)) as client:
        yield client


async def test_serves_the_fixed_model_name(local_vllm: LocalVLLM) -> None:
    async with httpx.AsyncClient() as http:
        models = (await http.get(f"{local_vllm.url}/models")).json()
    assert [m["id"] for m in models["data"]] == ["crews-local"]


async def test_text_answer(pool: LLMPool) -> None:
    result = await pool.chat(
        [{"role": "user", "content": "Name three colors."}],
        job_id="e2e",
        role="writer",
        max_tokens=40,
        temperature=0,
    )
    assert result.content and result.content.strip()
    assert result.model == "crews-local"
    assert result.usage.input_tokens > 0
    assert 0 < result.usage.output_tokens <= 40


@pytest.mark.parametrize(
    "tool_choice",
    ["required", {"type": "function", "function": {"name": "search"}}],
    ids=["required", "named"],
)
async def test_required_tool_call_is_valid(pool: LLMPool, tool_choice: Any) -> None:
    result = await pool.chat(
        [{"role": "user", "content": "Search the web for the capital of France."}],
        job_id="e2e",
        role="researcher",
        tools=[SEARCH_TOOL],
        tool_choice=tool_choice,
        max_tokens=100,
        temperature=0,
    )
    assert result.tool_calls, result
    call = result.tool_calls[0]
    assert call.name == "search"
    assert isinstance(call.arguments.get("query"), str)
    assert call.id


async def test_tool_result_goes_back_and_the_model_answers(pool: LLMPool) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Search the web for the capital of France."}
    ]
    first = await pool.chat(
        messages,
        job_id="e2e-loop",
        role="researcher",
        tools=[SEARCH_TOOL],
        tool_choice="required",
        max_tokens=100,
    )
    call = first.tool_calls[0]
    messages += [
        first.to_message(),
        {"role": "tool", "tool_call_id": call.id, "content": "Paris is the capital."},
    ]

    second = await pool.chat(
        messages, job_id="e2e-loop", role="researcher", tools=[SEARCH_TOOL], max_tokens=60
    )

    assert second.content or second.tool_calls


async def test_json_object_output(pool: LLMPool) -> None:
    result = await pool.chat(
        [
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": "Give a JSON object with keys name and age for Ann, aged 30."},
        ],
        job_id="e2e",
        role="writer",
        response_format={"type": "json_object"},
        max_tokens=150,
        temperature=0,
    )
    assert isinstance(result.json_content(), dict)


async def test_json_schema_output(pool: LLMPool) -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string", "maxLength": 40}, "score": {"type": "integer"}},
        "required": ["title", "score"],
        "additionalProperties": False,
    }
    result = await pool.chat(
        [{"role": "user", "content": "Rate the book Dune from 1 to 10."}],
        job_id="e2e",
        role="critic",
        response_format={"type": "json_schema", "json_schema": {"name": "rating", "schema": schema}},
        max_tokens=150,
        temperature=0,
    )
    data = result.json_content()
    assert isinstance(data["title"], str)
    assert isinstance(data["score"], int)
