"""The ``a2a`` engine: an outside A2A agent does the role's steps.

A role with ``engine: a2a`` names an outside agent (``agent: translator``)
that the operator declared on the role workers (``roles.outside_agents``:
its URL or its name on NATS, and where its credential is). Each step goes to
that agent with a2a-sdk's client:

1. one message: the step as text (``step_text``: the task, the expected output,
   the context outputs), message id ``<job>.<step>:<plan version>`` (stable
   across redeliveries), context id the job; ``Authorization`` is the
   credential the declaration names;
2. the agent's updates go into the job's events as the step's: a status with a
   message becomes a ``WORKING`` of the step, an artifact becomes an artifact of
   the step (``<job>.<step>.remote.<artifact id>``);
3. its final artifact (the last one it sent; else the final status message) is
   the step's output, recorded by the worker like any step's; with an output
   schema it must be JSON that matches. Usage the agent reports in its task
   metadata (``usage.input_tokens`` / ``output_tokens``) is added to the role's.

Over HTTP the calls keep to the declared origin, and addresses inside the
network are refused unless the declaration allows them
(``roles.engines._guarded_http``); every request carries the step's trace
context (``traceparent``, ``bus.tracing.traced_transport``), as the NATS
binding's headers do. The agent failing, rejecting, asking for
input, or answering 4xx fails the step (a retry cannot help); an agent that
cannot be reached (connection, timeout, 5xx, 429, no NATS responder) is
retried (``RetryableError``). When the job stops, the agent's task is
cancelled too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
from a2a.client import Client, ClientCallContext, ClientConfig, ClientFactory
from a2a.client.card_resolver import A2ACardResolver
from a2a.client.errors import A2AClientTimeoutError
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    Artifact,
    CancelTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatusUpdateEvent,
)
from a2a.utils.constants import TransportProtocol
from a2a.utils.errors import A2AError
from google.protobuf import json_format
from google.protobuf.json_format import ParseError
from nats.aio.client import Client as NATS

from bus.a2a_nats.client import nats_agent_interface, nats_client_factory
from bus.contracts.step import StepWork
from bus.errors import A2ANatsError, RetryableError
from bus.jetstream.events import publish_event
from bus.tracing import traced_transport
from inference.results import Usage
from roles.engines._guarded_http import AddressRefused, GuardedTransport, Origin
from roles.engines.base import StepOutput, StepRun
from roles.engines.native import OutputInvalid, OutputSchema
from roles.errors import StepFailed
from roles.outside_agents import OutsideAgent

FAILED = {
    TaskState.TASK_STATE_FAILED: "failed",
    TaskState.TASK_STATE_REJECTED: "rejected",
    TaskState.TASK_STATE_CANCELED: "canceled",
    TaskState.TASK_STATE_INPUT_REQUIRED: "asked for input, which a crew step cannot give",
    TaskState.TASK_STATE_AUTH_REQUIRED: "asked for authentication, which a crew step cannot give",
}
RETRY_AFTER_S = 2.0
_HTTP_STATUS = re.compile(r"HTTP Error (\d{3})")


class A2AEngine:
    """Runs a step on the outside agent the role names, as the operator declared it."""

    async def run(self, step: StepRun) -> StepOutput:
        agent = declared_agent(step)
        authorization = agent.authorization()
        try:
            async with _client(agent, step.nc, authorization) as client:
                return await _Exchange(step, client, authorization, agent.where).run()
        except (httpx.TransportError, A2AClientTimeoutError, A2ANatsError) as exc:
            raise RetryableError(
                f"the A2A agent {agent.where} cannot be reached: {exc}", RETRY_AFTER_S
            ) from exc
        except A2AError as exc:
            raise _refused(agent.where, exc) from exc
        except (ValueError, ParseError) as exc:  # a card or an answer that is not A2A: it will not improve
            raise StepFailed(f"the A2A agent {agent.where} answered with something unusable: {exc}") from exc


def declared_agent(step: StepRun) -> OutsideAgent:
    """The operator's declaration of the agent the step's role names; ``StepFailed`` when there is none."""
    work = step.work
    if work.remote is None:
        raise StepFailed(f"role {work.role!r} has engine a2a but names no outside agent (`agent: <name>`)")
    agent = step.agents.get(work.remote.agent)
    if agent is None:
        known = ", ".join(sorted(step.agents)) or "none"
        raise StepFailed(
            f"role {work.role!r} names the outside agent {work.remote.agent!r}, which the operator has not "
            f"declared on this role worker (declared: {known}): declare it in CREWS_A2A_AGENTS"
        )
    return agent


@contextlib.asynccontextmanager
async def _client(agent: OutsideAgent, nc: NATS | None, authorization: str | None) -> AsyncIterator[Client]:
    if agent.nats is not None:
        if nc is None:
            raise StepFailed("this engine needs the worker's NATS connection to call an agent on NATS")
        card = AgentCard(name=agent.nats, capabilities=AgentCapabilities(streaming=True))
        card.supported_interfaces.append(nats_agent_interface(agent.nats))
        yield nats_client_factory(nc, ClientConfig(streaming=True)).create(card)
        return
    assert agent.url is not None
    origin = Origin.of(agent.url)
    headers = {"Authorization": authorization} if authorization else {}
    timeout = httpx.Timeout(30.0, read=None)  # a step may stream for long; max_execution_time bounds it
    transport = traced_transport(
        GuardedTransport(origin, allow_private=agent.allow_private, agent=agent.name)
    )
    async with httpx.AsyncClient(headers=headers, timeout=timeout, transport=transport) as http:
        base, card_path = agent.url.rstrip("/"), None
        if base.endswith(".json"):  # the card's own URL
            base, _, name = base.rpartition("/")
            card_path = name
        card = keep_to_origin(
            await A2ACardResolver(http, base).get_agent_card(relative_card_path=card_path), origin, agent
        )
        bindings = [TransportProtocol.JSONRPC.value, TransportProtocol.HTTP_JSON.value]
        config = ClientConfig(httpx_client=http, streaming=True, supported_protocol_bindings=bindings)
        client = ClientFactory(config).create(card)
        try:
            yield client
        finally:
            await client.close()


def keep_to_origin(card: AgentCard, origin: Origin, agent: OutsideAgent) -> AgentCard:
    """The card with only the interfaces on the declared origin: a card cannot redirect the calls."""
    kept = [i for i in card.supported_interfaces if Origin.of(i.url) == origin]
    if not kept:
        named = ", ".join(sorted({str(Origin.of(i.url)) for i in card.supported_interfaces})) or "nothing"
        raise AddressRefused(
            f"the card of outside agent {agent.where} sends calls to {named}, not to its declared origin "
            f"{origin}: the operator must declare the agent at the address its card uses"
        )
    del card.supported_interfaces[:]
    card.supported_interfaces.extend(kept)
    return card


def _refused(where: str, exc: A2AError) -> Exception:
    """An error answer: retry what may pass (5xx, 429, unreachable), fail the step on the rest (4xx)."""
    found = _HTTP_STATUS.search(str(exc))
    status = getattr(exc, "status_code", None) or (int(found.group(1)) if found else 0)
    if status >= 500 or status == 429 or (not status and isinstance(exc.__cause__, httpx.TransportError)):
        return RetryableError(f"the A2A agent {where} is unavailable: {exc}", RETRY_AFTER_S)
    hint = " (check the credential its declaration names)" if status in (401, 403) else ""
    return StepFailed(f"the A2A agent {where} refused the step: {exc}{hint}")


def step_text(work: StepWork) -> str:
    """The step as one message for an agent that knows nothing of crews."""
    lines = [work.description]
    if work.expected_output:
        lines += ["", f"Expected output: {work.expected_output}"]
    if work.output_schema is not None:
        lines += ["", f"Answer with JSON only, matching this JSON schema: {json.dumps(work.output_schema)}"]
    if work.context:
        lines += ["", "Context (the outputs of earlier steps):"]
        lines += [f"\n## {item.task}\n{item.output}" for item in work.context]
    return "\n".join(lines)


def step_message(work: StepWork) -> Message:
    message = Message(
        message_id=f"{work.task_id}:{work.plan_version}",
        context_id=work.job,
        role=Role.ROLE_USER,
        parts=[Part(text=step_text(work))],
    )
    message.metadata.update(
        {"crews": {"crew": work.crew, "job": work.job, "step": work.step, "role": work.role}}
    )
    return message


class _Exchange:
    """One step sent to the agent: its updates forwarded to the job's events, its answer kept."""

    def __init__(self, step: StepRun, client: Client, authorization: str | None, where: str) -> None:
        self.step, self.work, self.client, self.where = step, step.work, client, where
        params = {"Authorization": authorization} if authorization else {}
        self.context = ClientCallContext(service_parameters=params)
        self.task_id = ""
        self.state = TaskState.TASK_STATE_UNSPECIFIED
        self.artifacts: dict[str, Artifact] = {}
        self.said = ""
        self.usage = Usage()
        self._forwarded = 0

    async def run(self) -> StepOutput:
        try:
            await self._exchange()
        finally:  # every attempt counts, with the tokens the agent reported: a failed or interrupted one too
            await asyncio.shield(self.step.budget.record(self.work.job, self.work.role, self.usage))
        return self._output()

    async def _exchange(self) -> None:
        request = SendMessageRequest(message=step_message(self.work))
        events = self.client.send_message(request, context=self.context)
        assert isinstance(events, AsyncGenerator)
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    await self._take(event)
        except asyncio.CancelledError:
            await self._cancel_remote()
            raise
        if self.state != TaskState.TASK_STATE_COMPLETED and self.task_id:
            raise RetryableError(
                f"the A2A agent {self.where} stopped streaming task {self.task_id} before it ended "
                f"({TaskState.Name(self.state)})",
                RETRY_AFTER_S,
            )

    async def _take(self, event: StreamResponse) -> None:
        if event.HasField("message"):
            self.said = _text(event.message.parts)
            self.state = TaskState.TASK_STATE_COMPLETED
            return
        if event.HasField("task"):
            task = event.task
            self.task_id = task.id
            for artifact in task.artifacts:
                self.artifacts[artifact.artifact_id] = artifact
            self._usage(json_format.MessageToDict(task.metadata))
            self._status(task.status.state, _text(task.status.message.parts))
        elif event.HasField("artifact_update"):
            self._artifact(event.artifact_update)
            await self._forward_artifact(event.artifact_update)
        elif event.HasField("status_update"):
            update = event.status_update
            self._usage(json_format.MessageToDict(update.metadata))
            self._status(update.status.state, _text(update.status.message.parts))
            await self._forward_status(update)

    def _status(self, state: TaskState, said: str) -> None:
        self.state = state
        if said:
            self.said = said
        if state in FAILED:
            reason = f": {said}" if said else ""
            raise StepFailed(f"the A2A agent {self.where} {FAILED[state]} (task {self.task_id}){reason}")

    def _artifact(self, update: TaskArtifactUpdateEvent) -> None:
        known = self.artifacts.get(update.artifact.artifact_id)
        if update.append and known is not None:
            known.parts.extend(update.artifact.parts)
            return
        self.artifacts.pop(update.artifact.artifact_id, None)  # a replaced artifact moves to the end
        self.artifacts[update.artifact.artifact_id] = update.artifact

    def _usage(self, metadata: dict[str, Any]) -> None:
        usage = metadata.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage(
                input_tokens=int(usage.get("input_tokens", 0)),
                output_tokens=int(usage.get("output_tokens", 0)),
            )

    def _output(self) -> StepOutput:
        last = list(self.artifacts.values())[-1] if self.artifacts else None
        if last is None and not self.said:
            raise StepFailed(f"the A2A agent {self.where} completed without an artifact or a message")
        data = _data(last.parts) if last is not None else None
        text = _text(last.parts) if last is not None else self.said
        if self.work.output_schema is None:
            return StepOutput(output=text or json.dumps(data), usage=self.usage)
        try:
            parsed_text, parsed = OutputSchema(self.work.output_schema, self.work.step).parse(
                json.dumps(data) if data is not None else text
            )
        except OutputInvalid as exc:
            raise StepFailed(
                f"the answer of the A2A agent {self.where} does not match the output_schema: {exc}"
            ) from exc
        return StepOutput(output=parsed_text, data=parsed, usage=self.usage)

    async def _forward_status(self, update: TaskStatusUpdateEvent) -> None:
        if update.status.state != TaskState.TASK_STATE_WORKING or not update.status.HasField("message"):
            return
        said = _text(update.status.message.parts)
        if not said:
            return
        status = TaskStatusUpdateEvent(task_id=self.work.task_id, context_id=self.work.job)
        status.status.state = TaskState.TASK_STATE_WORKING
        status.status.timestamp.GetCurrentTime()
        status.status.message.CopyFrom(
            Message(
                message_id=update.status.message.message_id
                or f"{self.work.task_id}:remote:{self._forwarded}",
                context_id=self.work.job,
                task_id=self.work.task_id,
                role=Role.ROLE_AGENT,
                parts=[Part(text=said)],
            )
        )
        status.metadata.update(
            {"step": self.work.step, "role": self.work.role, "remote_task": update.task_id}
        )
        await self._publish(status)

    async def _forward_artifact(self, update: TaskArtifactUpdateEvent) -> None:
        artifact = Artifact()
        artifact.CopyFrom(update.artifact)
        artifact.artifact_id = f"{self.work.task_id}.remote.{update.artifact.artifact_id}"
        if not artifact.name:
            artifact.name = self.work.step
        event = TaskArtifactUpdateEvent(
            task_id=self.work.task_id,
            context_id=self.work.job,
            artifact=artifact,
            append=update.append,
            last_chunk=update.last_chunk,
        )
        event.metadata.update({"step": self.work.step, "role": self.work.role, "remote_task": update.task_id})
        await self._publish(event)

    async def _publish(self, event: TaskStatusUpdateEvent | TaskArtifactUpdateEvent) -> None:
        if self.step.nc is None:
            return
        self._forwarded += 1
        event_id = f"{self.work.task_id}:remote:{self.task_id}:{self._forwarded}"
        role = (self.work.crew, self.work.role)
        await publish_event(self.step.nc.jetstream(), self.work.job, event, event_id, role=role)

    async def _cancel_remote(self) -> None:
        """The job stopped: ask the agent to cancel its task too (best effort, a few seconds at most)."""
        if not self.task_id or self.state in FAILED or self.state == TaskState.TASK_STATE_COMPLETED:
            return
        with contextlib.suppress(A2AError, httpx.HTTPError, A2ANatsError, TimeoutError):
            cancel = self.client.cancel_task(CancelTaskRequest(id=self.task_id), context=self.context)
            await asyncio.wait_for(asyncio.shield(cancel), 5.0)


def _text(parts: Any) -> str:
    return "\n".join(part.text for part in parts if part.WhichOneof("content") == "text" and part.text)


def _data(parts: Any) -> Any:
    for part in parts:
        if part.WhichOneof("content") == "data":
            return json_format.MessageToDict(part.data)
    return None
