"""A job's events as its A2A task's updates, for streams and push notifications alike.

- ``task_update``: one event of ``crews.events.<job>.>`` as an update of the job's
  task (``crews.a2a.tasks.task_event``); a step's ``input-required`` (a tool call
  waits for approval) and a decision on one become the task's
  ``INPUT_REQUIRED`` with the calls still waiting (``crews.a2a.turns``), or
  ``WORKING`` once none waits. The waiting calls are read from Redis when the
  event is converted, so a replayed, long-answered request is not asked again.
- ``Forward``: states never go back. Ranks: ``SUBMITTED`` < ``WORKING`` =
  ``INPUT_REQUIRED`` < the terminal states; a status update of a lower rank
  than the stream has shown (``SUBMITTED`` after a ``WORKING`` snapshot, a
  replayed event after the end) is dropped; artifacts always pass.
- ``interrupted``: the task waits on its caller; a stream (and a blocking
  ``SendMessage``) ends there, as a2a-sdk's own handler does.
"""

from __future__ import annotations

from a2a.types import StreamResponse, Task, TaskState, TaskStatusUpdateEvent
from google.protobuf import json_format

from bus.contracts.states import TERMINAL_TASK_STATES
from crews.a2a.tasks import TaskEvent, task_event
from crews.a2a.turns import asking_status, pending_approvals
from crews.jobs.store import RedisJobStore

INTERRUPTED = frozenset({TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED})


async def task_update(
    store: RedisJobStore, job: str, context_id: str, event: StreamResponse
) -> TaskEvent | None:
    """``event`` of the job's stream as an update of its task (None: nothing to tell)."""
    update = task_event(job, context_id, event)
    if isinstance(update, TaskStatusUpdateEvent) and _about_approval(job, event):
        pending = await pending_approvals(store, job)
        if pending:
            update.status.CopyFrom(asking_status(job, context_id, pending, update.status))
    return update


def _about_approval(job: str, event: StreamResponse) -> bool:
    if not event.HasField("status_update") or event.status_update.task_id == job:
        return False
    step = event.status_update
    decided = "decision" in json_format.MessageToDict(step.metadata)
    return decided or step.status.state == TaskState.TASK_STATE_INPUT_REQUIRED


def rank(state: int) -> int:
    if state in TERMINAL_TASK_STATES or state == TaskState.TASK_STATE_REJECTED:
        return 2
    return 0 if state == TaskState.TASK_STATE_SUBMITTED else 1


class Forward:
    """Lets through the updates that do not take the task's state back (see the module docstring)."""

    def __init__(self, start: Task | None = None) -> None:
        self.rank = rank(start.status.state) if start is not None else 0

    def admit(self, update: TaskEvent | Task) -> bool:
        if self.rank == 2:
            return False  # nothing follows the end
        if isinstance(update, Task | TaskStatusUpdateEvent):
            seen = rank(update.status.state)
            if seen < self.rank:
                return False
            self.rank = seen
        return True


def interrupted(update: TaskEvent | Task) -> bool:
    """Whether the task now waits on its caller (``INPUT_REQUIRED``)."""
    return isinstance(update, Task | TaskStatusUpdateEvent) and update.status.state in INTERRUPTED
