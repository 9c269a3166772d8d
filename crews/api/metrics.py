"""Prometheus metrics of the API: HTTP requests (kept per process) and the crews' state (read at each scrape).

The state gauges are read from Redis and JetStream when Prometheus scrapes, so
every API replica reports the same values (aggregate them with ``max``, not
``sum``):

- ``crews_jobs{status}`` and ``crews_steps{state}``: jobs and their steps among
  the most recent ``CREWS_API_SCAN_JOBS`` jobs;
- ``crews_queue_depth{crew,role}``: steps waiting for or held by a role's
  workers (the role consumer's ``num_pending + num_ack_pending``, what KEDA
  scales on); before the consumer exists, the messages on the role's subject;
- ``crews_tokens{crew,role,kind}`` and ``crews_llm_calls{crew,role}``: LLM
  usage of those jobs, per role; ``crews_cost_usd_total{crew,role}``: what it
  cost (USD, priced by the workers at ``CREWS_LLM_PRICES``; sum over roles for
  a crew);
- ``crews_step_duration_seconds{crew,role}``: how long the steps of those jobs
  took in their workers (histogram);
- ``crews_workers{crew,role}``: worker processes per role that the local
  autoscaler (``crews up``) runs; in Kubernetes, read KEDA's replicas instead.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from bus import subjects
from crews.jobs.store import RedisJobStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class RequestMetrics:
    """HTTP request counts and latencies of this process, by route template (not by raw path)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = PromCounter(
            "crews_api_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "crews_api_request_duration_seconds",
            "Time to answer an HTTP request (event streams: until the stream ends)",
            ["method", "route"],
            registry=self.registry,
        )

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            status = 500
            start = time.perf_counter()

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                route = getattr(scope.get("route"), "path", "unmatched")
                self.requests.labels(scope["method"], route, str(status)).inc()
                self.latency.labels(scope["method"], route).observe(time.perf_counter() - start)

        return measured


@dataclass
class Snapshot:
    """The crews' state at one scrape."""

    jobs: Counter[str] = field(default_factory=Counter)
    steps: Counter[str] = field(default_factory=Counter)
    queue: dict[tuple[str, str], int] = field(default_factory=dict)
    tokens: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    cost: dict[tuple[str, str], float] = field(default_factory=dict)
    workers: dict[tuple[str, str], int] = field(default_factory=dict)
    durations: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    eval_scores: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    evals_failed: Counter[tuple[str, str, str]] = field(default_factory=Counter)


async def take_snapshot(store: RedisJobStore, js: JetStreamContext, scan_jobs: int) -> Snapshot:
    snapshot = Snapshot()
    for record in await store.list_jobs(limit=scan_jobs):
        snapshot.jobs[record.status] += 1
        snapshot.steps.update(record.steps.values())
        for role, usage in (await store.usage(record.id)).items():
            snapshot.tokens[record.crew, role, "input"] += usage.input_tokens
            snapshot.tokens[record.crew, role, "output"] += usage.output_tokens
            snapshot.calls[record.crew, role] += usage.calls
            key = (record.crew, role)
            snapshot.cost[key] = snapshot.cost.get(key, 0.0) + usage.cost_usd
        for result in (await store.results(record.id)).values():
            if result.duration_s is not None:
                snapshot.durations.setdefault((record.crew, result.role), []).append(result.duration_s)
            for score in result.evals:
                key3 = (record.crew, result.role, score.name)
                snapshot.eval_scores.setdefault(key3, []).append(score.score)
                snapshot.evals_failed[key3] += 0 if score.passed else 1
    snapshot.queue = await queue_depths(store, js)
    for name, count in (await store.worker_counts()).items():
        crew, _, role = name.partition("/")
        snapshot.workers[crew, role] = count
    return snapshot


async def queue_depths(store: RedisJobStore, js: JetStreamContext) -> dict[tuple[str, str], int]:
    """Steps waiting for or held by each role of every registered crew."""
    depths: dict[tuple[str, str], int] = {}
    waiting: dict[str, int] | None = None
    for name in await store.list_crews():
        spec = await store.get_crew(name)
        for role in spec.all_roles():
            try:
                info = await js.consumer_info(subjects.TASKS_STREAM, subjects.role_consumer(name, role))
            except NotFoundError:
                waiting = waiting if waiting is not None else await _messages_by_subject(js)
                depths[name, role] = waiting.get(subjects.task_subject(name, role), 0)
            else:
                depths[name, role] = (info.num_pending or 0) + (info.num_ack_pending or 0)
    return depths


async def _messages_by_subject(js: JetStreamContext) -> dict[str, int]:
    try:
        info = await js.stream_info(subjects.TASKS_STREAM, subjects_filter=subjects.TASKS_ALL)
    except NotFoundError:
        return {}
    return dict(info.state.subjects or {})


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        yield _gauge("crews_jobs", "Recent jobs by status", ["status"], {(k,): v for k, v in s.jobs.items()})
        yield _gauge(
            "crews_steps", "Steps of recent jobs by state", ["state"], {(k,): v for k, v in s.steps.items()}
        )
        yield _gauge(
            "crews_queue_depth", "Steps waiting for or held by a role's workers", ["crew", "role"], s.queue
        )
        yield _gauge(
            "crews_tokens", "LLM tokens of recent jobs per role", ["crew", "role", "kind"], dict(s.tokens)
        )
        yield _gauge("crews_llm_calls", "LLM calls of recent jobs per role", ["crew", "role"], dict(s.calls))
        yield _gauge(
            "crews_cost_usd_total",
            "USD spent on the LLM by recent jobs per role",
            ["crew", "role"],
            dict(s.cost),
        )
        yield _histogram(
            "crews_step_duration_seconds", "Time a step took in its worker", ["crew", "role"], s.durations
        )
        yield _gauge("crews_workers", "Worker processes per role (local stack)", ["crew", "role"], s.workers)
        yield _gauge(
            "crews_eval_score",
            "Mean eval score (0..1) of recent jobs' steps per role and eval",
            ["crew", "role", "eval"],
            {key: sum(values) / len(values) for key, values in s.eval_scores.items()},
        )
        yield _gauge(
            "crews_evals_failed",
            "Failed evals of recent jobs' steps per role and eval",
            ["crew", "role", "eval"],
            dict(s.evals_failed),
        )


def _gauge(name: str, doc: str, labels: list[str], values: Mapping[Any, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


STEP_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def _histogram(
    name: str, doc: str, labels: list[str], values: dict[tuple[str, str], list[float]]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key, observed in sorted(values.items()):
        buckets = [(str(b), sum(1 for v in observed if v <= b)) for b in STEP_BUCKETS]
        family.add_metric(list(key), [*buckets, ("+Inf", len(observed))], sum_value=sum(observed))
    return family


def render(snapshot: Snapshot, requests: RequestMetrics) -> bytes:
    """Prometheus text of the scrape's snapshot and the process's request metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return generate_latest(registry) + generate_latest(requests.registry)
