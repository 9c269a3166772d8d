"""Every NATS subject, stream and consumer name crews uses (docs/architecture.md, "Subjects and streams").

The Helm chart, the KEDA triggers and the local autoscaler read the same names
from here; nothing else spells a subject by hand.
"""

from __future__ import annotations

import re

JOBS_STREAM = "CREWS_JOBS"
TASKS_STREAM = "CREWS_TASKS"
EVENTS_STREAM = "CREWS_EVENTS"
DEAD_LETTER_STREAM = "CREWS_DEAD"

JOBS_SUBMIT = "crews.jobs.submit"
JOBS_CONSUMER = "coordinator"
TASKS_ALL = "crews.tasks.>"
EVENTS_ALL = "crews.events.>"
DEAD_ALL = "crews.dead.>"
A2A_PREFIX = "crews.a2a"
PUSH_CONSUMER = "a2a-push"
"""The durable consumer of ``CREWS_EVENTS`` that turns job events into A2A push notifications."""

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


def events_subject(job: str) -> str:
    """Status and artifact events of one job."""
    return f"crews.events.{token(job)}"


def dead_letter_subject(stream: str, consumer: str) -> str:
    """Where a message that reached max deliveries is recorded."""
    return f"crews.dead.{token(stream)}.{token(consumer)}"


def a2a_subject(agent: str) -> str:
    """Core request-reply subject of an A2A agent on NATS; ``agent`` may be ``<crew>.<role>``."""
    return f"{A2A_PREFIX}.{'.'.join(token(part) for part in agent.split('.'))}"
