"""Every crew as an A2A agent: an a2a-sdk ``RequestHandler`` over the job store and the job's events.

Nothing lives in this process: a task is a job (``crews.jobs.store``), its events are
the job's events in JetStream (``bus.contracts.events.follow_events``), so any API
replica answers any call, and a stream cut by a restart is taken up again with
``SubscribeToTask``, which replays the job's events from its first one.

| A2A | crews |
|---|---|
| ``SendMessage`` | the message's parts → inputs (``crews.a2a.inputs``), ``submit_job`` with the idempotency key ``a2a:<crew>:<messageId>`` (a retried message starts no second job); blocking: follow the job's events to its end, then answer the task; ``returnImmediately``: answer the task at once |
| ``SendStreamingMessage`` | the same, then the task and every event of the job until it ends |
| ``SubscribeToTask`` | the task, then every event of the job from the first until it ends (``UnsupportedOperationError`` once the job has ended) |
| ``GetTask`` / ``ListTasks`` | the job(s) of this crew as tasks (``crews.a2a.tasks``) |
| ``CancelTask`` | ``cancel_job`` (``TaskNotCancelableError`` once ended) |

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
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from a2a.utils.task import apply_history_length, validate_history_length, validate_page_size
from nats.js import JetStreamContext
from pydantic import ValidationError

from bus.jetstream.events import follow_events
from crews.a2a.inputs import message_inputs
from crews.a2a.tasks import A2ARecords, job_task, task_event
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

    def _records(self) -> A2ARecords:
        deps = self.deps
        return A2ARecords(deps.store.redis, deps.crews.job_ttl_s + int(deps.crews.job_timeout_s))

    # --- messages --------------------------------------------------------------------------

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Task | Message:
        record, context_id = await self._start(params, context)
        if not params.configuration.return_immediately:
            async for _ in self._follow(record.id, context_id):
                pass
        return apply_history_length(await self._task(record.id), params.configuration)

    async def on_message_send_stream(
        self, params: SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        record, context_id = await self._start(params, context)
        yield await self._task(record.id)
        async for event in self._follow(record.id, context_id):
            yield event

    async def _start(self, params: SendMessageRequest, context: ServerCallContext) -> tuple[JobRecord, str]:
        """Submit the job the message asks for (once per message id); returns it and its context id."""
        caller = caller_of(context, self.deps, "jobs:submit")
        crew, message = crew_of(context), params.message
        if not params.HasField("message") or not message.message_id:
            raise InvalidParamsError(message="the request needs a message with a messageId")
        validate_history_length(params.configuration)
        if message.task_id:
            await self._record(crew, message.task_id, caller)  # TaskNotFoundError for an unknown task
            raise UnsupportedOperationError(
                message=f"task {message.task_id} takes no further messages (a crew's job runs to its end "
                "on the first one): send a new message without a taskId to start another job"
            )
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
        async for event in self._follow(record.id, task.context_id):
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
        store = self.deps.store
        record = await store.get(job)
        results = await store.results(job) if artifacts else None
        return job_task(record, await self._records().get(job), results, await store.usage(job))

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

    async def _follow(self, job: str, context_id: str) -> AsyncGenerator[Event]:
        """The job's events from its first, as events of its task, up to its own final status."""
        events = follow_events(self.deps.js, job)
        assert isinstance(events, AsyncGenerator)
        async with aclosing(events):
            async for item in events:
                event = task_event(job, context_id, item.event)
                if event is not None:
                    yield event
                if is_job_end(job, item.event):
                    return

    # --- not offered -----------------------------------------------------------------------

    async def on_create_task_push_notification_config(
        self, params: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        raise _no_push()

    async def on_get_task_push_notification_config(
        self, params: GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        raise _no_push()

    async def on_list_task_push_notification_configs(
        self, params: ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> ListTaskPushNotificationConfigsResponse:
        raise _no_push()

    async def on_delete_task_push_notification_config(
        self, params: DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        raise _no_push()

    async def on_get_extended_agent_card(
        self, params: GetExtendedAgentCardRequest, context: ServerCallContext
    ) -> AgentCard:
        raise ExtendedAgentCardNotConfiguredError(message="a crew has no extended card: read its agent card")


def _no_push() -> PushNotificationNotSupportedError:
    return PushNotificationNotSupportedError(
        message="crews sends no push notifications: stream the task (SubscribeToTask) instead"
    )


def crew_of(context: ServerCallContext) -> str:
    """The crew a call is for: set by the HTTP routes, or named by the NATS subject (``CREW_HEADER``)."""
    headers: Any = context.state.get("headers") or {}
    crew: Any = context.state.get(CREW_STATE) or headers.get(CREW_HEADER.lower())
    if not isinstance(crew, str) or not crew:
        raise InvalidParamsError(message="the call names no crew: call /a2a/<crew> (or crews.a2a.<crew>)")
    return crew
