"""Every role is an A2A agent on NATS: ``crews.a2a.<crew>.<role>``, served by each ``crews role`` process.

A message to the role is one step of that role, run at once by the process
that took the request (the replicas share the subject's queue group), with the
same engine, tools and LLM pool as the role's steps in a job:

- the role (persona, engine, tools, LLM parameters, limits) is read from the
  crew's definition in Redis (``crews:crew:<crew>``) on every call; ``{input}``
  placeholders in its texts are filled from the message's data part (a JSON
  object) or the crew's input defaults;
- the task is the message's text; the answer is one artifact
  (``<job>.a2a.output``, text, or JSON data for a JSON answer) and the task
  completes; a step that cannot succeed fails the task with the reason;
- the step runs under a job of its own, ``a2a-<task id>``: its shared memory,
  usage and result live under that job's Redis keys for a day, and the task
  itself in Redis (``roles.a2a.tasks``), so the process holds nothing between
  calls and any replica answers ``GetTask`` / ``ListTasks``;
- ``CancelTask`` marks that job ``cancelled`` and announces it on its events,
  which stops the step wherever it runs (``roles.step.cancel``).

Calls do not go through the role's queue: they are not retried or
dead-lettered, and they count against ``CREWS_WORKER_CONCURRENCY`` of the
process only through the agent's own limit (the same number of calls at once).
Who may call: the NATS server decides first (the chart's accounts let only
the roles that name this one as their outside agent publish on its subject);
with ``CREWS_ROLE_A2A_KEYS`` set, every call must also carry
``Authorization: Bearer <one of them>`` (compared in constant time), and a call
without one gets the binding's unauthenticated error (docs/architecture.md,
"Who may call whom").
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentSkill,
    Part,
    Task,
    TaskState,
    TaskStatus,
)
from google.protobuf import json_format
from nats.aio.client import Client as NATS
from pydantic import SecretStr, ValidationError

from bus import subjects
from bus.a2a_nats.client import nats_agent_interface
from bus.a2a_nats.server import Authenticator, NatsA2AServer, api_key_authenticator
from bus.contracts.events import status_update
from bus.contracts.keys import crew_key
from bus.contracts.step import RolePrompt, StepKeys, StepWork
from bus.errors import RetryableError
from bus.jetstream.events import publish_event
from crews.spec.models import PLACEHOLDER, CrewSpec, RoleSpec
from crews.spec.step_work import build_step_work
from inference.errors import LLMUnavailable
from roles.a2a.tasks import RedisTaskStore
from roles.engines.base import StepOutput
from roles.errors import CANNOT_SUCCEED, StepCancelled, StepFailed
from roles.step.cancel import CancelWatch

GIVES_UP: tuple[type[Exception], ...] = (*CANNOT_SUCCEED, LLMUnavailable, RetryableError, ValueError)
"""Errors that end a direct call as a failed task (a caller can retry; nothing is redelivered)."""

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from roles.process import DeferredWorker

log = logging.getLogger(__name__)

STEP = "a2a"
KEEP_S = 24 * 3600
EXPECTED_OUTPUT = "A complete answer to the request."


def agent_name(crew: str, role: str) -> str:
    return f"{crew}.{role}"


def job_of(task_id: str) -> str:
    return f"a2a-{task_id}"


def step_keys(job: str) -> StepKeys:
    """The keys of a call's own job, shaped as every job's (docs/architecture.md, "Redis keys")."""
    return StepKeys.for_job(job)


class RoleAgentExecutor(AgentExecutor):
    """Runs one step of ``crew/role`` per message, with the process's worker runtime."""

    def __init__(self, nc: NATS, deferred: DeferredWorker, crew: str, role: str) -> None:
        self._nc, self._deferred = nc, deferred
        self.crew, self.role = crew, role

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id and context.context_id
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        submitted = TaskStatus(state=TaskState.TASK_STATE_SUBMITTED)
        await event_queue.enqueue_event(
            Task(id=context.task_id, context_id=context.context_id, status=submitted)
        )
        worker = await self._deferred.worker()
        job = job_of(context.task_id)
        try:
            work = await self._work(worker.redis, job, context)
            await worker.redis.hset(
                work.keys.state, mapping={"id": job, "crew": self.crew, "status": "running"}
            )
            await updater.start_work()
            announced_on = subjects.role_events_subject(job, self.crew, self.role)  # by stop_call
            watch = CancelWatch(self._nc, worker.redis, work, announced_on=announced_on)
            output = await worker.run_step(work, watch)
        except StepCancelled:
            await updater.cancel()
            return
        except GIVES_UP as exc:
            reason = exc.reason if isinstance(exc, StepFailed) else str(exc)
            await updater.failed(updater.new_agent_message([Part(text=reason)]))
            return
        finally:
            await _expire(worker.redis, step_keys(job))
        await updater.add_artifact([_answer(output)], artifact_id=f"{job}.{STEP}.output", name=self.role)
        usage = {"input_tokens": output.usage.input_tokens, "output_tokens": output.usage.output_tokens}
        await updater.update_status(TaskState.TASK_STATE_COMPLETED, metadata={"usage": usage})

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id
        worker = await self._deferred.worker()
        await stop_call(self._nc, worker.redis, self.crew, self.role, context.task_id)

    async def _work(self, client: aioredis.Redis, job: str, context: RequestContext) -> StepWork:
        raw: str | None = await client.get(crew_key(self.crew))
        if raw is None:
            raise StepFailed(f"crew '{self.crew}' is not registered: register it before calling its roles")
        try:
            spec = CrewSpec.model_validate(json.loads(raw))
            role = spec.all_roles()[self.role]
        except (ValidationError, KeyError) as exc:
            raise StepFailed(f"crew '{self.crew}' has no usable role '{self.role}': {exc}") from exc
        values = _values(spec, context)
        text = context.get_user_input().strip()
        if not text:
            raise StepFailed("the message has no text: send the task as a text part")
        return build_step_work(
            spec,
            self.role,
            job=job,
            step=STEP,
            task=STEP,
            prompt=RolePrompt(
                role=_fill(role.role, values),
                goal=_fill(role.goal, values),
                backstory=_fill(role.backstory, values),
            ),
            description=text,
            expected_output=EXPECTED_OUTPUT,
        )


def _values(spec: CrewSpec, context: RequestContext) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: value.default for name, value in spec.inputs.items() if not value.required
    }
    for part in context.message.parts if context.message else []:
        if part.WhichOneof("content") == "data":
            data = json_format.MessageToDict(part.data)
            if isinstance(data, dict):
                values.update(data)
    return values


def _fill(text: str, values: dict[str, Any]) -> str:
    return PLACEHOLDER.sub(lambda found: str(values.get(found.group(1), found.group(0))), text).strip()


def _answer(output: StepOutput) -> Part:
    if output.data is None:
        return Part(text=output.output, media_type="text/plain")
    part = Part(media_type="application/json")
    json_format.ParseDict(output.data, part.data)
    return part


async def _expire(client: aioredis.Redis, keys: StepKeys) -> None:
    for key in (keys.state, keys.results, keys.memory, keys.usage):
        await client.expire(key, KEEP_S)


async def stop_call(nc: NATS, client: aioredis.Redis, crew: str, role: str, task_id: str) -> None:
    """Stop the step of call ``task_id`` wherever it runs: its job ``cancelled``, announced on the role's events.

    The role may publish only on its own events subject; the step's ``CancelWatch`` listens there.
    """
    job = job_of(task_id)
    await client.hset(step_keys(job).state, "status", "canceled")
    await client.expire(step_keys(job).state, KEEP_S)
    event = status_update(job, job, TaskState.TASK_STATE_CANCELED, "canceled by the caller")
    await publish_event(nc.jetstream(), job, event, f"{job}:job:canceled", role=(crew, role))


def role_card(crew: str, key: str, role: RoleSpec | None, nats_url: str) -> AgentCard:
    name = agent_name(crew, key)
    description = f"{role.role}: {role.goal}" if role else f"The role '{key}' of the crew '{crew}'."
    card = AgentCard(
        name=name,
        description=description,
        version="1.0.0",
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/plain", "application/json"],
        skills=[AgentSkill(id=key, name=key, description=description, tags=["crew-role", crew])],
    )
    card.supported_interfaces.append(nats_agent_interface(name, nats_url))
    return card


async def run_role_agent(
    nc: NATS,
    deferred: DeferredWorker,
    crew: str,
    role: str,
    nats_url: str,
    *,
    ready: asyncio.Event,
    stop: asyncio.Event,
    serving: asyncio.Event | None = None,
) -> None:
    """Serve the role on ``crews.a2a.<crew>.<role>`` from the worker's ready line until ``stop``.

    ``serving`` is set once the server's subscription is in place.
    """
    await ready.wait()  # after the ready line: nothing of this loads before it
    worker = await deferred.worker()

    async def on_cancel(task_id: str) -> None:
        await stop_call(nc, worker.redis, crew, role, task_id)

    name = agent_name(crew, role)
    store = RedisTaskStore(worker.redis, name, ttl_s=KEEP_S, on_cancel=on_cancel)
    executor = RoleAgentExecutor(nc, deferred, crew, role)
    card = role_card(crew, role, None, nats_url)
    limit = worker.settings.worker_concurrency
    authenticate = caller_keys(worker.settings.role_a2a_keys)
    server = NatsA2AServer.for_executor(
        nc, name, executor, card, task_store=store, max_in_flight=limit, authenticate=authenticate
    )
    async with server:
        await nc.flush()  # the server has the subscription: a call from now on is served
        if serving is not None:
            serving.set()
        who = (
            "callers with a key of CREWS_ROLE_A2A_KEYS" if authenticate else "callers NATS lets publish there"
        )
        log.info("role %s/%s serves A2A on %s to %s", crew, role, subjects.a2a_subject(name), who)
        await stop.wait()


def caller_keys(keys: tuple[SecretStr, ...]) -> Authenticator | None:
    """The check of ``CREWS_ROLE_A2A_KEYS`` (``None``: no keys, NATS permissions alone decide)."""
    if not keys:
        return None
    return api_key_authenticator({key.get_secret_value(): f"key-{i}" for i, key in enumerate(keys, 1)})
