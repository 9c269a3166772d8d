"""The chaos run: jobs with side effects while workers, coordinators, nats-server and Redis are killed.

``run_chaos(ChaosOptions(...))`` starts real servers and processes
(``tests.chaos.cluster``), registers the crews of ``tests.chaos.scenario``,
submits the seeded jobs (at most ``in_flight`` unfinished at once, each with an
idempotency key, submitted again when an outage made the submission fail),
and meanwhile works through the seeded kills (``tests.chaos.schedule``): each
strikes once the ledger holds its number of tool calls. A worker kill (or
pause) takes the worker that made the latest tool call (it is in the middle
of a step); a
Redis kill is timed against a job with a short deadline, so that deadline
passes while Redis is down. Once every job ended (or ``duration_s`` is up)
it reads the figures (``tests.chaos.report``).

Nothing waits for time as synchronization: kills wait for ledger progress,
server restarts wait for every coordinator to have noticed the outage, and
everything else waits for a condition with a deadline. The one clock wait is
the deadline job's own deadline (the clock is what a deadline is about).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import nats
from nats.aio.client import Client as NATS
from pydantic import BaseModel, Field

from bus.outages import OUTAGES
from crews.errors import JobNotFound
from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore
from crews.spec.load import load_crew_text
from inference.testing.server import ScriptedServer
from tests.chaos.cluster import Cluster
from tests.chaos.ledger import double_effects, read_ledger, repeated_calls
from tests.chaos.report import (
    ChaosReport,
    Tracked,
    deadline_figures,
    double_results,
    expected_end,
    side_effects,
    step_figures,
)
from tests.chaos.scenario import (
    DOOMED,
    DOOMED_CREW,
    DOOMED_ROLE,
    IDLE,
    IDLE_CREW,
    LEDGER_CREW,
    LEDGER_ROLES,
    JobKind,
    ledger_crew,
    script,
)
from tests.chaos.schedule import OUTAGE_DEADLINE_TIMEOUT_S, ChaosPlan, PlannedKill, make_plan

log = logging.getLogger("tests.chaos")
T = TypeVar("T")
POLL_S = 0.1  # how often a condition without an event (a Redis value, a file's length) is checked again
PAUSE_TIMEOUT_S = 30.0  # a paused worker's step comes back after the ack wait (3 s)
CREWS: dict[JobKind, str] = {"ledger": LEDGER_CREW, "deadline": IDLE_CREW, "doomed": DOOMED_CREW}


class ChaosOptions(BaseModel):
    """The shape of a chaos run."""

    jobs: int = Field(20, ge=1, description="ledger jobs (deadline and dead-letter jobs come on top)")
    seed: int = 1
    duration_s: float = Field(300.0, gt=0, description="every job must have ended by then, else it is stuck")
    kills: int = Field(6, ge=0, description="kills in all (each kind at least once from 5 on)")
    in_flight: int = Field(8, ge=1, description="unfinished jobs at most at once")
    workers_per_role: int = Field(2, ge=1)
    coordinators: int = Field(2, ge=1)
    llm_latency_s: float = Field(0.3, ge=0, description="the scripted model's time per answer")
    outage_s: float = Field(0.0, ge=0, description="how much longer a killed server stays down once noticed")
    workdir: Path | None = None


class Run:
    """One chaos run over a started cluster."""

    def __init__(self, cluster: Cluster, plan: ChaosPlan, options: ChaosOptions) -> None:
        self.cluster, self.plan, self.options = cluster, plan, options
        self.rng = random.Random(options.seed + 1)
        self.jobs: dict[str, Tracked] = {}
        self.started = time.monotonic()
        self.ends_by = self.started + options.duration_s
        self.servers_up = asyncio.Event()
        self.servers_up.set()
        self.turn = asyncio.Lock()  # one kill (with its replacement) at a time, supervision in between
        self.outages_not_seen = 0
        self.nc: NATS | None = None
        self.store: RedisJobStore | None = None

    # --- waiting ---------------------------------------------------------------------------------

    def time_left(self) -> float:
        return self.ends_by - time.monotonic()

    async def until(self, condition: Callable[[], bool], what: str, timeout: float | None = None) -> bool:
        """Wait for ``condition``; False when ``timeout`` or the run's time is up first."""
        give_up = time.monotonic() + (timeout if timeout is not None else self.time_left())
        while not condition():
            if time.monotonic() >= min(give_up, self.ends_by):
                log.warning("gave up waiting for %s", what)
                return False
            await asyncio.sleep(POLL_S)
        return True

    async def patiently(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        """``op()``, again after each outage error, until the run's time is up."""
        while True:
            try:
                return await op()
            except OUTAGES as exc:
                if self.time_left() <= 0:
                    raise
                log.info("%s failed (%s), trying again", what, type(exc).__name__)
                await asyncio.sleep(POLL_S)

    # --- jobs ------------------------------------------------------------------------------------

    def unfinished(self, kind: JobKind | None = None) -> list[Tracked]:
        return [
            j
            for j in self.jobs.values()
            if (kind is None or j.kind == kind) and (j.record is None or not j.record.terminal)
        ]

    async def submit(self, kind: JobKind, timeout_s: float | None, key: str) -> Tracked:
        assert self.nc is not None and self.store is not None
        js, store = self.nc.jetstream(), self.store

        async def once() -> str:
            timeout = {"timeout_s": timeout_s} if timeout_s is not None else {}
            return (await submit_job(js, store, CREWS[kind], {}, idempotency_key=key, **timeout)).id

        job = await self.patiently(f"submitting {key}", once)
        tracked = self.jobs.setdefault(job, Tracked(job, kind, timeout_s))
        return tracked

    async def submit_all(self) -> None:
        for planned in self.plan.jobs:
            if not await self.until(lambda: len(self.unfinished()) < self.options.in_flight, "a free slot"):
                return
            await self.submit(planned.kind, planned.timeout_s, f"chaos-{self.options.seed}-{planned.n}")

    async def follow(self) -> None:
        """Keep each unfinished job's record fresh (until cancelled)."""
        assert self.store is not None
        while True:
            for job in self.unfinished():
                with contextlib.suppress(*OUTAGES, JobNotFound):
                    job.record = await self.store.get(job.id)
            await asyncio.sleep(POLL_S)

    # --- chaos -----------------------------------------------------------------------------------

    def tool_calls(self) -> int:
        path = self.cluster.ledger
        return path.read_bytes().count(b"\n") if path.exists() else 0

    def progressed_to(self, calls: int) -> bool:
        """The ledger holds ``calls`` tool calls, or no ledger job is left to make more."""
        return self.tool_calls() >= calls or (self.done_submitting and not self.unfinished("ledger"))

    async def strike_all(self) -> None:
        for kill in self.plan.kills:
            reached = await self.until(
                partial(self.progressed_to, kill.at_calls), f"{kill.at_calls} tool calls"
            )
            if not reached:
                return
            async with self.turn:
                log.info("kill %s at %d tool calls", kill.kind, self.tool_calls())
                await self.strike(kill)

    async def strike(self, kill: PlannedKill) -> None:
        if kill.kind == "worker":
            lines = read_ledger(self.cluster.ledger)
            await self.cluster.kill_worker(self.rng, lines[-1].pid if lines else None)
        elif kill.kind == "coordinator":
            await self.cluster.kill_coordinator(self.rng)
        elif kill.kind == "nats":
            await self.outage("nats")
        elif kill.kind == "pause":
            await self.pause_until_handed_over()
        else:
            await self.redis_outage_over_a_deadline(kill)

    async def outage(self, kind: str, *, until_clock: float = 0.0) -> None:
        """Kill a server; start it again once every coordinator noticed (and the clock passed ``until_clock``)."""
        self.servers_up.clear()
        marks = self.cluster.server_down(kind)
        if not await self.cluster.outage_seen(marks):
            self.outages_not_seen += 1
        await _clock(
            until_clock + self.options.outage_s if until_clock else time.time() + self.options.outage_s
        )
        await self.cluster.server_up(kind)
        self.servers_up.set()

    async def redis_outage_over_a_deadline(self, kill: PlannedKill) -> None:
        """A job with a short deadline; Redis dies just before it and is back only after it."""
        key = f"chaos-{self.options.seed}-outage-{self.cluster.kills['redis']}"
        job = await self.submit("deadline", OUTAGE_DEADLINE_TIMEOUT_S, key)
        taken = await self.until(
            lambda: job.record is not None and job.record.status != "submitted", "the job taken"
        )
        if not taken:
            return
        assert job.record is not None
        deadline = job.record.created_at + OUTAGE_DEADLINE_TIMEOUT_S
        await _clock(deadline - kill.before_deadline_s)
        await self.outage("redis", until_clock=deadline + 0.2)

    async def pause_until_handed_over(self) -> None:
        """SIGSTOP the worker in the middle of the latest tool call's step; SIGCONT once another worker took it."""
        lines = read_ledger(self.cluster.ledger)
        if not lines:
            return
        job_id, step = lines[-1].entry.split("/")[:2]
        job = self.jobs.get(job_id)
        proc = self.cluster.pause_worker(lines[-1].pid)
        if job is None or proc is None:
            return
        before = job.record.attempts.get(step, 1) if job.record is not None else 1

        def handed_over() -> bool:
            record = job.record
            return record is not None and (record.terminal or record.attempts.get(step, 1) > before)

        try:
            await self.until(handed_over, f"step {step} of {job_id} redelivered", timeout=PAUSE_TIMEOUT_S)
        finally:
            self.cluster.resume_worker(proc)

    async def supervise(self) -> None:
        """Replace coordinators and workers that died on their own, while the servers are up (until cancelled)."""
        while True:
            await self.servers_up.wait()
            async with self.turn:
                await self.cluster.replace_the_dead()
            await asyncio.sleep(POLL_S * 5)

    # --- the run ---------------------------------------------------------------------------------

    done_submitting = False

    async def execute(self) -> ChaosReport:
        cluster = self.cluster
        self.nc = await nats.connect(
            cluster.nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, error_cb=_nats_error
        )
        self.store = RedisJobStore.from_url(cluster.redis_url)
        try:
            for text in (ledger_crew(), DOOMED, IDLE):
                await self.store.save_crew(load_crew_text(text, "crew.yaml"))
            await cluster.start_processes()
            self.started = time.monotonic()
            self.ends_by = self.started + self.options.duration_s
            background = [asyncio.create_task(self.follow()), asyncio.create_task(self.supervise())]
            try:
                strikes = asyncio.create_task(self.strike_all())
                await self.submit_all()
                self.done_submitting = True
                await strikes
                await self.until(lambda: not self.unfinished(), "every job to end")
            finally:
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
            return await self.report()
        finally:
            await self.store.aclose()
            await self.nc.close()

    async def report(self) -> ChaosReport:
        assert self.store is not None
        store = self.store
        jobs = list(self.jobs.values())
        lost = 0
        for job in jobs:
            try:
                job.record = await self.patiently("reading a job", partial(store.get, job.id))
            except JobNotFound:
                job.record, lost = None, lost + 1
        ended = [j for j in jobs if j.record is not None and j.record.terminal]
        lines = read_ledger(self.cluster.ledger)
        reexecuted, resumed = await step_figures(store, ended)
        missing, unstable = side_effects(ended, lines)
        missed, in_outage, latest = deadline_figures(jobs, self.cluster.outages)
        doomed = [j for j in jobs if j.kind == "doomed"]
        return ChaosReport(
            seed=self.options.seed,
            duration_s=round(time.monotonic() - self.started, 1),
            planned=len(self.plan.jobs) + self.cluster.kills["redis"],
            submitted=len(jobs),
            completed=sum(1 for j in ended if j.record is not None and j.record.status == "completed"),
            failed=sum(1 for j in ended if j.record is not None and j.record.status == "failed"),
            stuck=sum(1 for j in jobs if j.record is not None and not j.record.terminal),
            lost=lost,
            unexpected_ends=[u for u in map(expected_end, ended) if u is not None],
            kills=dict(self.cluster.kills),
            exits_on_their_own=dict(self.cluster.exits),
            outages_not_seen=self.outages_not_seen,
            steps_reexecuted=reexecuted,
            turns_resumed=resumed,
            tool_calls=len(lines),
            repeated_tool_calls=repeated_calls(lines),
            double_results=double_results(list(self.cluster.worker_logs())),
            double_side_effects=double_effects(lines),
            missing_side_effects=missing,
            unstable_keys=unstable,
            deadline_jobs=sum(1 for j in jobs if j.kind == "deadline"),
            deadlines_missed=missed,
            deadlines_in_redis_outage=in_outage,
            latest_timeout_s=round(latest, 2),
            dead_letter_jobs=len(doomed),
            dead_letters_failed_right=sum(1 for j in doomed if j.record is not None and j.record.terminal
                                          and expected_end(j) is None),
        )  # fmt: skip


async def _nats_error(exc: Exception) -> None:
    log.info("nats: %s: %s", type(exc).__name__, exc)  # while nats-server is down: expected


async def _clock(at: float) -> None:
    """Wait until the wall clock reads ``at`` (a deadline's instant: the clock is the subject)."""
    await asyncio.sleep(max(0.0, at - time.time()))


async def run_chaos(options: ChaosOptions) -> ChaosReport:
    """Run the chaos described by ``options`` on processes of its own; the figures."""
    plan = make_plan(options.seed, options.jobs, options.kills)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="crews-chaos-"))
    workers = {f"{LEDGER_CREW}/{role}": options.workers_per_role for role in LEDGER_ROLES}
    workers[f"{DOOMED_CREW}/{DOOMED_ROLE}"] = 1
    with ScriptedServer(script(options.llm_latency_s)) as llm:
        cluster = Cluster(workdir, llm.url, workers, options.coordinators)
        try:
            await asyncio.to_thread(cluster.start_servers)
            log.info("chaos run in %s: %d jobs, %d kills", workdir, len(plan.jobs), len(plan.kills))
            return await Run(cluster, plan, options).execute()
        finally:
            cluster.close()
