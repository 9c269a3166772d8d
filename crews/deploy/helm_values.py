"""Crew files → values of the Helm chart (``helm/crews``): one Deployment and ScaledObject per role.

Pure: it reads ``CrewSpec`` models and the names in ``bus.subjects`` and returns
plain data. Every NATS name the chart uses (streams, consumers, subjects, the
JetStream API subjects in the NATS permissions) comes from here, so the chart
and the processes cannot disagree; ``tests/chart`` checks the rendered
objects against ``bus.subjects`` again.

    chart_values(specs) -> ChartValues      (``crews`` and ``bus`` blocks; the rest are chart defaults)
    values_yaml(specs)  -> str              (what ``crews helm values`` prints)

The scaling policy that the chart gives KEDA (poll interval, cooldown,
fallback) is ``SCALING_POLICY``; the local autoscaler reads the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import yaml

from bus import subjects
from crews.deploy.project_image import BUILD_COMMAND, project_path, project_repository
from crews.errors import CrewSpecError
from crews.spec.models import CrewSpec, RoleSpec
from crews.spec.project_refs import role_packages

__all__ = [
    "SCALING_POLICY",
    "BusValues",
    "ChartValues",
    "CrewValues",
    "ImageValues",
    "RoleValues",
    "ScalingPolicy",
    "ScalingValues",
    "bus_values",
    "chart_values",
    "crew_values",
    "role_values",
    "values_yaml",
]


@dataclass(frozen=True)
class ScalingPolicy:
    """How often queue depth is read and how long a role waits before scaling in (chart and local)."""

    polling_interval_s: int = 15
    cooldown_s: int = 300
    fallback_failure_threshold: int = 3


SCALING_POLICY = ScalingPolicy()


class ScalingValues(TypedDict):
    min: int
    max: int
    targetQueueDepth: int


class EgressPort(TypedDict):
    port: int
    protocol: str


class EgressRule(TypedDict):
    ports: list[EgressPort]


class ImageValues(TypedDict):
    repository: str


class RoleValues(TypedDict):
    """One role of one crew: what its workers consume and may do on NATS."""

    engine: str
    stream: str
    consumer: str
    subject: str
    deadLetterSubject: str
    eventsSubject: str
    a2aSubject: str
    a2aPeers: list[str]
    scaling: ScalingValues
    maxExecutionTime: NotRequired[float]
    egress: NotRequired[list[EgressRule]]
    outsideAgent: NotRequired[str]
    mcpServers: NotRequired[list[str]]
    image: NotRequired[ImageValues]
    projectPaths: NotRequired[list[str]]


class CrewValues(TypedDict):
    roles: dict[str, RoleValues]


class BusValues(TypedDict):
    """Stream, consumer and subject names of ``bus.subjects`` that the chart needs."""

    jobsStream: str
    tasksStream: str
    eventsStream: str
    deadLetterStream: str
    jobsSubject: str
    jobsConsumer: str
    tasksSubjects: str
    eventsSubjects: str
    jobEventsSubjects: str
    jobSignalsSubjects: str
    deadLetterSubjects: str
    a2aPrefix: str
    inboxPrefix: str


class ChartValues(TypedDict):
    bus: BusValues
    crews: dict[str, CrewValues]


def bus_values() -> BusValues:
    return BusValues(
        jobsStream=subjects.JOBS_STREAM,
        tasksStream=subjects.TASKS_STREAM,
        eventsStream=subjects.EVENTS_STREAM,
        deadLetterStream=subjects.DEAD_LETTER_STREAM,
        jobsSubject=subjects.JOBS_SUBMIT,
        jobsConsumer=subjects.JOBS_CONSUMER,
        tasksSubjects=subjects.TASKS_ALL,
        eventsSubjects=subjects.EVENTS_ALL,
        jobEventsSubjects=subjects.JOB_LEVEL_EVENTS,
        jobSignalsSubjects=subjects.JOB_SIGNALS,
        deadLetterSubjects=subjects.DEAD_ALL,
        a2aPrefix=subjects.A2A_PREFIX,
        inboxPrefix=subjects.INBOX_PREFIX,
    )


def role_values(crew: str, key: str, role: RoleSpec, packages: Sequence[str] = ()) -> RoleValues:
    """The values of one role: its queue (stream, consumer, subject), A2A subjects, scaling, egress.

    ``packages``: the CrewAI projects whose code its steps import; the role runs their image.
    """
    consumer = subjects.role_consumer(crew, key)
    values = RoleValues(
        engine=role.engine,
        stream=subjects.TASKS_STREAM,
        consumer=consumer,
        subject=subjects.task_subject(crew, key),
        deadLetterSubject=subjects.dead_letter_subject(subjects.TASKS_STREAM, consumer),
        eventsSubject=subjects.role_events_subjects(crew, key),
        a2aSubject=subjects.a2a_subject(f"{crew}.{key}"),
        a2aPeers=[],  # an outside agent's subject comes from the operator's a2aAgents, not the crew file
        scaling=ScalingValues(
            min=role.scaling.min, max=role.scaling.max, targetQueueDepth=role.scaling.target_queue_depth
        ),
    )
    if role.max_execution_time is not None:
        values["maxExecutionTime"] = role.max_execution_time
    if role.engine == "a2a" and role.agent:
        values["outsideAgent"] = role.agent  # declared by the operator in the chart's a2aAgents
    servers = sorted({tool.name.partition(".")[0] for tool in role.tools if "." in tool.name})
    if servers:
        values["mcpServers"] = servers  # the chart lets these roles reach those servers, and no others
    if packages:  # the project's image (python -m images.build --project DIR) holds its code there
        values["image"] = ImageValues(repository=project_repository(packages))
        values["projectPaths"] = [project_path(package) for package in packages]
    return values


def crew_values(spec: CrewSpec) -> CrewValues:
    """Every role that needs a worker, the manager implied by ``manager_llm`` included."""
    packages = role_packages(spec)
    return CrewValues(
        roles={
            key: role_values(spec.name, key, role, packages.get(key, ()))
            for key, role in spec.all_roles().items()
        }
    )


def chart_values(specs: Sequence[CrewSpec]) -> ChartValues:
    """The ``bus`` and ``crews`` blocks for these crews; two crews with one name are an error."""
    crews: dict[str, CrewValues] = {}
    for spec in specs:
        if spec.name in crews:
            raise CrewSpecError(
                f"two crew files name the crew {spec.name!r}: crew names must be unique in one release"
            )
        crews[spec.name] = crew_values(spec)
    return ChartValues(bus=bus_values(), crews=crews)


_HEADER = """\
# Values for the crews Helm chart (helm/crews), written by `crews helm values`.
# Crews: {names}
# Names on NATS come from bus/subjects.py; every other setting keeps the chart's
# default (see helm/crews/values.yaml and docs/helm.md) unless you add it here
# or in a second values file:  helm install crews helm/crews -f values.yaml -f site.yaml
"""


_PROJECT_NOTICE = """\
#
# These roles run a CrewAI project's code (project: references), from the project's image:
{roles}
# Build it FROM crews-crewai with `{command}` (the project's directory;
# tag: the chart's appVersion) and push it where the cluster pulls images: set the
# role's image.repository (and tag) to that place in a second values file.
"""


def values_yaml(specs: Sequence[CrewSpec]) -> str:
    values = chart_values(specs)
    header = _HEADER.format(names=", ".join(values["crews"]) or "(none)")
    projects = [
        f"#   {crew}/{key}: {role['image']['repository']} ({', '.join(role['projectPaths'])})"
        for crew, crew_values in values["crews"].items()
        for key, role in crew_values["roles"].items()
        if "image" in role
    ]
    if projects:
        header += _PROJECT_NOTICE.format(roles="\n".join(projects), command=BUILD_COMMAND)
    return header + yaml.safe_dump(dict(values), sort_keys=False, default_flow_style=False)
