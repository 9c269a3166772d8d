"""The role worker: turns each delivered step into events, a write-once result and usage.

For one delivery of a step (``bus.jetstream.work_loop.WorkLoop`` acks when ``handle`` returns):

1. a result is already recorded (a redelivery after a crash, or a race) →
   publish its artifact and ``COMPLETED`` again (JetStream drops repeats), ack;
2. the job is ``cancelled`` or ``failed`` → ``CANCELED``, ack;
3. ``WORKING`` (attempt n), run the engine (``max_execution_time_s`` bounds
   the run; the job stopping interrupts it, see ``roles.step.cancel``, → ``CANCELED``),
   record the result with ``HSETNX``, publish artifact and ``COMPLETED`` from the
   stored result, remove the step's checkpoint, ack. A native step resumes from
   its checkpoint (``roles.step.checkpoint``): a redelivery replays the
   answers and tool results an earlier delivery recorded;
4. a step that cannot succeed (``StepFailed``, ``BudgetExceeded``,
   ``BadLLMResponse``) → ``FAILED`` with the reason, ack; the LLM pool being
   unavailable → ``RetryableError`` (nak with delay); after the last delivery
   ``on_dead`` publishes ``FAILED`` "gave up after N deliveries: …".

Each step runs in an ``invoke_agent <role>`` span, child of the consumer span
that carries the dispatcher's trace; tool and LLM spans nest under it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from google.protobuf.json_format import ParseError
from nats.aio.client import Client as NATS
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from pydantic import ValidationError

from bus import subjects
from bus.contracts.result import TokenUsage
from bus.contracts.states import STOPPED
from bus.contracts.step import StepWork, work_from_json
from bus.errors import RetryableError
from bus.jetstream.dead_letters import DeadLetter, record_dead_letter
from bus.jetstream.work_loop import Delivery, dead_letter_of
from inference.client import prompt_estimate
from inference.errors import LLMUnavailable
from roles.engines import prompts
from roles.engines.base import StepOutput, StepRun, engine_for, engine_imported
from roles.errors import CANNOT_SUCCEED, StepCancelled, StepFailed
from roles.settings import RoleSettings
from roles.step.approvals import ApprovalGate
from roles.step.cancel import CancelWatch
from roles.step.checkpoint import StepCheckpoint
from roles.step.evals import score_step
from roles.step.events import StepEvents
from roles.step.memory import SharedMemory
from roles.step.results import ResultStore, StepResult
from roles.step.signals import JobSignals
from roles.step.start import StepStart, read_start
from roles.step.usage import FirstCall, RedisUsage
from roles.tools.base import ToolContext
from roles.tools.catalog import ToolCatalog
from roles.tools.registry import ToolRegistry, default_registry

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from inference.client import LLMPool
    from roles.tools.mcp.provider import McpTools

log = logging.getLogger(__name__)
tracer = trace.get_tracer("crews.roles")


class RoleWorker:
    """Runs the steps of one role of one crew; ``handle`` and ``on_dead`` plug into a ``WorkLoop``."""

    def __init__(
        self,
        nc: NATS,
        client: aioredis.Redis,
        llm: LLMPool,
        settings: RoleSettings,
        *,
        crew: str,
        role: str,
        tools: ToolRegistry | None = None,
        mcp: McpTools | None = None,
    ) -> None:
        self.nc, self.js, self.redis = nc, nc.jetstream(), client
        self.llm, self.settings = llm, settings
        self.crew, self.role = crew, role
        self.consumer = subjects.role_consumer(crew, role)
        self.tools = ToolCatalog(tools or default_registry(), mcp)
        self.agents = settings.outside_agents()
        self.signals = JobSignals(nc)  # subscribed with the first step, for every step after it

    async def handle(self, delivery: Delivery) -> None:
        work = await self._decode(delivery)
        if work is None:
            return
        with tracer.start_as_current_span(f"invoke_agent {work.role}") as span:
            _set_step_attributes(span, work, delivery, self.settings.worker_id)
            outcome = await self._handle(work, delivery, span)
            span.set_attribute("crews.step.outcome", outcome)
            log.info("step %s of job %s (%s): %s", work.step, work.job, work.role, outcome)

    async def on_dead(self, dead: DeadLetter) -> None:
        """The step's last delivery failed: ``FAILED`` with why it was given up."""
        try:
            work = work_from_json(dead.payload)
        except (ParseError, ValueError, ValidationError) as exc:
            log.warning("dead letter %s seq %d is not a step request: %s", dead.subject, dead.stream_seq, exc)
            return
        reason = f"gave up after {dead.deliveries} deliveries: {dead.reason}"
        await StepEvents(self.js, work, self.settings.worker_id).failed(reason, attempt=dead.deliveries)

    async def _handle(self, work: StepWork, delivery: Delivery, span: Span) -> str:
        watch = CancelWatch(self.nc, self.redis, work, signals=self.signals)
        async with watch.listening():  # before the start is read: no stop falls between the two
            return await self._handle_listening(work, delivery, span, watch)

    async def _handle_listening(
        self, work: StepWork, delivery: Delivery, span: Span, watch: CancelWatch
    ) -> str:
        events = StepEvents(self.js, work, self.settings.worker_id)
        results = ResultStore.of_step(self.redis, work)
        budget = self._budget(work, hold=True)  # the last call's usage goes with the result
        try:
            start = await read_start(
                self.redis, work, delivery.attempt, budget=budget, first_call=self._first_call(work)
            )
            if start.stored is not None:
                await events.result(start.stored)
                if work.keys.turns:  # a run that crashed between its result and removing its checkpoint
                    await start.checkpoint.clear()
                return "replayed"
            if start.status in STOPPED:
                await events.canceled(f"job {work.job} is {start.status}: step {work.step!r} did not start")
                return "canceled"
            watch.saw(start.status)
            events.start_working(delivery.attempt)  # its ack is awaited before the step's next event
            try:
                return await self._run_and_record(work, delivery, span, watch, start, events, results, budget)
            finally:
                await events.settled()
        finally:  # whatever ended the step (a retry, an error): its calls' usage, the unused reservation
            await budget.flush()

    async def _run_and_record(
        self,
        work: StepWork,
        delivery: Delivery,
        span: Span,
        watch: CancelWatch,
        start: StepStart,
        events: StepEvents,
        results: ResultStore,
        budget: RedisUsage,
    ) -> str:
        started = time.monotonic()
        checkpoint = start.checkpoint
        if checkpoint.resumed_turns or checkpoint.resumed_tools:
            log.info(
                "step %s of job %s resumes after turn %d (%d tool results recorded), delivery %d",
                work.step, work.job, checkpoint.resumed_turns, checkpoint.resumed_tools, delivery.attempt,
            )  # fmt: skip
            span.set_attribute("crews.step.resumed_turns", checkpoint.resumed_turns)
        try:
            output = await self.run_step(work, watch, checkpoint, start.memory, events=events, budget=budget)
            # the job stopping while the answer came: the result's write reads the status first
            return await self._record(
                work, output, results, events, span, time.monotonic() - started, delivery, checkpoint, budget
            )
        except StepCancelled as exc:
            await budget.flush()  # the usage is in the job's totals before its end is told
            await events.canceled(f"{exc}: step {work.step!r} stopped")
            return "canceled"
        except CANNOT_SUCCEED as exc:
            await budget.flush()
            reason = exc.reason if isinstance(exc, StepFailed) else str(exc)
            _set_error(span, exc, reason)
            await events.failed(reason, attempt=delivery.attempt)
            return "failed"
        except LLMUnavailable as exc:
            _set_error(span, exc, str(exc))
            raise RetryableError(str(exc), exc.retry_after) from exc

    async def _record(
        self,
        work: StepWork,
        output: StepOutput,
        results: ResultStore,
        events: StepEvents,
        span: Span,
        duration_s: float,
        delivery: Delivery,
        checkpoint: StepCheckpoint,
        budget: RedisUsage,
    ) -> str:
        """Record the result once (removing the step's checkpoint), then publish the stored one (ours, or the first worker's).

        ``StepCancelled`` when the job has stopped: a stopped job gets no new result."""
        if work.evals:  # a judge is an LLM call: the held answer is recorded before it is paid for
            await checkpoint.flush()
        evals = await score_step(work, output.output, output.data, self.llm, budget)
        result = StepResult(
            output=output.output,
            data=output.data,
            role=work.role,
            worker=self.settings.worker_id,
            usage=TokenUsage.model_validate(output.usage.model_dump()),
            duration_s=round(duration_s, 4),
            evals=evals,
            attempt=delivery.attempt,
            resumed_turns=output.resumed_turns,
        )
        for score in evals:
            span.set_attribute(f"crews.eval.{score.name}.score", score.score)
        recorded, ours = await results.record(work.step, result, clearing=checkpoint, usage=budget)
        span.set_attribute("gen_ai.usage.input_tokens", output.usage.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", output.usage.output_tokens)
        span.set_attribute("crews.cost_usd", output.usage.cost_usd)
        await events.result(recorded)
        return "completed" if ours else "replayed"

    def _budget(self, work: StepWork, *, hold: bool = False) -> RedisUsage:
        return RedisUsage(
            self.redis,
            work.keys.usage,
            limit=token_budget(work, self.settings),
            cost_limit=work.max_cost_usd_budget,
            hold=hold,
        )

    def _first_call(self, work: StepWork) -> FirstCall:
        """What the step's first LLM call reserves but the shared memory's share: its ``max_tokens`` and its
        prompt as ``roles.engines.prompts`` writes it (an engine that asks for more reserves the rest)."""
        prompt = [
            {"content": prompts.system_prompt(work.prompt)},
            {"content": prompts.task_prompt(work, {}) + prompts.MEMORY_BLOCK + prompts.MEMORY_CUT},
        ]
        max_tokens = llm_max_tokens(work, self.settings) or self.llm.settings.llm_default_max_tokens
        # + 1: the prompt's estimate and the memory's are rounded down apart
        return FirstCall(max_tokens + prompt_estimate(prompt) + 1, self.settings.memory_prompt_max_chars)

    async def run_step(
        self,
        work: StepWork,
        watch: CancelWatch,
        checkpoint: StepCheckpoint | None = None,
        memory_at_start: dict[str, str] | None = None,
        *,
        events: StepEvents | None = None,
        budget: RedisUsage | None = None,
    ) -> StepOutput:
        """Run ``work`` on its engine; ``memory_at_start``: the shared memory, if read with the start;
        ``events``: the step's events publisher (an approval's ask follows its ``WORKING``);
        ``budget``: the job's budget for the step's calls (default: one that writes each call's usage)."""
        work = bounded(work, self.settings)
        if engine_imported(work.engine):
            engine = engine_for(work.engine)
        else:  # a framework's import takes seconds: not on the event loop
            engine = await asyncio.to_thread(engine_for, work.engine)
        memory = SharedMemory(
            self.redis, work.keys.memory, max_chars=self.settings.memory_max_chars, at_start=memory_at_start
        )
        context = ToolContext(job=work.job, step=work.step, role=work.role, memory=memory)
        run = StepRun(
            work=work,
            llm=self.llm,
            tools=await self.tools.for_step(
                work,
                context,
                max_output_chars=self.settings.tool_output_max_chars,
                gate=ApprovalGate(
                    self.nc, self.redis, work, events or StepEvents(self.js, work, self.settings.worker_id)
                ),
            ),
            memory=memory,
            budget=budget or self._budget(work),
            check_cancelled=watch.check,
            memory_prompt_max_chars=self.settings.memory_prompt_max_chars,
            max_tool_calls_per_turn=self.settings.max_tool_calls_per_turn,
            nc=self.nc,
            checkpoint=checkpoint,
            agents=self.agents,
        )
        deadline = asyncio.timeout(work.max_execution_time_s)
        try:
            async with deadline:
                return await watch.run(lambda: engine.run(run))
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            raise StepFailed(
                f"step {work.step!r} ({work.role}) ran longer than its max_execution_time of "
                f"{work.max_execution_time_s:g} s: raise the role's max_execution_time or shorten the task"
            ) from exc

    async def _decode(self, delivery: Delivery) -> StepWork | None:
        """The step in ``delivery``; a message that is not one is dead-lettered at once (it cannot improve)."""
        try:
            return work_from_json(delivery.data)
        except (ParseError, ValueError, ValidationError) as exc:
            reason = f"not a step request for {self.crew}/{self.role}: {exc}"
            dead = dead_letter_of(delivery, subjects.TASKS_STREAM, self.consumer, reason)
            await record_dead_letter(self.js, dead)
            log.warning("dead-lettered %s seq %d: %s", delivery.subject, delivery.stream_seq, reason)
            return None


def bounded(work: StepWork, settings: RoleSettings) -> StepWork:
    """``work`` within the operator's ceilings, with the default token budget when the crew sets none.

    The API refuses crew files over the ceilings; this holds for crews stored before a ceiling was
    lowered, and for steps that reach the worker another way (a role's A2A agent).
    """
    limits = settings.limits
    budget = token_budget(work, settings)
    max_tokens = llm_max_tokens(work, settings)
    execution = min(work.max_execution_time_s or limits.execution_time_s, limits.execution_time_s)
    return work.model_copy(
        update={
            "max_iter": min(work.max_iter, limits.iter),
            "max_tokens_budget": budget,
            "max_execution_time_s": execution,
            "llm": work.llm.model_copy(update={"max_tokens": max_tokens}),
        }
    )


def token_budget(work: StepWork, settings: RoleSettings) -> int:
    """The job's token budget: the crew's ``budgets.max_tokens``, else the operator's default; at most the ceiling."""
    return min(work.max_tokens_budget or settings.default_job_tokens, settings.limits.job_tokens)


def llm_max_tokens(work: StepWork, settings: RoleSettings) -> int | None:
    """The step's ``max_tokens`` for a call, at most the ceiling; None: the LLM pool's default."""
    return min(work.llm.max_tokens, settings.limits.llm_tokens) if work.llm.max_tokens else None


def _set_error(span: Span, exc: Exception, reason: str) -> None:
    span.set_status(Status(StatusCode.ERROR, reason))
    span.set_attribute("error.type", type(exc).__name__)


def _set_step_attributes(span: Span, work: StepWork, delivery: Delivery, worker: str) -> None:
    span.set_attribute("gen_ai.operation.name", "invoke_agent")
    span.set_attribute("gen_ai.agent.name", work.role)
    span.set_attribute("gen_ai.agent.id", f"{work.crew}/{work.role}")
    span.set_attribute("crews.crew", work.crew)
    span.set_attribute("crews.job.id", work.job)
    span.set_attribute("crews.step", work.step)
    span.set_attribute("crews.task.id", work.task_id)
    span.set_attribute("crews.engine", work.engine)
    span.set_attribute("crews.attempt", delivery.attempt)
    span.set_attribute("crews.worker", worker)
