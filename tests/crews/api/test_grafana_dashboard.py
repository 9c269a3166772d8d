"""The Grafana dashboard shipped with the chart asks only for metrics that /metrics really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from bus.contracts.evals import EvalScore
from bus.contracts.result import StepResult, StepUsage
from crews.jobs.store import RedisJobStore, job_keys
from crews.plan.planner import plan
from tests.crews.api.conftest import submit

DASHBOARD = Path(__file__).resolve().parents[3] / "helm" / "crews" / "files" / "grafana-dashboard.json"
METRIC = re.compile(r"\bcrews_[a-z_]+\b")


def dashboard_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return {name for expr in exprs for name in METRIC.findall(expr)}


def exported(text: str) -> set[str]:
    """Sample names in a Prometheus text exposition."""
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }


async def test_every_panel_metric_is_exported(
    client: httpx.AsyncClient, crew: str, store: RedisJobStore
) -> None:
    job = await submit(client)
    spec = await store.get_crew(crew)
    await store.start(job, plan(spec, {"topic": "bees"}), spec, "")
    usage = StepUsage(input_tokens=10, output_tokens=5, cost_usd=0.001)
    graded = EvalScore(name="on_topic", type="judge", score=0.4, passed=False)
    result = StepResult(
        output="x", role="researcher", worker="w", usage=usage, duration_s=0.5, evals=[graded]
    )
    await store.redis.hset(job_keys(job).results, "research", result.model_dump_json())
    await store.redis.hset(
        job_keys(job).usage,
        mapping={"researcher:input_tokens": 10, "researcher:output_tokens": 5, "researcher:calls": 1},
    )
    await store.redis.hincrbyfloat(job_keys(job).usage, "researcher:cost_usd", 0.001)
    await store.set_worker_counts({f"{crew}/researcher": 1})
    await client.get("/jobs")  # a request, so the API's own series exist

    names = exported((await client.get("/metrics")).text)
    wanted = dashboard_metrics()
    assert {"crews_cost_usd_total", "crews_queue_depth", "crews_step_duration_seconds_bucket"} <= wanted
    assert not wanted - names, (
        f"the dashboard asks for metrics /metrics does not export: {sorted(wanted - names)}"
    )
    text = (await client.get("/metrics")).text
    assert f'crews_cost_usd_total{{crew="{crew}",role="researcher"}} 0.001' in text
    assert f'crews_eval_score{{crew="{crew}",eval="on_topic",role="researcher"}} 0.4' in text
    assert f'crews_evals_failed{{crew="{crew}",eval="on_topic",role="researcher"}} 1.0' in text
