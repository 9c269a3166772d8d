"""Every NATS subject, stream and consumer name crews uses (docs/architecture.md, "Subjects and streams").

The Helm chart, the KEDA triggers and the local autoscaler read the same names
from here; nothing else spells a subject by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

JOBS_STREAM = "CREWS_JOBS"
TASKS_STREAM = "CREWS_TASKS"
EVENTS_STREAM = "CREWS_EVENTS"
DEAD_LETTER_STREAM = "CREWS_DEAD"

JOBS_SUBMIT = "crews.jobs.submit"
JOBS_CONSUMER = "coordinator"
TASKS_ALL = "crews.tasks.>"
EVENTS_ALL = "crews.events.>"
JOB_SOURCE = "job"
"""The last token of a job's own events subject: what the API and the coordinator publish."""
ROLE_STATUSES_ALL = "crews.events.*.*.*.status"
"""Every job's step statuses from role workers (``role_events_subject``): all the coordinator consumes."""
JOB_LEVEL_EVENTS = f"crews.events.*.{JOB_SOURCE}"
"""Every job's job-level events (the API's and the coordinator's): status, output, approval decisions."""
SIGNALS_ALL = "crews.signals.>"
"""Every job's signals: the job-level statuses pared down to task, context and state (no text, output or metadata)."""
JOB_SIGNALS = "crews.signals.*"
"""What role workers subscribe to (the chart): a stopped job, a decided approval, and nothing of what they say."""
DEAD_ALL = "crews.dead.>"
A2A_PREFIX = "crews.a2a"
INBOX_PREFIX = "_INBOX"
"""nats-py's inbox prefix; a process connected as NATS user ``<user>`` uses ``_INBOX_<user>`` (``user_inbox``)."""

_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def token(name: str) -> str:
    """Check that ``name`` is one NATS subject token (no dots, spaces or wildcards)."""
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"{name!r} cannot be a NATS subject token: use letters, digits, '_' or '-'")
    return name


def task_subject(crew: str, role: str) -> str:
    """Where the coordinator dispatches steps for one role of one crew."""
    return f"crews.tasks.{token(crew)}.{token(role)}"


def role_consumer(crew: str, role: str) -> str:
    """The durable pull consumer that a role's workers share (KEDA reads its lag)."""
    return f"{token(crew)}__{token(role)}"


def job_events_subject(job: str) -> str:
    """Events the API and the coordinator publish for ``job``: job-level status, output, approval decisions."""
    return f"crews.events.{token(job)}.{JOB_SOURCE}"


def job_signals_subject(job: str) -> str:
    """The signals of ``job`` (``bus.contracts.events.signal_of``): what a role's step waits on (stop, approvals)."""
    return f"crews.signals.{token(job)}"


RoleEventKind = Literal["status", "working", "artifact"]
ROLE_EVENT_KINDS: frozenset[str] = frozenset(get_args(RoleEventKind))


def role_events_subject(job: str, crew: str, role: str, kind: RoleEventKind = "status") -> str:
    """Events a worker of ``crew/role`` publishes for its steps of ``job``: ``WORKING`` (``working``), the
    other statuses (``status``) or artifacts.

    The kind is the last token so the coordinator's consumer takes only the statuses it acts on
    (``ROLE_STATUSES_ALL``): a step's start reaches Redis from the worker (``StepKeys.progress``).
    """
    return f"crews.events.{token(job)}.{token(crew)}.{token(role)}.{kind}"


def job_events_filter(job: str) -> str:
    """Every event of ``job``, whoever published it (what followers subscribe to)."""
    return f"crews.events.{token(job)}.>"


def role_events_subjects(crew: str, role: str) -> str:
    """Every job's events of ``crew/role``: what the role's NATS user may publish (the chart)."""
    return f"crews.events.*.{token(crew)}.{token(role)}.*"


@dataclass(frozen=True)
class EventSource:
    """Who published an event, as its subject says: the job's own publishers (``role`` None), or one role."""

    job: str
    crew: str | None = None
    role: str | None = None


def event_source(subject: str) -> EventSource | None:
    """The job and publisher an events subject names; ``None`` for a subject of another shape."""
    parts = subject.split(".")
    if parts[:2] != ["crews", "events"]:
        return None
    if len(parts) == 4 and parts[3] == JOB_SOURCE:
        return EventSource(parts[2])
    if len(parts) == 6 and parts[5] in ROLE_EVENT_KINDS:
        return EventSource(parts[2], parts[3], parts[4])
    return None


def dead_letter_subject(stream: str, consumer: str) -> str:
    """Where a message that reached max deliveries is recorded."""
    return f"crews.dead.{token(stream)}.{token(consumer)}"


def user_inbox(user: str) -> str:
    """The inbox prefix of NATS user ``user``: the chart lets it subscribe to ``_INBOX_<user>.>`` only."""
    return f"{INBOX_PREFIX}_{'.'.join(token(part) for part in user.split('.'))}"


def a2a_subject(agent: str) -> str:
    """Core request-reply subject of an A2A agent on NATS; ``agent`` may be ``<crew>.<role>``."""
    return f"{A2A_PREFIX}.{'.'.join(token(part) for part in agent.split('.'))}"
