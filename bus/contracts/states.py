"""One state vocabulary for jobs and steps (A2A's spelling: ``canceled``), and one set of terminal states.

Jobs and steps are A2A tasks; their states here are the A2A task states in
the short form crews stores in Redis and shows in the API.
"""

from __future__ import annotations

from typing import Literal

from a2a.types import TaskState

JobStatus = Literal["submitted", "running", "completed", "failed", "canceled"]
StepState = Literal["pending", "dispatched", "working", "input-required", "completed", "failed", "canceled"]

TERMINAL: frozenset[str] = frozenset({"completed", "failed", "canceled"})
"""A job or a step in one of these has ended and never changes again."""

STOPPED: frozenset[str] = frozenset({"canceled", "failed"})
"""Job statuses that stop the job's running steps."""

JOB_TASK_STATES: dict[str, TaskState] = {
    "submitted": TaskState.TASK_STATE_SUBMITTED,
    "running": TaskState.TASK_STATE_WORKING,
    "completed": TaskState.TASK_STATE_COMPLETED,
    "failed": TaskState.TASK_STATE_FAILED,
    "canceled": TaskState.TASK_STATE_CANCELED,
}
"""A job's status as the state of the job's A2A task."""

TERMINAL_TASK_STATES: frozenset[TaskState] = frozenset(
    {TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED}
)
"""The A2A states of an ended task."""

STOPPED_TASK_STATES: frozenset[TaskState] = frozenset(
    {TaskState.TASK_STATE_CANCELED, TaskState.TASK_STATE_FAILED}
)
"""``STOPPED`` as A2A states: a job's task in one of these stops its running steps."""
