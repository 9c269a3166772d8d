"""The Redis job store: job state, write-once step results, shared memory, usage, and the crew registry.

Keys (docs/architecture.md, "Redis keys") carry a hash tag per job so one job's keys
share a cluster slot: ``crews:{job:<id>}:state|results|memory|usage|approvals|turns``. Besides
them: ``crews:crew:<name>`` (crew definitions), ``crews:jobs`` (sorted set of
job ids by creation time, for listing), ``crews:jobs:deadlines`` (sorted set
of running jobs by deadline, and of ended jobs until their end is announced),
``crews:idem:<owner>:<key>`` (idempotency keys, one namespace per principal),
``crews:crews:owners`` (crew name → the principal that registered it) and
``crews:owner:<owner>:running`` (the principal's jobs that have not ended, for
its limit on running jobs).

Each script and transaction touches one job's keys only, so the store runs on
a Redis cluster as on one server (``bus.redis_client``); the keys that are not
a job's are written by separate commands beside them.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import Any

from pydantic import BaseModel, Field

from bus.contracts.keys import CREW_PREFIX, StepKeys, crew_key
from bus.contracts.result import StepResult
from bus.contracts.states import TERMINAL, JobStatus, StepState
from bus.contracts.usage import RoleUsage, parse_usage
from bus.redis_client import RedisClient, redis_client
from bus.settings import RedisSettings
from crews.errors import CrewNotFound, JobNotFound
from crews.jobs.records import JobRecord, parse_record, stored_crew
from crews.jobs.store_scripts import (
    ATTEMPT,
    CLAIM_CREW,
    CREATE,
    FINISH,
    REPLACE_PLAN,
    START,
    STEP_STATE,
)
from crews.plan.planner import Plan
from crews.spec.models import CrewSpec

__all__ = ["TERMINAL", "JobRecord", "JobStatus", "RoleUsage", "StepResult", "StepState", "stored_crew"]

JOBS_INDEX = "crews:jobs"
WORKERS = "crews:stack:workers"  # worker processes per "crew/role", written by the local autoscaler
PROCESSES = "crews:stack:processes"  # the local stack's processes: name → StackProcess JSON (crews up)
DEADLINES = "crews:jobs:deadlines"
CREW_OWNERS = "crews:crews:owners"


def running_key(owner: str) -> str:
    """The set of ``owner``'s jobs that have not ended."""
    return f"crews:owner:{owner}:running"


def idempotency_key(owner: str, key: str) -> str:
    return f"crews:idem:{owner}:{key}"


def new_job_id() -> str:
    return uuid.uuid4().hex[:20]


def job_keys(job: str) -> StepKeys:
    return StepKeys.for_job(job)


class StackProcess(BaseModel):
    """A process (or a role's workers) of the local stack, as ``crews up`` supervises it."""

    name: str
    pids: list[int] = Field(default_factory=list, description="running processes under this name")
    restarts: int = Field(0, description="times the supervisor started one again after it died")


class RedisJobStore:
    """Job state in Redis; every method is one or a few round trips and safe to repeat."""

    def __init__(self, client: RedisClient, *, job_ttl_s: int = 7 * 24 * 3600) -> None:
        self.redis = client
        self.job_ttl_s = job_ttl_s
        self._finish = client.register_script(FINISH)
        self._create = client.register_script(CREATE)
        self._step_state = client.register_script(STEP_STATE)
        self._attempt = client.register_script(ATTEMPT)
        self._claim_crew = client.register_script(CLAIM_CREW)
        self._replace_plan = client.register_script(REPLACE_PLAN)
        self._start = client.register_script(START)

    @classmethod
    def from_settings(cls, settings: RedisSettings, *, job_ttl_s: int = 7 * 24 * 3600) -> RedisJobStore:
        """A store on the server or cluster ``settings`` name."""
        return cls(redis_client(settings), job_ttl_s=job_ttl_s)

    @classmethod
    def from_url(cls, url: str, *, job_ttl_s: int = 7 * 24 * 3600) -> RedisJobStore:
        """A store at ``url`` (a ``redis+cluster://`` URL: a cluster); commands survive a server restart."""
        return cls.from_settings(RedisSettings(redis_url=url), job_ttl_s=job_ttl_s)

    async def aclose(self) -> None:
        await self.redis.aclose()

    # --- crews -----------------------------------------------------------------------------

    async def save_crew(self, spec: CrewSpec) -> None:
        """Register ``spec`` (validated when it was loaded: it is stored as it is)."""
        await self.redis.set(crew_key(spec.name), spec.model_dump_json())

    async def get_crew(self, name: str) -> CrewSpec:
        raw = await self.redis.get(crew_key(name))
        if raw is None:
            raise CrewNotFound(f"no crew named {name!r}: register it first (crews run <file> or POST /crews)")
        return stored_crew(raw)

    async def list_crews(self) -> list[str]:
        names = [key.removeprefix(CREW_PREFIX) async for key in self.redis.scan_iter(f"{CREW_PREFIX}*")]
        return sorted(names)

    async def delete_crew(self, name: str) -> bool:
        deleted = bool(await self.redis.delete(crew_key(name)))
        await self.redis.hdel(CREW_OWNERS, name)
        return deleted

    async def claim_crew(self, name: str, owner: str, *, admin: bool = False) -> bool:
        """Make ``owner`` the crew's owner unless another principal is (an admin may take any crew)."""
        return bool(await self._claim_crew(keys=[CREW_OWNERS], args=[name, owner, "1" if admin else "0"]))

    async def crew_owner(self, name: str) -> str | None:
        """The principal that registered the crew (None: unknown, e.g. registered before owners existed)."""
        owner: str | None = await self.redis.hget(CREW_OWNERS, name)
        return owner

    # --- jobs ------------------------------------------------------------------------------

    async def claim_idempotency_key(self, key: str, job: str, owner: str = "") -> str:
        """The job id for ``owner``'s ``key``: ``job`` when the key is new, else the job it was first given to."""
        name = idempotency_key(owner, key)
        if await self.redis.set(name, job, nx=True, ex=self.job_ttl_s):
            return job
        existing = await self.redis.get(name)
        return existing or job

    async def create(
        self, job: str, crew: str, inputs: dict[str, Any], deadline_s: float, *, owner: str = ""
    ) -> JobRecord:
        """Record a submitted job of ``owner``, atomically; an existing job is returned unchanged."""
        keys, now = job_keys(job), time.time()
        await self._create(
            keys=[keys.state], args=[job, crew, json.dumps(inputs), str(now), str(deadline_s), owner]
        )
        record = await self.get(job)
        # The indexes live in other slots than the job: separate commands, idempotent after a crash.
        await self.redis.zadd(JOBS_INDEX, {job: record.created_at}, nx=True)
        if not record.terminal:
            await self.redis.zadd(DEADLINES, {job: record.created_at + deadline_s}, nx=True)
            await self.redis.sadd(running_key(record.owner), job)
        return record

    async def running_jobs(self, owner: str) -> int:
        """How many of ``owner``'s jobs have not ended (ended ones are pruned on the way)."""
        key = running_key(owner)
        ids: set[str] = await self.redis.smembers(key)
        alive = 0
        for job in ids:
            status = await self.redis.hget(job_keys(job).state, "status")
            if status is None or status in TERMINAL:
                await self.redis.srem(key, job)
            else:
                alive += 1
        return alive

    async def start(
        self, job: str, plan: Plan, crew_spec: CrewSpec, traceparent: str
    ) -> tuple[JobRecord, bool]:
        """Store the plan and mark the job running, unless it already has a plan or has ended (one script).

        Returns the job as it is then, and whether this call started it (then no step has a result yet).
        """
        args = [plan.model_dump_json(), str(plan.version), crew_spec.model_dump_json(), traceparent]
        started, flat = await self._start(
            keys=[job_keys(job).state], args=[*args, *(s.id for s in plan.steps)]
        )
        if not flat:
            raise JobNotFound(f"no job {job!r} (finished jobs are kept for {self.job_ttl_s} s)")
        return parse_record(dict(zip(flat[::2], flat[1::2], strict=True))), bool(started)

    async def get_with_crew(self, job: str, crew: str) -> tuple[JobRecord, CrewSpec | None]:
        """The job and its crew (None: not registered) in one round trip (a submission's first read)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(job_keys(job).state)
        pipe.get(crew_key(crew))
        state, raw_crew = await pipe.execute()
        if not state:
            raise JobNotFound(f"no job {job!r} (finished jobs are kept for {self.job_ttl_s} s)")
        return parse_record(state), None if raw_crew is None else stored_crew(raw_crew)

    async def replace_plan(self, job: str, plan: Plan, *, expected_version: int) -> bool:
        """Store a new plan (its new steps pending) over ``expected_version`` only; False: re-read, decide again."""
        ids = [step.id for step in plan.steps]
        args = [str(expected_version), plan.model_dump_json(), str(plan.version), *ids]
        return bool(await self._replace_plan(keys=[job_keys(job).state], args=args))

    async def get(self, job: str) -> JobRecord:
        """The job as stored, with the steps its workers have started (``parse_record``)."""
        keys = job_keys(job)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.state)
        pipe.hgetall(keys.progress)
        raw, progress = await pipe.execute()
        if not raw:
            raise JobNotFound(f"no job {job!r} (finished jobs are kept for {self.job_ttl_s} s)")
        return parse_record(raw, progress)

    async def set_step_state(
        self, job: str, step: str, state: StepState, *, seq: int | None = None, attempt: int | None = None
    ) -> None:
        """Set a step's state; with ``seq`` (the event's stream sequence), only if no later event set it.

        Events of one job are handled concurrently, so a step's WORKING may be handled after its
        INPUT-REQUIRED or COMPLETED: the sequence keeps the state from going back. ``attempt``: also
        ``record_attempt``, in the same round trip.
        """
        if attempt is None:
            await self._step_state(keys=[job_keys(job).state], args=self._step_state_args(step, state, seq))
            return
        pipe = self.redis.pipeline(transaction=False)
        self._queue_step_state(pipe, job, step, state, seq)
        pipe.eval(ATTEMPT, 1, job_keys(job).state, step, attempt)
        await pipe.execute()

    @staticmethod
    def _step_state_args(step: str, state: StepState, seq: int | None) -> list[str | int]:
        return [step, state, "" if seq is None else seq]

    def _queue_step_state(self, pipe: Any, job: str, step: str, state: StepState, seq: int | None) -> None:
        """Queue ``set_step_state`` on ``pipe`` (EVAL with the text: a cluster pipeline loads no scripts)."""
        pipe.eval(STEP_STATE, 1, job_keys(job).state, *self._step_state_args(step, state, seq))

    async def record_attempt(self, job: str, step: str, attempt: int) -> None:
        """Remember that delivery ``attempt`` of ``step`` started (the highest one is kept)."""
        await self._attempt(keys=[job_keys(job).state], args=[step, attempt])

    async def finish(
        self, job: str, status: JobStatus, *, reason: str = "", output: str = "", owner: str | None = None
    ) -> bool:
        """Move the job to a terminal ``status`` once; False when it had already ended.

        The job stays in the deadlines set, due now, until its end is announced
        (``forget_deadline``): a coordinator that could not publish the end (NATS
        down, a crash) leaves it for the next tick to announce again.
        ``owner``: the job's owner as the caller read it (it never changes): then the end and
        its indexes go in one round trip (the keys' TTL is set even when the job had ended
        already: it is the same TTL, counted again); else the owner comes from the end's script.
        """
        keys = job_keys(job)
        now = time.time()
        args = [status, reason, output, str(now)]
        pipe = self.redis.pipeline(transaction=False)  # one round trip (EXPIRE: the coordinator's ACL)
        known = owner is not None
        if known:  # the script goes in the pipeline, as its text (a cluster pipeline loads no scripts)
            pipe.eval(FINISH, 1, keys.state, *args)
        else:
            moved, owner = await self._finish(keys=[keys.state], args=args)
        pipe.zadd(DEADLINES, {job: now}, xx=True)
        if owner:
            pipe.srem(running_key(owner), job)
        if known or moved:
            for key in keys.model_dump().values():  # every key of the job (StepKeys.for_job)
                pipe.expire(key, self.job_ttl_s)
        replies = await pipe.execute()
        if known:
            moved = replies[0][0]
        return bool(moved)

    async def results(self, job: str) -> dict[str, StepResult]:
        raw = await self.redis.hgetall(job_keys(job).results)
        return {step: StepResult.model_validate_json(value) for step, value in raw.items()}

    async def get_with_results(
        self, job: str, *, completing: tuple[str, int] | None = None
    ) -> tuple[JobRecord, dict[str, StepResult]]:
        """:meth:`get` and :meth:`results` in one round trip (the coordinator's pass over a job).

        ``completing``: ``(step, seq)`` of a step's COMPLETED event, set first in the same round trip.
        """
        keys = job_keys(job)
        pipe = self.redis.pipeline(transaction=False)
        if completing is not None:
            self._queue_step_state(pipe, job, completing[0], "completed", completing[1])
        pipe.hgetall(keys.state)
        pipe.hgetall(keys.results)
        pipe.hgetall(keys.progress)
        *_, state, results, progress = await pipe.execute()
        if not state:
            raise JobNotFound(f"no job {job!r} (finished jobs are kept for {self.job_ttl_s} s)")
        return parse_record(state, progress), {
            step: StepResult.model_validate_json(v) for step, v in results.items()
        }

    async def usage(self, job: str) -> dict[str, RoleUsage]:
        return parse_usage(await self.redis.hgetall(job_keys(job).usage))

    async def memory(self, job: str) -> dict[str, str]:
        result: dict[str, str] = await self.redis.hgetall(job_keys(job).memory)
        return result

    async def list_jobs(self, *, limit: int = 100) -> list[JobRecord]:
        ids = await self.redis.zrevrange(JOBS_INDEX, 0, limit - 1)
        records = []
        for job in ids:
            with contextlib.suppress(JobNotFound):  # expired since it was listed
                records.append(await self.get(job))
        return records

    async def set_worker_counts(self, counts: dict[str, int]) -> None:
        """The local stack's worker processes per ``crew/role`` (replaces the previous counts)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(WORKERS)
            if counts:
                pipe.hset(WORKERS, mapping=counts)
            await pipe.execute()

    async def set_stack_processes(self, processes: dict[str, StackProcess]) -> None:
        """The local stack's processes and their restarts (replaces the previous ones)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(PROCESSES)
            if processes:
                pipe.hset(PROCESSES, mapping={n: p.model_dump_json() for n, p in processes.items()})
            await pipe.execute()

    async def stack_processes(self) -> list[StackProcess]:
        """What ``set_stack_processes`` wrote last (empty where no local stack runs)."""
        raw: dict[str, str] = await self.redis.hgetall(PROCESSES)
        return [StackProcess.model_validate_json(raw[name]) for name in sorted(raw)]

    async def worker_counts(self) -> dict[str, int]:
        """Worker processes per ``crew/role`` that a local autoscaler runs (empty elsewhere)."""
        raw: dict[str, str] = await self.redis.hgetall(WORKERS)
        return {name: int(count) for name, count in sorted(raw.items())}

    async def forget_deadline(self, job: str) -> None:
        await self.redis.zrem(DEADLINES, job)

    async def overdue(self, now: float | None = None) -> list[str]:
        """Running jobs past their deadline, and ended jobs whose end is not announced yet."""
        ids: list[str] = await self.redis.zrangebyscore(DEADLINES, "-inf", now or time.time())
        return ids
