"""The web view in a real browser: sign in with the API key, watch a job run live, approve its tool call."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from playwright.async_api import Page, expect

from bus.settings import BusSettings
from crews.api.app import create_app
from crews.api.server import ApiServer
from crews.api.settings import ApiSettings
from crews.coordinator.settings import CrewsSettings
from crews.jobs.store import RedisJobStore
from crews.spec.load import load_crew_text
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.e2e.stack import ROOT, Stack
from tests.servers import ManagedServer

KEY = "web-view-key"
PRICES = {"crews-local": {"input_per_mtok": 3.0, "output_per_mtok": 15.0}}
CREW = """
name: shop
memory: false
roles:
  researcher: {role: Researcher, goal: Find the prices}
  clerk:
    role: Clerk
    goal: Add up the bill
    tools: [{name: calculator, approval: required}]
tasks:
  research: {description: Find what two items cost., expected_output: Two prices., agent: researcher}
  bill: {description: Add 2 and 3., expected_output: The sum., agent: clerk}
"""
SCRIPT = {
    "rules": [
        {
            "role": "clerk",
            "replies": [
                {
                    "tool_calls": [
                        {"id": "call-1", "name": "calculator", "arguments": {"expression": "2 + 3"}}
                    ]
                },
                {"text": "The bill comes to 5."},
            ],
        },
        {"role": "researcher", "replies": [{"text": "Apples cost 2, pears cost 3."}]},
    ]
}


@dataclass
class Running:
    api: str
    http: httpx.AsyncClient


@pytest.fixture
def llm() -> Iterator[ScriptedServer]:
    with ScriptedServer(Script.model_validate(SCRIPT)) as server:
        yield server


@pytest.fixture
async def running(
    llm: ScriptedServer,
    nats_server: ManagedServer,
    redis_server: ManagedServer,
    nc: NATS,
    redis_client: aioredis.Redis,
) -> AsyncIterator[Running]:
    """Coordinator and workers as processes, the API (with a key) in this process, the crew registered."""
    spec = load_crew_text(CREW, "shop.yaml")
    await RedisJobStore(redis_client).save_crew(spec)
    stack = Stack(
        nats_server.url, redis_server.url, llm.url, extra_env={"CREWS_LLM_PRICES": json.dumps(PRICES)}
    )
    app = create_app(
        ApiSettings(api_keys=(KEY,)),
        CrewsSettings(redis_url=redis_server.url),
        BusSettings(nats_url=nats_server.url),
    )
    try:
        stack.coordinator()
        for role in spec.roles:
            stack.worker(spec.name, role)
        async with (
            ApiServer(app) as server,
            httpx.AsyncClient(
                base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
            ) as http,
        ):
            yield Running(server.url, http)
    finally:
        stack.stop_all()


async def sign_in(page: Page, url: str) -> None:
    await page.goto(url)
    await expect(page.get_by_test_id("key")).to_be_visible()
    await page.get_by_test_id("key").fill(KEY)
    await page.get_by_test_id("sign-in").click()


async def test_a_job_is_watched_live_and_its_tool_call_approved_from_the_page(
    page: Page, running: Running, tmp_path: Path
) -> None:
    await sign_in(page, running.api + "/")
    await expect(page.get_by_test_id("live")).to_contain_text("live")

    submitted = await running.http.post("/crews/shop/jobs", json={})
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()["id"]
    row = page.locator(f"tr[data-job='{job}']")
    await expect(row).to_be_visible()
    await expect(row.locator("td").nth(1)).to_have_text("shop")

    await row.get_by_role("link").click()
    await expect(page.get_by_test_id("crew")).to_have_text("shop")  # the key survived the navigation
    await expect(page.locator("#login")).to_be_hidden()

    # The clerk's step pauses on its tool call: the page shows it waiting, with the buttons.
    approval = page.locator("[data-approval='bill:call-1']")
    await expect(approval.get_by_test_id("approval-status")).to_have_text("pending")
    await expect(approval).to_contain_text("calculator")
    await expect(approval).to_contain_text('"expression": "2 + 3"')
    bill = page.locator("#steps [data-step='bill']")
    await expect(bill.get_by_test_id("state")).to_have_text("input-required")
    research = page.locator("#steps [data-step='research']")
    await expect(research.get_by_test_id("state")).to_have_text("completed")
    await expect(research.get_by_test_id("output")).to_have_text("Apples cost 2, pears cost 3.")
    await expect(page.locator(".lane[data-lane='researcher'] .seg.ran")).to_have_count(1)
    await expect(page.locator(".lane[data-lane='clerk'] .seg.paused")).to_have_count(1)
    await expect(page.get_by_test_id("status")).to_have_text("running")

    await approval.get_by_test_id("approve").click()

    await expect(page.get_by_test_id("status")).to_have_text("completed")
    await expect(approval.get_by_test_id("approval-status")).to_have_text("approved")
    await expect(bill.get_by_test_id("state")).to_have_text("completed")
    await expect(bill.get_by_test_id("output")).to_have_text("The bill comes to 5.")
    await expect(page.get_by_test_id("job-output")).to_have_text("The bill comes to 5.")
    await expect(bill.get_by_test_id("timing")).to_contain_text("paused for approval")
    await expect(bill.get_by_test_id("timing")).to_contain_text("worker ")
    await expect(research.get_by_test_id("timing")).to_contain_text("waited ")
    await expect(page.get_by_test_id("live")).to_have_text("ended")

    # What the page shows is what the API recorded: tokens x the configured prices.
    got = (await running.http.get(f"/jobs/{job}")).json()
    price = PRICES["crews-local"]
    for role, usage in got["usage"].items():
        cost = (
            usage["input_tokens"] * price["input_per_mtok"]
            + usage["output_tokens"] * price["output_per_mtok"]
        ) / 1e6
        assert usage["cost_usd"] == pytest.approx(cost)
        line = page.locator(f"#usage tr[data-role='{role}']")
        await expect(line.get_by_test_id("cost")).to_have_text(f"${cost:.6f}")
        await expect(line.get_by_test_id("input-tokens")).to_have_text(str(usage["input_tokens"]))
    await expect(page.get_by_test_id("job-cost")).to_have_text(f"${got['cost_usd']:.6f}")
    await expect(page.get_by_test_id("job-tokens")).to_have_text(str(got["tokens"]))
    # the README's picture is refreshed on purpose (CREWS_REFRESH_DOCS_IMAGES=1), not by every run
    docs = os.environ.get("CREWS_REFRESH_DOCS_IMAGES") == "1"
    shot = ROOT / "docs" / "web-view.png" if docs else tmp_path / "web-view.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")

    await page.goto(running.api + "/")
    done = page.locator(f"tr[data-job='{job}']")
    await expect(done.get_by_test_id("state")).to_have_text("completed")
    await expect(done.get_by_test_id("cost")).to_have_text(f"${got['cost_usd']:.6f}")

    await page.goto(running.api + "/ui/crews")
    crew = page.locator("[data-crew='shop']")
    await expect(crew.locator("tr[data-role='clerk'] [data-testid='queue-depth']")).to_have_text("0")
    await expect(crew.locator("tr[data-role='researcher']")).to_be_visible()


async def test_pages_need_no_key_but_their_data_does(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.api) as anonymous:
        for path in ("/", "/ui/jobs/anything", "/ui/crews", "/ui/static/job.js"):
            assert (await anonymous.get(path)).status_code == 200, path
        assert (await anonymous.get("/jobs")).status_code == 401
        assert (await anonymous.get("/jobs", headers={"Authorization": f"Bearer {KEY}"})).status_code == 200
