"""The coordinator: plans each job, dispatches every ready step, and follows the job to its end.

It keeps nothing in memory that a restart would lose. Job state lives in Redis
(``crews.jobs.store``); submissions and step events come from durable JetStream
consumers. Advancing a job is idempotent: it re-reads the job, dispatches the
ready steps that have no result under their stable message ids (JetStream
drops the repeats), and ends the job once. So a second coordinator can finish
a job the first one was running.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable

from a2a.types import StreamResponse, TaskState
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import trace
from pydantic import ValidationError

from bus import subjects
from bus.contracts.codec import decode
from bus.contracts.events import EVENT_KIND_HEADER
from bus.contracts.step import request_json, work_from_json
from bus.errors import RetryableError
from bus.jetstream.dead_letters import DeadLetter, ensure_advisory_capture, sweep_once
from bus.jetstream.dispatch import dispatch_step, step_msg_id
from bus.jetstream.streams import (
    ensure_jobs_consumer,
    ensure_role_consumer,
    ensure_streams,
    work_consumer_config,
)
from bus.jetstream.work_loop import Delivery, Handler, WorkLoop
from bus.outages import OUTAGES, OutageRetry
from bus.settings import BusSettings
from bus.tracing import extract
from crews.coordinator.manager import manager_turn
from crews.coordinator.settings import CrewsSettings
from crews.coordinator.step_roles import StepRoles
from crews.errors import CrewNotFound, CrewsError, JobNotFound, ManagerError, PlanError
from crews.jobs.control import JobSubmission, announce_end, finish_job
from crews.jobs.events import publish_job_status
from crews.jobs.records import JobRecord
from crews.jobs.store import JobStatus, RedisJobStore, StepResult
from crews.plan.planner import Plan, final_step_ids, plan, ready_steps
from crews.plan.step_work import plan_step_work
from crews.spec.models import CrewSpec

log = logging.getLogger(__name__)
tracer = trace.get_tracer("crews.coordinator")
EVENTS_CONSUMER = "coordinator-events"
JobRead = tuple[JobRecord, dict[str, StepResult]]
"""A job and its results, as one pass over the job reads them (``RedisJobStore.get_with_results``)."""
PLAN_RACES = 20
"""Passes over one job in a row that may lose the race to store its next plan version."""


class Coordinator:
    """Consumes job submissions and step events; every decision is re-derived from Redis."""

    def __init__(
        self, js: JetStreamContext, store: RedisJobStore, settings: CrewsSettings, bus: BusSettings
    ) -> None:
        self.js, self.store, self.settings, self.bus = js, store, settings, bus
        self._loops: list[WorkLoop] = []
        self._consumers: set[tuple[str, str]] = set()
        self._stopping = asyncio.Event()
        self._step_roles = StepRoles(store)
        self.refused_events: Counter[str] = Counter()
        """Step events ignored because their publisher is not the step's role, by publisher (``crew.role``)."""

    async def setup(self) -> None:
        await ensure_streams(self.js, self.bus)
        await ensure_jobs_consumer(self.js, self.bus)
        events = work_consumer_config(EVENTS_CONSUMER, subjects.ROLE_STATUSES_ALL, self.bus)
        events.deliver_policy = DeliverPolicy.NEW
        try:  # an existing durable keeps its position (one from before the role-events filter gets it)
            info = await self.js.consumer_info(subjects.EVENTS_STREAM, EVENTS_CONSUMER)
            if info.config.filter_subject != subjects.ROLE_STATUSES_ALL:
                info.config.filter_subject = subjects.ROLE_STATUSES_ALL
                await self.js.add_consumer(subjects.EVENTS_STREAM, info.config)
        except NotFoundError:
            await self.js.add_consumer(subjects.EVENTS_STREAM, events)
        await ensure_advisory_capture(
            self.js, [subjects.TASKS_STREAM, subjects.JOBS_STREAM], self.bus.stream_replicas
        )

    async def run(self, ready: asyncio.Event | None = None) -> None:
        await self.setup()
        self._loops = [
            WorkLoop(self.js, subjects.JOBS_STREAM, subjects.JOBS_CONSUMER,
                     self._through_outages(self.on_submission), on_dead=self.on_dead,
                     concurrency=self.settings.coordinator_submission_concurrency),
            WorkLoop(self.js, subjects.EVENTS_STREAM, EVENTS_CONSUMER, self._through_outages(self.on_event),
                     concurrency=self.settings.coordinator_event_concurrency),
        ]  # fmt: skip
        runners = [asyncio.create_task(loop.run()) for loop in self._loops]
        for loop in self._loops:
            await loop.wait_ready()
        if ready is not None:
            ready.set()
        ticker = asyncio.create_task(self._tick_forever())
        try:
            done, _ = await asyncio.wait({ticker, *runners}, return_when=asyncio.FIRST_EXCEPTION)
            if ticker in done and ticker.exception() is not None:
                self.stop()  # a timer that failed on a bug: stop, so a supervisor starts a new coordinator
                await asyncio.gather(*runners, return_exceptions=True)
                ticker.result()
            await asyncio.gather(*runners)
        finally:
            ticker.cancel()

    def stop(self) -> None:
        self._stopping.set()
        for loop in self._loops:
            loop.stop()

    def _through_outages(self, handler: Handler) -> Handler:
        """``handler``, tried again (with backoff) while Redis or NATS is down, instead of naked.

        Handling is idempotent, so a retry is safe; the work loop keeps the message
        alive meanwhile, so an outage longer than ``max_deliver`` retries does not
        dead-letter a step's completion.
        """

        async def patient(delivery: Delivery) -> None:
            delay = min(0.2, self.settings.tick_s)
            while True:
                try:
                    await handler(delivery)
                except OUTAGES as exc:
                    if self._stopping.is_set():
                        raise
                    log.warning(
                        "%s on %s: trying again in %.1f s", type(exc).__name__, delivery.subject, delay
                    )
                else:
                    return
                await asyncio.sleep(delay)  # backoff while a server is down, not a synchronization
                delay = min(delay * 2, self.settings.tick_max_backoff_s)

        return patient

    # --- inputs ----------------------------------------------------------------------------

    async def on_submission(self, delivery: Delivery) -> None:
        submission = JobSubmission.model_validate_json(delivery.data)
        record, spec = await self.store.get_with_crew(submission.job, submission.crew)
        if record.terminal:
            return
        if record.plan is None:
            try:
                if spec is None:
                    raise CrewNotFound(
                        f"no crew named {submission.crew!r}: register it first (crews run <file> or POST /crews)"
                    )
                job_plan = plan(spec, submission.inputs)
            except (CrewsError, ValidationError) as exc:
                await self._finish(submission.job, "failed", reason=f"cannot plan the job: {exc}")
                return
            await self._ensure_consumers(spec)
            traceparent = delivery.headers.get("traceparent", "")
            record, started = await self.store.start(submission.job, job_plan, spec, traceparent)
            if record.plan is not None:  # its steps' first events need no read of the plan
                self._step_roles.learn(submission.job, record.crew, record.plan)
            running = publish_job_status(self.js, submission.job, "running")
            if started:  # a plan stored just now: no step has a result, nothing to read again
                # sent before the first dispatch on this connection, so the stream keeps it first; one wait
                await asyncio.gather(running, self.advance(submission.job, known=(record, {})))
                return
            await running
        await self.advance(submission.job)

    async def _ensure_consumers(self, spec: CrewSpec) -> None:
        """Each role's consumer exists before its first step, so KEDA and the local autoscaler see the lag.

        Once per (crew, role) per process: each check is a JetStream API round trip.
        """
        for role in spec.all_roles():
            if (spec.name, role) not in self._consumers:
                await ensure_role_consumer(self.js, spec.name, role, self.bus)
                self._consumers.add((spec.name, role))

    async def on_event(self, delivery: Delivery) -> None:
        if delivery.headers.get(EVENT_KIND_HEADER, "step.status") != "step.status":
            return  # a role's A2A call's job-level events need nothing: not decoded
        event = decode(delivery.data, StreamResponse)
        if not event.HasField("status_update"):
            return
        update = event.status_update
        job = update.context_id
        if update.task_id == job:
            return  # a job-level status on a role's subject (a role's A2A call's cancel)
        step = update.task_id.removeprefix(f"{job}.")
        if not await self._from_assigned_role(delivery.subject, job, step):
            return
        state = update.status.state
        # WORKING comes only from older workers: today's write a step's start in `…:progress`
        if state == TaskState.TASK_STATE_WORKING:
            attempt = update.metadata.fields.get("attempt")
            started = int(attempt.number_value) if attempt is not None and attempt.number_value >= 1 else None
            await self.store.set_step_state(job, step, "working", seq=delivery.stream_seq, attempt=started)
        elif state == TaskState.TASK_STATE_INPUT_REQUIRED:
            await self.store.set_step_state(
                job, step, "input-required", seq=delivery.stream_seq
            )  # waits for approval
        elif state == TaskState.TASK_STATE_COMPLETED:
            await self.advance(job, completing=(step, delivery.stream_seq))  # the state set in its read
        elif state == TaskState.TASK_STATE_FAILED:
            await self.store.set_step_state(job, step, "failed", seq=delivery.stream_seq)
            reason = " ".join(p.text for p in update.status.message.parts if p.text) or "no reason given"
            await self._finish(job, "failed", reason=f"step '{step}' failed: {reason}")

    async def _from_assigned_role(self, subject: str, job: str, step: str) -> bool:
        """Whether a step event's subject names the step's assigned role (the consumer takes role statuses only)."""
        source = subjects.event_source(subject)
        if source is not None and source.job == job and source.role is not None and source.crew is not None:
            allowed = await self._step_roles.allows(job, step, source.crew, source.role)
            if allowed is None:
                log.debug("event of %s on %s: no job with a plan (a call to a role's agent)", job, subject)
                return False
            if allowed:
                return True
        publisher = f"{source.crew}.{source.role}" if source is not None and source.role else "(other)"
        self.refused_events[publisher] += 1
        log.warning(
            "ignored a status of step %s of job %s published on %s: not the step's assigned role (%d so far)",
            step, job, subject, self.refused_events[publisher],
        )  # fmt: skip
        return False

    async def on_dead(self, dead: DeadLetter) -> None:
        """A submission or a step that could not be handled: fail its job with the reason."""
        if dead.stream == subjects.JOBS_STREAM:
            job = JobSubmission.model_validate_json(dead.payload).job
            await self._finish(job, "failed", reason=f"the job could not be started: {dead.reason}")
            return
        work = work_from_json(dead.payload)
        await self.store.set_step_state(work.job, work.step, "failed")
        reason = f"step '{work.step}' ({work.role}) gave up after {dead.deliveries} deliveries: {dead.reason}"
        await self._finish(work.job, "failed", reason=reason)

    # --- the job's progress ----------------------------------------------------------------

    async def advance(
        self,
        job: str,
        *,
        completing: tuple[str, int] | None = None,
        known: JobRead | None = None,
    ) -> None:
        """Dispatch what is ready, or end the job when every step has a result.

        ``completing``: ``(step, seq)`` of the COMPLETED event that led here, stored with the first read.
        ``known``: the job and its results as just read or written (the first pass reads nothing).
        """
        for _ in range(PLAN_RACES):
            if await self._advance_once(job, completing, known):
                return
            completing, known = None, None
        raise RetryableError(f"job {job}: other coordinators kept changing its plan; handling it again")

    async def _advance_once(
        self,
        job: str,
        completing: tuple[str, int] | None = None,
        known: JobRead | None = None,
    ) -> bool:
        """One pass over the job; False when another coordinator stored a newer plan first."""
        record, results = known or await self.store.get_with_results(job, completing=completing)
        if record.terminal or record.plan is None or record.crew_spec is None:
            return True
        spec, current = record.crew_spec, record.plan
        failed = failed_eval(spec, results)
        if failed:
            await self._finish(job, "failed", reason=failed, owner=record.owner)
            return True
        try:
            managed = await manager_turn(self.js, self.store, job, spec, current, results)
        except (PlanError, ManagerError) as exc:
            await self._finish(job, "failed", reason=f"the manager's plan is unusable: {exc}")
            return True
        if managed is None:
            return False
        current = managed
        if all(step.id in results for step in current.steps):
            await self._finish(job, "completed", output=final_output(current, results), owner=record.owner)
            return True
        sends: list[Awaitable[object]] = []
        for step in ready_steps(current, set(results)):
            work = plan_step_work(job, spec, current, step, results)
            msg_id = step_msg_id(job, step.id, step.added_in)  # a later plan version does not send it again
            sends.append(dispatch_step(self.js, spec.name, work.role, request_json(work), msg_id))
            if record.steps.get(step.id, "pending") == "pending":  # shown to users; a failed send is sent
                sends.append(self.store.set_step_state(job, step.id, "dispatched"))  # again on redelivery
        await asyncio.gather(*sends)  # the steps go out in plan order; one wait for all
        return True

    async def _finish(
        self, job: str, status: JobStatus, *, reason: str = "", output: str = "", owner: str | None = None
    ) -> None:
        if await finish_job(self.js, self.store, job, status, reason=reason, output=output, owner=owner):
            log.info("job %s %s %s", job, status, reason)

    # --- time ------------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        """``tick`` every ``tick_s`` until stopped; through a Redis or NATS outage, log and back off."""
        tick_s = self.settings.tick_s
        back = f"deadlines and dead letters are checked every {tick_s:g} s"
        retry = OutageRetry(log, "tick", tick_s, max_s=self.settings.tick_max_backoff_s, back=back)
        while not await retry.pause(self._stopping):
            with retry.round():
                await self.tick()

    async def tick(self) -> None:
        """Fail jobs past their deadline, announce ends not announced yet; turn lost last deliveries
        into dead letters."""
        for job in await self.store.overdue():
            try:
                record = await self.store.get(job)
            except JobNotFound:  # expired long ago: nothing left to time out
                await self.store.forget_deadline(job)
                continue
            if record.terminal:  # ended, but its end was not published (NATS was down, or a crash)
                await announce_end(self.js, self.store, record)
                continue
            timeout_s = record.timeout_s or self.settings.job_timeout_s
            with tracer.start_as_current_span(
                "job timeout", context=extract({"traceparent": record.traceparent})
            ):
                await self._finish(job, "failed", reason=f"timed out after {timeout_s:g} s")
        await sweep_once(self.js, self.on_dead)


def final_output(current: Plan, results: dict[str, StepResult]) -> str:
    """The job's output: the last step's, or every final step's under its id (fan-in crews)."""
    finals = final_step_ids(current)
    if len(finals) == 1:
        return results[finals[0]].output
    return "\n\n".join(f"## {step}\n{results[step].output}" for step in finals)


def failed_eval(spec: CrewSpec, results: dict[str, StepResult]) -> str:
    """Why the job fails on its evals (``eval_policy: fail``), or "" when it does not."""
    if spec.eval_policy != "fail":
        return ""
    for step, result in sorted(results.items()):
        for score in result.failed_evals:
            return f"step '{step}' failed its eval '{score.name}' (score {score.score:g}): {score.detail}"
    return ""
