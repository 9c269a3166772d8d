"""The benchmarks run end to end at tiny sizes and report every figure (CrewAI's baseline only when installed)."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from bench import coldstart, crewai_env, overhead, report, stepcost
from bench.__main__ import Sizes, run_all
from bench.backlog import BacklogRun, merge, run_backlog
from bench.crew import CREW_YAML, ROLES
from bench.crewai_baseline import ROLES as CREWAI_ROLES
from bench.efficiency import ideal_s
from bench.machine import describe
from bench.vllm_batching import VLLMBatching

pytestmark = pytest.mark.slow

TINY = Sizes(
    overhead_jobs=2,
    overhead_warmup=1,
    throughput_jobs=(6,),
    workers_per_role=(1,),
    worker_concurrency=2,
    throughput_timeout_s=30.0,
    throughput_rounds=1,
    llm_latency_s=0.05,
    llm_concurrency=2,
    efficiency_jobs=(2,),
    coldstart_runs=1,
    stepcost_steps=2,
)


async def test_overhead_runs_jobs_across_processes_and_reports_ms_per_step() -> None:
    result = await overhead.run(2, 1, crewai=False)
    assert result.crews_lost == 0
    assert 0 < result.crews_ms_per_step < 5_000
    assert result.llm_round_trip_ms > 0
    assert result.ratio is None and result.crewai_error == "skipped (--no-crewai)"
    assert {"coordinator", "workers", "nats", "redis", "llm"} <= set(result.cpu_s)
    floor = result.floor
    assert floor is not None and floor.jobs == 2 and len(floor.job_s) == 2
    assert 0 < floor.ms_per_step < 5_000 and floor.cpu_ms_per_step > 0
    assert {"coordinator", "workers", "nats", "redis", "llm"} <= set(floor.cpu_s)
    for value in (result.floor_cpu_ratio, result.floor_wall_ratio):
        assert value is not None and math.isfinite(value) and value > 0


async def test_a_backlog_completes_every_job_under_a_slot_limited_llm() -> None:
    run = await run_backlog(
        4, 1, worker_concurrency=4, timeout_s=30.0, llm_latency_s=0.05, llm_concurrency=2, warmup=1
    )
    assert (run.completed, run.lost) == (4, 0)
    assert run.wall_s >= ideal_s(4, 0.05, 2)  # 12 calls through 2 slots cannot beat 6 x 50 ms
    assert run.steps_per_s > 0


async def test_step_costs_are_measured_handler_by_handler() -> None:
    found = await stepcost.run(2)
    assert found["worker: RoleWorker.handle"] > 0 and found["coordinator: submission"] > 0
    assert set(stepcost.per_step(found)) == {"worker", "coordinator"}


def test_a_native_worker_start_is_timed_and_its_memory_read() -> None:
    result = coldstart.run(1, settle_s=0.2)
    assert 0 < result.ready_s < 30
    assert result.rss_ready_mb > 10 and result.rss_working_mb >= result.rss_ready_mb * 0.9
    assert result.python_start_s < result.ready_s


async def test_the_report_holds_every_figure_and_the_machine(tmp_path: Path) -> None:
    results = await run_all(TINY, ("overhead",), crewai=False)
    results.coldstart = coldstart.ColdStart(1, 0.3, 0.3, 50.0, 70.0, 0.02)
    report.write(results, tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "## Machine" in text and describe()["cpu"] in text
    assert "ms/step" in text and "native worker to ready" in text
    report.refresh_findings(tmp_path / "RESULTS.md")
    assert (tmp_path / "RESULTS.md").read_text().startswith(text.partition(report.FINDINGS_MARK)[0])
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["overhead"]["crews_lost"] == 0 and data["coldstart"]["ready_s"] == 0.3
    assert "1b floor" in text and "CPU ms/step" in text
    for key in ("cpu_ratio", "wall_ratio", "cpu_ms_per_step", "ms_per_step"):
        assert math.isfinite(data["floor"][key]) and data["floor"][key] > 0, key
    assert "vllm" not in data  # only with --vllm


def test_results_json_keeps_its_stable_keys(tmp_path: Path) -> None:
    run = BacklogRun(10, 1, 4, 2.0, 10, 0, {"completed": 10}, 100.0, {"workers": 0.3})
    results = report.Results(machine=describe(), config={}, throughput=[merge([run, run])])
    results.vllm = VLLMBatching(jobs=8, rounds=1, crews_tokens=900, crews_wall_s=10.0,
                                direct_tokens=1000, direct_wall_s=10.0)  # fmt: skip
    data = report.to_json(results)
    assert data["throughput"] == [data["throughput"][0]]
    assert data["throughput"][0]["workers_per_role"] == 1 and data["throughput"][0]["rounds"] == 2
    assert data["throughput"][0]["steps_per_s"] == 15.0  # 2 x 10 jobs x 3 steps in 2 x 2 s
    assert data["vllm"]["batching_ratio"] == 0.9 and "shapes" not in data["vllm"]


def test_the_crewai_baseline_runs_the_same_crew(tmp_path: Path) -> None:
    assert [r[0].lower() for r in CREWAI_ROLES] == list(ROLES)
    for role in ROLES:
        assert role in CREW_YAML
    crewai_env.ensure(log=False)  # `make test` installs it beforehand (make install-crewai); no-op then
    run = subprocess.run(
        [str(crewai_env.python()), "bench/crewai_baseline.py", "--jobs", "1", "--warmup", "0"],
        capture_output=True, text=True, timeout=100, check=True, cwd=crewai_env.ROOT,
        env={"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")},
    )  # fmt: skip
    # CrewAI prints a tracing banner when the process exits: the report is the last JSON line.
    report_line = json.loads([line for line in run.stdout.splitlines() if line.startswith("{")][-1])
    assert report_line["llm_calls"] == 3 and report_line["jobs"] == 1
    assert "approved" in report_line["output"]
