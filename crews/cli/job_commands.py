"""What the job commands do: find or start a stack, submit, follow live, report."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from crews.cli.client import CrewsClient
from crews.cli.progress import JobProgress, jobs_table, processes_table, roles_table, usage_table, usd
from crews.errors import LocalStackError
from crews.local.settings import StackSettings

console = Console()


def api_key() -> str | None:
    """The key the job commands send: the first of ``CREWS_API_KEYS``, if any."""
    keys = os.environ.get("CREWS_API_KEYS", "")
    return keys.split(",")[0].strip() or None


def client_for(url: str | None) -> CrewsClient:
    if url is None:
        raise LocalStackError("no crews API is running: start one with `crews up` (or pass --api URL)")
    return CrewsClient(url, api_key())


def _progress(message: str) -> None:
    console.print(f"[dim]• {message}[/]")


def stack_settings(llm: str | None) -> StackSettings:
    """Settings from the environment, with ``--llm`` on top."""
    from crews.local.settings import StackSettings

    if llm is None:
        return StackSettings()
    if llm not in ("vllm", "scripted"):
        raise LocalStackError(
            f"--llm {llm}: choose vllm (a real model) or scripted (an echo server for tests)"
        )
    return StackSettings(local_llm=llm)


async def run_up_forever(llm: str | None, projects: list[Path] | None = None) -> None:
    from crews.local.up import install_stop_signals, run_up
    from crews.spec.crewai.importer import project_package_dir

    settings = stack_settings(llm)
    if projects:
        declared = [project_package_dir(p) for p in projects]
        settings = settings.model_copy(update={"project_paths": [*settings.project_paths, *declared]})
        for directory in declared:
            console.print(f"CrewAI project: {directory} (its code is importable by the crewai workers)")
    stop, ready = asyncio.Event(), asyncio.Event()
    install_stop_signals(stop)
    runner = asyncio.create_task(run_up(settings, _progress, stop, ready))
    await _wait_ready(runner, ready)
    from crews.local.up import read_stack_info

    info = read_stack_info(settings)
    console.print(f"[green]crews is up[/]: API {info.api_url if info else '?'} — Ctrl-C stops everything")
    await runner
    console.print("stopped")


async def _wait_ready(runner: asyncio.Task[None], ready: asyncio.Event) -> None:
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if runner.done():
        waiter.cancel()
        runner.result()  # raises what stopped it


@contextlib.asynccontextmanager
async def stack_for(url: str | None, llm: str | None) -> AsyncIterator[str]:
    """The running stack's API URL, or a stack started for this command (and stopped after)."""
    if url is not None and await CrewsClient(url).healthy():
        yield url
        return
    from crews.local.up import read_stack_info, run_up

    settings = stack_settings(llm)
    stop, ready = asyncio.Event(), asyncio.Event()
    runner = asyncio.create_task(run_up(settings, _progress, stop, ready))
    try:
        await _wait_ready(runner, ready)
        info = read_stack_info(settings)
        assert info is not None
        yield info.api_url
    finally:
        stop.set()
        _progress("stopping the stack…")
        await runner


async def run_crew(crew_file: Path, inputs: dict[str, Any], url: str | None, llm: str | None) -> int:
    """Register the crew, run one job with live progress; exit code 0 when it completed."""
    from crews.spec.load import load_crew

    spec = load_crew(crew_file)  # a bad file stops here, with its message
    _cancel_on_signals()
    async with stack_for(url, llm) as api, CrewsClient(api, api_key()) as client:
        await client.register_crew(await asyncio.to_thread(crew_file.read_text))
        job = await client.submit(spec.name, inputs)
        progress = await follow(client, job.id)
        record = await client.job(job.id)
    final = (progress.output or record.output).strip()
    for step in record.steps:
        if step.output and step.output.strip() != final:
            console.rule(f"{step.id} — {step.role or ''}", style="dim")
            console.print(step.output.strip(), highlight=False)
    if progress.state == "completed":
        console.rule("result")
        console.print(final, highlight=False)
    else:
        console.print(f"[red]job {progress.state}[/]: {progress.reason or record.reason}")
    console.print(usage_table(record.usage))
    return 0 if progress.state == "completed" else 1


def _cancel_on_signals() -> None:
    """Ctrl-C or SIGTERM cancels the command, so the stack it started is stopped on the way out."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)


async def follow(client: CrewsClient, job: str) -> JobProgress:
    progress = JobProgress(job)
    progress.seed((await client.job(job)).steps)
    with Live(progress.table(), console=console, refresh_per_second=4) as live:
        ticker = asyncio.create_task(_refresh(live, progress))
        try:
            async for event in client.events(job):
                progress.apply(event)
                if not progress.steps:
                    progress.seed((await client.job(job)).steps)
                live.update(progress.table())
                if progress.done:
                    break
        finally:
            ticker.cancel()
        live.update(progress.table())
    return progress


async def _refresh(live: Live, progress: JobProgress) -> None:
    while True:
        await asyncio.sleep(0.5)
        live.update(progress.table())


async def show_status(job: str | None, url: str | None) -> None:
    async with client_for(url) as client:
        if job is None:
            console.print(jobs_table(await client.jobs()))
            console.print(roles_table(await client.roles()))
            processes = await client.processes()
            if processes:
                console.print(processes_table(processes))
            return
        record = await client.job(job)
        progress = JobProgress(job, state=record.status)
        progress.seed(record.steps)
        console.print(progress.table())
        console.print(usage_table(record.usage))
        console.print(f"cost: {usd(record.cost_usd)}  tokens: {record.tokens}")


async def show_logs(job: str, follow_on: bool, url: str | None) -> None:
    """Print the job's events; without ``follow_on``, stop once the replay goes quiet."""
    async with client_for(url) as client:
        progress = JobProgress(job)
        events = client.events(job).__aiter__()
        while not progress.done:
            try:
                event = await (anext(events) if follow_on else asyncio.wait_for(anext(events), 1.0))
            except (StopAsyncIteration, TimeoutError):
                break
            progress.apply(event)
            kind, body = next(iter(event.items()))
            state = body.get("status", {}).get("state", "").removeprefix("TASK_STATE_").lower()
            console.print(f"{body.get('taskId', '')}  {kind}  {state}")
