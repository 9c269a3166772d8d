"""Every crew in examples/ runs end to end across processes (coordinator + one worker per role).

The LLM is the scripted server: echo for plain steps, JSON where a step asks for
it (the fan-in summary, the hierarchical manager's assignment and reviews), a tool call
for the accountant's calculator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore
from crews.spec.load import load_crew
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.e2e.stack import ROOT, Stack, job_events
from tests.servers import ManagedServer

EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.yaml") if p.stem != "support")
"""support.yaml needs its MCP server: tests/e2e/test_mcp_tools.py runs it with the server."""
ACCEPT = {"decision": "accept", "feedback": "", "member": None, "description": "", "expected_output": ""}
SCRIPTS: dict[str, list[dict[str, Any]]] = {
    "fanout": [{"role": "editor", "replies": [{"json": {"summary": "Try it.", "worth_trying": True}}]}],
    "hierarchical": [
        {"role": "lead", "step": "_manager", "replies": [{"json": {"cost": "accountant"}}]},
        {"role": "lead", "replies": [{"json": ACCEPT}]},
        {
            "role": "accountant",
            "replies": [
                {"tool_calls": [{"name": "calculator", "arguments": {"expression": "8 * 12.5"}}]},
                {"echo": "The food costs 100 dollars."},
            ],
        },
    ],
}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
async def test_example_runs_end_to_end(
    path: Path,
    nats_server: ManagedServer,
    redis_server: ManagedServer,
    nc: NATS,
    redis_client: aioredis.Redis,
) -> None:
    spec = load_crew(path)
    store = RedisJobStore(redis_client)
    await store.save_crew(spec)
    script = Script.model_validate(
        {"rules": SCRIPTS.get(spec.name, []), "default": [{"echo": "{role}: done"}]}
    )
    with ScriptedServer(script) as llm:
        stack = Stack(nats_server.url, redis_server.url, llm.url)
        try:
            stack.coordinator()
            for role in spec.all_roles():
                stack.worker(spec.name, role)
            js = nc.jetstream()
            job = (await submit_job(js, store, spec.name, {})).id
            await job_events(js, job)
        finally:
            stack.stop_all()
        record = await store.get(job)
        assert (record.status, record.reason) == ("completed", "")
        results = await store.results(job)
        assert record.plan is not None
        assert set(results) == {step.id for step in record.plan.steps}
        if spec.name == "hierarchical":
            assert results["cost"].role == "accountant"
            assert results["_review-cost"].data == ACCEPT and results["_review-invite"].data == ACCEPT
            assert "execute_tool" not in results["cost"].output
            tool_turn = [r for r in llm.requests() if r.role == "accountant"][-1]
            assert "100" in str(tool_turn.body["messages"])  # the calculator's answer went back to the model
        if spec.name == "demo":  # memory: false keeps the shared-memory tools out of the prompt
            assert all(not r.body.get("tools") for r in llm.requests())
        if spec.name == "fanout":
            assert results["summary"].data == {"summary": "Try it.", "worth_trying": True}
