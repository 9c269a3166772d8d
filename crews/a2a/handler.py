"""Every crew as an A2A agent: an a2a-sdk ``RequestHandler`` over the job store and the job's events.

Nothing lives in this process: a task is a job (``crews.jobs.store``), its events are
the job's events in JetStream (``bus.contracts.events.follow_events``), so any API
replica answers any call, and a stream cut by a restart is taken up again with
``SubscribeToTask``, which replays the job's events from its first one.

| A2A | crews |
|---|---|
| ``SendMessage`` | checked (``crews.a2a.strict``); the message's parts → inputs (``crews.a2a.inputs``), ``submit_job`` with the idempotency key ``a2a:<crew>:<messageId>`` (a retried message starts no second job); with a ``taskId``: the answer to what the job asks (``crews.a2a.turns``); blocking: follow the job's events to its end or its next question, then answer the task; ``returnImmediately``: answer the task at once |
| ``SendStreamingMessage`` | the same, then the task and the job's events until it ends or asks (``crews.a2a.updates``) |
| ``SubscribeToTask`` | the task, then every event of the job from the first until it ends or asks (``UnsupportedOperationError`` once the job has ended) |
| ``GetTask`` / ``ListTasks`` | the job(s) of this crew as tasks (``crews.a2a.tasks``; ``INPUT_REQUIRED`` while a tool call waits) |
| ``CancelTask`` | ``cancel_job`` (``TaskNotCancelableError`` once ended) |
| ``*TaskPushNotificationConfig`` | the task's webhooks (``crews.a2a.push``) |

The crew comes from the call context (``state["crew"]``: the URL path over
HTTP, the subject over NATS), the caller from its user (``PrincipalUser``, set
by the edge that checked its key). Tasks are the caller's jobs: a principal
sees, follows and cancels only its own (``admin`` sees all); SendMessage needs
``jobs:submit``, CancelTask ``jobs:submit``, the reads ``jobs:read``; message ids
are idempotency keys in the caller's own namespace.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from a2a.auth.user import User
from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.request_handlers import RequestHandler
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import (
    AgentCard,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    SendMessageRequest,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
)
from a2a.utils.errors import (
    ExtendedAgentCardNotConfiguredError,
    InvalidParamsError,
    InvalidRequestError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from a2a.utils.task import apply_history_length, validate_history_length, validate_page_size
from nats.js import JetStreamContext
from pydantic import ValidationError

from bus.jetstream.events import follow_events, last_event_seq
from crews.a2a.inputs import message_inputs
from crews.a2a.push.configs import PushConfigs
from crews.a2a.settings import A2ASettings
from crews.a2a.strict import check_message
from crews.a2a.tasks import A2ARecords, job_task
from crews.a2a.turns import answer_task, asking_status, pending_approvals
from crews.a2a.updates import Forward, interrupted, task_update
from crews.coordinator.settings import CrewsSettings
from crews.errors import CrewNotFound, JobError, JobNotFound
from crews.jobs.control import cancel_job, submit_job
from crews.jobs.events import is_job_end
from crews.jobs.owners import LOCAL, Principal, Scope
from crews.jobs.store import JobRecord, RedisJobStore
from crews.spec.models import CrewSpec

CREW_STATE = "crew"
"""``ServerCallContext.state`` key of the crew a call is for (HTTP: from the URL path)."""
CREW_HEADER = "Crews-Crew"
"""Over NATS, the crew named by the request's subject, set by the server on every request."""


@dataclass(frozen=True)
class CrewAgentDeps:
    """What the handler needs of the process that serves it (the API opens these)."""

    js: JetStreamContext
    store: RedisJobStore
    crews: CrewsSettings
    scan_jobs: int
    push: A2ASettings
    open_access: bool = False
    """No API keys (loopback only): an unauthenticated caller is the local user."""


class PrincipalUser(User):
    """An A2A caller identified by its API key: the principal and its scopes."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return self.principal.name


def caller_of(context: ServerCallContext, deps: CrewAgentDeps, scope: Scope) -> Principal:
    """The principal of a call, if it may use ``scope``; ``InvalidRequestError`` otherwise."""
    user = context.user
    if isinstance(user, PrincipalUser):
        principal = user.principal
    elif deps.open_access:
        principal = LOCAL
    else:
        raise InvalidRequestError(message="this call carries no API key: send 'Authorization: Bearer <key>'")
    if not principal.can(scope):
        raise InvalidRequestError(
            message=f"the API key of {principal.name!r} does not have the scope {scope!r}: ask for a key with it"
        )
    return principal


class CrewRequestHandler(RequestHandler):
    """Answers A2A calls to any registered crew from the job store and JetStream."""

    def __init__(self, deps: Callable[[], CrewAgentDeps]) -> None:
        self._deps = deps

    @property
    def deps(self) -> CrewAgentDeps:
        return self._deps()

    def _ttl_s(self) -> int:
        return self.deps.crews.job_ttl_s + int(self.deps.crews.job_timeout_s)

    def _records(self) -> A2ARecords:
        return A2ARecords(self.deps.store.redis, self._ttl_s())

    def _push(self) -> PushConfigs:
        deps = self.deps
        return PushConfigs(deps.store.redis, deps.push, self._ttl_s())

    # --- messages --------------------------------------------------------------------------

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Task | Message:
        job, context_id, after = await self._accept(params, context)
        if not params.configuration.return_immediately:
            async for _ in self._follow(job, context_id, after):
                pass  # to the end, or to the next question (input-required)
        return apply_history_length(await self._task(job), params.configuration)

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        job, context_id, after = await self._accept(params, context)
        task = await self._task(job)
        yield task
        if interrupted(task):  # it asks already: the replayed question would ask it a second time
            return
        async for event in self._follow(job, context_id, after, start=task):
            yield event

    async def _accept(self, params: SendMessageRequest, context: ServerCallContext) -> tuple[str, str, int]:
        """Start a job, or answer the one the message names; returns the job, its context id and where to follow from."""
        message = check_message(params)
        validate_history_length(params.configuration)
        crew = crew_of(context)
        if message.task_id:
            return await self._continue(crew, message, caller_of(context, self.deps, "approvals:decide"))
        record, context_id = await self._start(crew, message, caller_of(context, self.deps, "jobs:submit"))
        if params.configuration.HasField("task_push_notification_config"):
            await self._push().create(record.id, params.configuration.task_push_notification_config)
        return record.id, context_id, 0

    async def _continue(self, crew: str, message: Message, caller: Principal) -> tuple[str, str, int]:
        """A follow-up message: the answer to what the job asks (``crews.a2a.turns``)."""
        record = await self._record(crew, message.task_id, caller)  # TaskNotFoundError for an unknown task
        a2a = await self._records().get(record.id)
        context_id = a2a.context_id if a2a else record.id
        if message.context_id and message.context_id != context_id:
            raise InvalidParamsError(
                message=f"task {record.id} belongs to context {context_id!r}, not {message.context_id!r}"
            )
        deps = self.deps
        after = await last_event_seq(deps.js, record.id)
        await answer_task(deps.js, deps.store, record, message, ttl_s=self._ttl_s())
        return record.id, context_id, after

    async def _start(self, crew: str, message: Message, caller: Principal) -> tuple[JobRecord, str]:
        """Submit the job the message asks for (once per message id); returns it and its context id."""
        deps = self.deps
        spec = await self._spec(crew)
        inputs = message_inputs(spec, message)
        record = await submit_job(
            deps.js,
            deps.store,
            crew,
            inputs,
            idempotency_key=f"a2a:{crew}:{message.message_id}",
            timeout_s=deps.crews.job_timeout_s,
            owner=caller.name,
        )
        if record.crew != crew or record.inputs != inputs:
            raise InvalidParamsError(
                message=f"messageId {message.message_id!r} was first sent with other inputs (job {record.id}): "
                "give every new message a new messageId"
            )
        context_id = message.context_id or record.id
        await self._records().save(record.id, context_id, message)
        return record, context_id

    # --- tasks -----------------------------------------------------------------------------

    async def on_get_task(self, params: GetTaskRequest, context: ServerCallContext) -> Task | None:
        validate_history_length(params)
        await self._record(crew_of(context), params.id, caller_of(context, self.deps, "jobs:read"))
        return apply_history_length(await self._task(params.id), params)

    async def on_cancel_task(self, params: CancelTaskRequest, context: ServerCallContext) -> Task | None:
        record = await self._record(crew_of(context), params.id, caller_of(context, self.deps, "jobs:submit"))
        if record.terminal:
            raise TaskNotCancelableError(message=f"task {record.id} has already ended ({record.status})")
        try:
            await cancel_job(self.deps.js, self.deps.store, record.id)
        except JobError as exc:
            raise TaskNotCancelableError(message=str(exc)) from exc
        return await self._task(record.id)

    async def on_subscribe_to_task(
        self, params: SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        record = await self._record(crew_of(context), params.id, caller_of(context, self.deps, "jobs:read"))
        if record.terminal:
            raise UnsupportedOperationError(
                message=f"task {record.id} has ended ({record.status}): read it with GetTask"
            )
        task = await self._task(record.id)
        yield task
        async for event in self._follow(record.id, task.context_id, start=task):
            yield event

    async def on_list_tasks(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        """The crew's recent jobs as tasks, filtered, ordered and paged as the SDK's own stores do."""
        crew, caller = crew_of(context), caller_of(context, self.deps, "jobs:read")
        if params.HasField("page_size"):
            validate_page_size(params.page_size)
        validate_history_length(params)
        deps = self.deps
        found = InMemoryTaskStore()
        for record in await deps.store.list_jobs(limit=deps.scan_jobs):
            if record.crew == crew and caller.owns(record.owner):
                await found.save(await self._task(record.id, params.include_artifacts), context)
        listed = await found.list(params, context)
        pruned = [apply_history_length(task, params) for task in listed.tasks]
        del listed.tasks[:]
        listed.tasks.extend(pruned)
        return listed

    async def _task(self, job: str, artifacts: bool = True) -> Task:
        """The job as its task; a running job whose tool calls wait for a person is ``INPUT_REQUIRED``."""
        store = self.deps.store
        record = await store.get(job)
        results = await store.results(job) if artifacts else None
        task = job_task(record, await self._records().get(job), results, await store.usage(job))
        if record.status == "running" and (pending := await pending_approvals(store, job)):
            task.status.CopyFrom(asking_status(job, task.context_id, pending, task.status))
        return task

    async def _record(self, crew: str, job: str, caller: Principal) -> JobRecord:
        """The job ``job`` of ``crew``, if ``caller`` may see it; ``TaskNotFoundError`` otherwise."""
        try:
            record = await self.deps.store.get(job)
        except JobNotFound as exc:
            raise TaskNotFoundError(message=f"no task {job!r}: {exc}") from exc
        if record.crew != crew or not caller.owns(record.owner):
            raise TaskNotFoundError(message=f"no task {job!r} of crew '{crew}' of yours")
        return record

    async def _spec(self, crew: str) -> CrewSpec:
        try:
            return await self.deps.store.get_crew(crew)
        except CrewNotFound as exc:
            raise InvalidParamsError(message=str(exc)) from exc
        except ValidationError as exc:
            raise InvalidParamsError(
                message=f"crew '{crew}' is stored in a form this API cannot read: {exc}"
            ) from exc

    async def _follow(
        self, job: str, context_id: str, after_seq: int = 0, start: Task | None = None
    ) -> AsyncGenerator[Event]:
        """The job's events after ``after_seq`` as its task's updates, never going back from ``start``,
        up to its end or to the next question it asks (``crews.a2a.updates``)."""
        store = self.deps.store
        if (
            after_seq
            and (await store.get(job)).terminal
            and await last_event_seq(self.deps.js, job, own=True) <= after_seq
        ):
            return  # ended before ``after_seq``: nothing comes after it (else its end is replayed below)
        forward = Forward(start)
        events = follow_events(self.deps.js, job, after_seq)
        assert isinstance(events, AsyncGenerator)
        async with aclosing(events):
            async for item in events:
                update = await task_update(store, job, context_id, item.event)
                if update is not None and forward.admit(update):
                    yield update
                    if interrupted(update):
                        return
                if is_job_end(job, item.event):
                    return

    # --- push notifications (crews.a2a.push) ------------------------------------------------

    async def on_create_task_push_notification_config(
        self, params: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        record = await self._record(
            crew_of(context), params.task_id, caller_of(context, self.deps, "jobs:submit")
        )
        if record.terminal:
            raise UnsupportedOperationError(
                message=f"task {record.id} has ended ({record.status}): it sends no more updates"
            )
        return await self._push().create(record.id, params)

    async def on_get_task_push_notification_config(
        self, params: GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        await self._record(crew_of(context), params.task_id, caller_of(context, self.deps, "jobs:read"))
        return await self._push().get(params.task_id, params.id)

    async def on_list_task_push_notification_configs(
        self, params: ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> ListTaskPushNotificationConfigsResponse:
        await self._record(crew_of(context), params.task_id, caller_of(context, self.deps, "jobs:read"))
        return await self._push().page(params.task_id, params.page_size, params.page_token)

    async def on_delete_task_push_notification_config(
        self, params: DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        await self._record(crew_of(context), params.task_id, caller_of(context, self.deps, "jobs:submit"))
        await self._push().delete(params.task_id, params.id)

    # --- not offered -----------------------------------------------------------------------

    async def on_get_extended_agent_card(
        self, params: GetExtendedAgentCardRequest, context: ServerCallContext
    ) -> AgentCard:
        raise ExtendedAgentCardNotConfiguredError(message="a crew has no extended card: read its agent card")


def crew_of(context: ServerCallContext) -> str:
    """The crew a call is for: set by the HTTP routes, or named by the NATS subject (``CREW_HEADER``)."""
    headers: Any = context.state.get("headers") or {}
    crew: Any = context.state.get(CREW_STATE) or headers.get(CREW_HEADER.lower())
    if not isinstance(crew, str) or not crew:
        raise InvalidParamsError(message="the call names no crew: call /a2a/<crew> (or crews.a2a.<crew>)")
    return crew
