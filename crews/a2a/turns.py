"""Multi-turn A2A: a job waiting on a person is an ``input-required`` task, and the caller's next message answers it.

A job whose steps wait on tool approvals (``crews.jobs.approvals``) is, as an
A2A task, in ``TASK_STATE_INPUT_REQUIRED``. Its status message says what is
asked, twice: as text for people, and as a data part for programs::

    {"kind": "approval", "approvals": [{"approval": "bill:call-1", "tool": "calculator",
     "arguments": {"expression": "2 + 3"}, "step": "bill", "role": "clerk",
     "choices": ["approve", "deny"]}],
     "answer": {"approval": "<id>", "approve": true, "comment": "..."}}

A message with the task's ``taskId`` answers it: a data part
``{"approval": "<id>", "approve": true|false, "comment": "..."}`` (the
``approval`` may be left out when one call waits), or, when exactly one call
waits, a text that starts with yes / no (``approve`` / ``deny``; the rest of
the text is the comment). The decision goes through ``crews.jobs.approvals.decide``
as the HTTP API's does. A message's id answers once: a retried message is
not a second decision (``crews:{job:<id>}:a2a:answers``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from a2a.types import Message, Part, Role, TaskState, TaskStatus
from a2a.utils.errors import InvalidParamsError, UnsupportedOperationError
from google.protobuf import json_format
from nats.js import JetStreamContext

from crews.errors import JobError
from crews.jobs.approvals import Approval, decide, list_approvals
from crews.jobs.store import JobRecord, RedisJobStore

CHOICES = ["approve", "deny"]
_YES = frozenset({"yes", "y", "approve", "approved", "ok", "okay"})
_NO = frozenset({"no", "n", "deny", "denied", "reject", "refuse"})


@dataclass(frozen=True)
class Answer:
    """What a caller's message decides: one approval, yes or no, and why."""

    approval: str
    approve: bool
    comment: str


def answers_key(job: str) -> str:
    """``message id → approval id`` of the answers a job's A2A callers gave (TTL as the job's keys)."""
    return f"crews:{{job:{job}}}:a2a:answers"


async def pending_approvals(store: RedisJobStore, job: str) -> list[Approval]:
    """The job's tool calls that wait for a person, oldest id first."""
    return [a for a in await list_approvals(store, job) if a.status == "pending"]


async def answer_task(
    js: JetStreamContext, store: RedisJobStore, record: JobRecord, message: Message, *, ttl_s: int
) -> None:
    """Decide what ``record``'s job asks with ``message`` (once per message id); refuse what cannot be answered.

    ``UnsupportedOperationError`` for a task that has ended (A2A 1.0: a terminal
    task takes no message) or that asks nothing now; ``InvalidParamsError`` for
    an answer that does not fit the question.
    """
    job = record.id
    key = answers_key(job)
    if await store.redis.hexists(key, message.message_id):
        return  # this message was answered before: a retry decides nothing twice
    if record.terminal:
        raise UnsupportedOperationError(
            message=f"task {job} has ended ({record.status}) and takes no further messages: "
            "send a new message without a taskId to start another job"
        )
    pending = await pending_approvals(store, job)
    if not pending:
        raise UnsupportedOperationError(
            message=f"task {job} is {record.status} and asks nothing now: a message with its taskId "
            "is taken only while it is input-required (read it with GetTask)"
        )
    answer = answer_of(message, pending)
    if not await store.redis.hsetnx(key, message.message_id, answer.approval):
        return  # the same message, at the same time, through another replica
    await store.redis.expire(key, ttl_s)
    try:
        await decide(js, store, job, answer.approval, answer.approve, answer.comment)
    except JobError as exc:  # decided meanwhile (over HTTP?), or the job ended
        await store.redis.hdel(key, message.message_id)
        raise InvalidParamsError(message=str(exc)) from exc


def asking_status(job: str, context_id: str, pending: list[Approval], base: TaskStatus) -> TaskStatus:
    """``base`` (its timestamp) as ``INPUT_REQUIRED``, with a message that says what is asked and how to answer."""
    status = TaskStatus(state=TaskState.TASK_STATE_INPUT_REQUIRED)
    if base.HasField("timestamp"):
        status.timestamp.CopyFrom(base.timestamp)
    else:
        status.timestamp.GetCurrentTime()
    status.message.CopyFrom(asking_message(job, context_id, pending))
    return status


def asking_message(job: str, context_id: str, pending: list[Approval]) -> Message:
    asked = [
        {
            "approval": a.id,
            "tool": a.tool,
            "arguments": a.arguments,
            "step": a.step,
            "role": a.role,
            "choices": CHOICES,
        }
        for a in pending
    ]
    data = Part(media_type="application/json")
    json_format.ParseDict(
        {
            "kind": "approval",
            "approvals": asked,
            "answer": {"approval": pending[0].id, "approve": True, "comment": ""},
        },
        data.data,
    )
    return Message(
        message_id=f"{job}:asks:{','.join(a.id for a in pending)}",
        task_id=job,
        context_id=context_id,
        role=Role.ROLE_AGENT,
        parts=[Part(text=asking_text(pending), media_type="text/plain"), data],
    )


def asking_text(pending: list[Approval]) -> str:
    calls = "; ".join(
        f"{a.tool}({json.dumps(a.arguments, ensure_ascii=False)[:500]}) [approval {a.id}, step {a.step}]"
        for a in pending
    )
    how = (
        'answer "yes" or "no" (the rest of the text is your comment)'
        if len(pending) == 1
        else 'answer with a data part {"approval": "<id>", "approve": true or false, "comment": "..."}'
    )
    return f"Approval needed before the crew goes on: {calls}. To decide, send a message with this taskId: {how}."


def answer_of(message: Message, pending: list[Approval]) -> Answer:
    """The decision ``message`` gives for one of ``pending`` (``InvalidParamsError`` says what is wrong)."""
    if not pending:
        raise InvalidParamsError(message="the task waits for no answer")
    for part in message.parts:
        if part.WhichOneof("content") == "data":
            return _data_answer(json_format.MessageToDict(part.data), pending)
    text = " ".join(p.text for p in message.parts if p.WhichOneof("content") == "text").strip()
    if len(pending) > 1:
        raise InvalidParamsError(
            message=f"{len(pending)} tool calls wait ({', '.join(a.id for a in pending)}): answer one with a "
            'data part {"approval": "<id>", "approve": true or false, "comment": "..."}'
        )
    word, _, rest = text.partition(" ")
    verdict = re.sub(r"[^a-z]", "", word.lower())
    if verdict in _YES | _NO:
        return Answer(pending[0].id, verdict in _YES, rest.strip(" ,.:;-"))
    raise InvalidParamsError(
        message=f"cannot tell yes from no in {text[:80]!r}: start the message with 'yes' or 'no' to decide "
        f"on {pending[0].tool} (approval {pending[0].id})"
    )


def _data_answer(value: Any, pending: list[Approval]) -> Answer:
    if not isinstance(value, dict) or not isinstance(value.get("approve"), bool):
        raise InvalidParamsError(
            message='an answer\'s data part is {"approval": "<id>", "approve": true or false, "comment": "..."}'
        )
    approval = value.get("approval")
    if approval is None and len(pending) == 1:
        approval = pending[0].id
    waiting = {a.id for a in pending}
    if approval not in waiting:
        raise InvalidParamsError(
            message=f"approval {approval!r} does not wait for an answer: the waiting ones are "
            f"{', '.join(sorted(waiting))}"
        )
    comment = value.get("comment", "")
    if not isinstance(comment, str):
        raise InvalidParamsError(message="an answer's 'comment' is a text")
    return Answer(str(approval), value["approve"], comment)
