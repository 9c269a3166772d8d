"""`crews up` on a fresh home runs a crew through the API on the real model (vLLM on the CPU), then stops clean.

Slow (vLLM starts in ~35 s, each step generates on the CPU), but part of `make test`:
it is the path `make demo` takes. A 135M model's answers are checked for structure
(every step produced text, tokens were counted), not for wisdom.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from crews.cli.client import CrewsClient
from crews.cli.progress import JobProgress
from crews.local.servers import ServerProcess
from crews.local.up import StackInfo
from tests.child_env import child_env
from tests.e2e.stack import CREWS, ROOT, stack_ports


def listening(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) == 0


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.xdist_group("vllm")  # one local vLLM at a time: two on 2 cores starve each other
async def test_crews_up_runs_a_crew_on_the_real_model_and_stops_everything(tmp_path: Path) -> None:
    env = child_env()
    env.update(CREWS_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1", **stack_ports())
    up = ServerProcess(
        "crews up", [CREWS, "up"], "crews is up", 0, env=env, cwd=str(ROOT), ready_timeout_s=600
    )
    up.start()
    try:
        info = StackInfo.model_validate_json((tmp_path / "home" / "stack.json").read_text())
        async with CrewsClient(info.api_url) as client:
            await client.register_crew((ROOT / "examples" / "research.yaml").read_text())
            job = (await client.submit("research", {"topic": "honey bees"})).id
            progress = JobProgress(job)
            async for event in client.events(job):
                progress.apply(event)
                if progress.done:
                    break
            record = await client.job(job)
    finally:
        up.stop(signal.SIGINT, timeout=120)

    assert (progress.state, record.status) == ("completed", "completed"), record.reason
    outputs = {step.id: step.output or "" for step in record.steps}
    assert set(outputs) == {"research", "write", "review"}
    assert all(text.strip() for text in outputs.values()), outputs
    assert progress.output.strip() == record.output.strip() != ""
    usage = record.usage
    assert set(usage) == {"researcher", "writer", "reviewer"}
    assert all(u.input_tokens > 0 and u.output_tokens > 0 for u in usage.values())
    # Ctrl-C stopped everything crews up started.
    assert up.proc is not None and up.proc.returncode == 0, up.log_tail
    assert not (tmp_path / "home" / "stack.json").exists()
    for url in (info.api_url, info.nats_url, info.redis_url, info.llm_urls.split(",")[0]):
        assert not listening(url), f"{url} still answers after crews up stopped"
