"""Prompts and answers on chat spans: off by default, on with the GenAI switch, secrets never."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from inference.client import LLMPool
from inference.content import CAPTURE_ENV
from inference.testing.script import Script
from inference.testing.server import ScriptedServer

CANARY = "canary-9f3b2c7d41"


def _chat_attributes(spans: InMemorySpanExporter) -> dict[str, object]:
    [span] = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    return dict(span.attributes or {})


async def test_content_stays_off_spans_by_default(
    scripted: ScriptedServer, pool: LLMPool, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CAPTURE_ENV, raising=False)
    await pool.chat([{"role": "user", "content": "hello bees"}], job_id="j", role="r")
    attributes = _chat_attributes(spans)
    assert "gen_ai.input.messages" not in attributes and "gen_ai.output.messages" not in attributes


async def test_with_the_switch_on_chat_spans_carry_messages_with_secrets_redacted(
    scripted: ScriptedServer, pool: LLMPool, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CAPTURE_ENV, "true")
    monkeypatch.setenv("PAYMENTS_API_KEY", CANARY)
    scripted.set_script(
        Script.model_validate(
            {"default": [{"tool_calls": [{"id": "c1", "name": "lookup", "arguments": {"order": CANARY}}]}]}
        )
    )
    messages = [
        {"role": "system", "content": "You are careful."},
        {"role": "user", "content": f"the key is {CANARY}, look up order 7"},
    ]
    await pool.chat(
        messages, job_id="j", role="r", tools=[{"type": "function", "function": {"name": "lookup"}}]
    )

    attributes = _chat_attributes(spans)
    raw_in, raw_out = str(attributes["gen_ai.input.messages"]), str(attributes["gen_ai.output.messages"])
    assert CANARY not in raw_in and CANARY not in raw_out
    inputs = json.loads(raw_in)
    assert [m["role"] for m in inputs] == ["system", "user"]
    assert inputs[1]["parts"] == [{"type": "text", "content": "the key is [redacted], look up order 7"}]
    [answer] = json.loads(raw_out)
    assert answer["role"] == "assistant"
    assert answer["parts"] == [
        {"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {"order": "[redacted]"}}
    ]
