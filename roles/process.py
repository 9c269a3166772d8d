"""A role worker process: ``crews role <crew>/<role>`` (or ``python -m roles.process <crew>/<role>``).

It connects to NATS (reconnecting forever), makes sure the streams and the
role's durable consumer exist, starts fetching the role's steps, and prints
``role <crew>/<role> ready``. SIGTERM or SIGINT stops fetching and lets the
steps in hand finish (``CREWS_WORKER_GRACE_S``).

Ready comes first: the path to the ready line imports no LLM client, no Redis
client and no framework. What steps need (``roles.worker``, aiohttp
behind ``inference.client``, ``redis.asyncio``) loads in a thread right after
the ready line; a step fetched before it is loaded waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from bus import event_loop, subjects
from bus.connect import connect
from bus.jetstream.dead_letters import DeadLetter
from bus.jetstream.streams import ensure_role_consumer, prepare_streams
from bus.jetstream.work_loop import Delivery, WorkLoop
from bus.settings import BusSettings
from bus.telemetry import setup_tracing
from inference.settings import InferenceSettings
from roles.settings import RoleSettings
from roles.tools.mcp.config import McpServer, McpSettings

if TYPE_CHECKING:
    from inference.client import LLMPool
    from roles.tools.mcp.provider import McpTools
    from roles.tools.registry import ToolRegistry
    from roles.worker import RoleWorker

log = logging.getLogger(__name__)


class DeferredWorker:
    """The ``RoleWorker`` with its LLM pool and Redis client, built in the background after the ready line."""

    def __init__(
        self,
        nc: NATS,
        crew: str,
        role: str,
        settings: RoleSettings,
        inference: InferenceSettings,
        tools: ToolRegistry | None = None,
        mcp_servers: dict[str, McpServer] | None = None,
    ) -> None:
        self._nc, self._crew, self._role, self._tools = nc, crew, role, tools
        self._settings, self._inference = settings, inference
        self._mcp_servers = mcp_servers or {}
        self._mcp: McpTools | None = None
        self._task: asyncio.Task[RoleWorker] | None = None
        self._pool: LLMPool | None = None
        self._redis: Any = None

    def warm(self) -> None:
        """Start loading and building now, without waiting."""
        if self._task is None:
            self._task = asyncio.create_task(self._build())

    async def worker(self) -> RoleWorker:
        self.warm()
        assert self._task is not None
        return await asyncio.shield(self._task)

    async def handle(self, delivery: Delivery) -> None:
        await (await self.worker()).handle(delivery)

    async def on_dead(self, dead: DeadLetter) -> None:
        await (await self.worker()).on_dead(dead)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._pool is not None:
            await self._pool.aclose()
        if self._mcp is not None:
            await self._mcp.aclose()
        if self._redis is not None:
            await self._redis.aclose()

    async def _build(self) -> RoleWorker:
        worker_class, pool_class, make_redis = await asyncio.to_thread(_load_runtime)
        self._pool = pool_class(self._inference)
        self._redis = make_redis(self._settings)
        if self._mcp_servers:
            from roles.tools.mcp.provider import McpTools

            self._mcp = McpTools(self._mcp_servers)
        worker = worker_class(
            self._nc,
            self._redis,
            self._pool,
            self._settings,
            crew=self._crew,
            role=self._role,
            tools=self._tools,
            mcp=self._mcp,
        )
        await worker.signals.ready()  # the jobs' signals, subscribed before the first step (not by it)
        return worker


def _load_runtime() -> tuple[type[RoleWorker], type[LLMPool], Any]:
    import roles.engines.native  # noqa: F401 - the engine most steps use: loaded now, the first step starts sooner
    from bus.redis_client import redis_client
    from inference.client import LLMPool
    from roles.worker import RoleWorker

    return RoleWorker, LLMPool, redis_client


async def run_role(
    crew: str,
    role: str,
    bus_settings: BusSettings,
    role_settings: RoleSettings,
    inference_settings: InferenceSettings,
    *,
    on_ready: Callable[[], None] | None = None,
    tools: ToolRegistry | None = None,
    mcp_servers: dict[str, McpServer] | None = None,
) -> None:
    """Run one worker of ``crew/role`` until SIGTERM/SIGINT; ``on_ready`` is called once it fetches.

    ``tools``: the worker's tools (default: ``roles.tools.registry.default_registry``).
    """
    nc = await connect(bus_settings, f"role {crew}/{role}")
    js = nc.jetstream()
    deferred = DeferredWorker(nc, crew, role, role_settings, inference_settings, tools, mcp_servers)
    try:
        await prepare_streams(js, bus_settings)
        consumer = await ensure_role_consumer(js, crew, role, bus_settings)
        loop = WorkLoop(
            js,
            subjects.TASKS_STREAM,
            consumer,
            deferred.handle,
            on_dead=deferred.on_dead,
            concurrency=role_settings.worker_concurrency,
            grace_s=role_settings.worker_grace_s,
        )
        ready, stop = asyncio.Event(), asyncio.Event()
        held = await _HeldCalls.subscribe(
            nc, subjects.a2a_subject(f"{crew}.{role}")
        )  # served from the ready line
        agent = asyncio.create_task(
            _serve_a2a(nc, deferred, crew, role, bus_settings.nats_url, ready, stop, held)
        )
        try:
            await _run_until_stopped(loop, _then(on_ready, ready.set), deferred)
        finally:
            stop.set()
            await asyncio.gather(agent, return_exceptions=True)
    finally:
        await deferred.aclose()
        await nc.drain()


def _then(first: Callable[[], None] | None, then: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        if first is not None:
            first()
        then()

    return both


class _HeldCalls:
    """A light subscription in the role agent's queue group that holds requests until the agent loads."""

    def __init__(self) -> None:
        self.msgs: list[Msg] = []
        self.called = asyncio.Event()
        self.sub: Subscription | None = None

    @classmethod
    async def subscribe(cls, nc: NATS, subject: str) -> _HeldCalls:
        held = cls()

        async def hold(msg: Msg) -> None:
            held.msgs.append(msg)
            held.called.set()

        held.sub = await nc.subscribe(subject, queue=subject, cb=hold)
        await nc.flush()
        return held

    async def hand_over(self, nc: NATS) -> None:
        """Stop holding, and publish what was held again for the real server (same reply inbox)."""
        if self.sub is not None:
            await self.sub.unsubscribe()
        for msg in self.msgs:
            await nc.publish(msg.subject, msg.data, reply=msg.reply, headers=msg.headers)


async def _serve_a2a(
    nc: NATS,
    deferred: DeferredWorker,
    crew: str,
    role: str,
    nats_url: str,
    ready: asyncio.Event,
    stop: asyncio.Event,
    held: _HeldCalls,
) -> None:
    """The role as an A2A agent on NATS (``roles.a2a.agent``), loaded on its first request.

    Until then ``held`` takes the requests; once the real server subscribes they are handed
    over to it. A worker that is never called never loads the SDK's server side, which keeps
    its memory down.
    """
    waiting = {asyncio.ensure_future(held.called.wait()), asyncio.ensure_future(stop.wait())}
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    for future in waiting:
        future.cancel()
    if stop.is_set():
        await held.hand_over(nc)
        return
    try:
        from roles.a2a.agent import run_role_agent

        serving = asyncio.Event()
        agent = asyncio.create_task(
            run_role_agent(nc, deferred, crew, role, nats_url, ready=ready, stop=stop, serving=serving)
        )
        await asyncio.wait(
            {agent, asyncio.ensure_future(serving.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        await held.hand_over(nc)
        await agent
    except Exception:  # the agent is an extra door: the worker keeps taking its steps without it
        log.exception("role %s/%s cannot serve A2A on NATS", crew, role)


async def _run_until_stopped(
    loop: WorkLoop, on_ready: Callable[[], None] | None, deferred: DeferredWorker
) -> None:
    events = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        events.add_signal_handler(sig, loop.stop)
    runner = asyncio.create_task(loop.run())
    ready = asyncio.ensure_future(loop.wait_ready())
    try:
        await asyncio.wait({runner, ready}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done() and not runner.done():
            if on_ready is not None:
                on_ready()
            deferred.warm()
        await runner
    finally:
        ready.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            events.remove_signal_handler(sig)


def main(crew: str, role: str, *, tools: ToolRegistry | None = None) -> None:
    """Run a worker with settings from the environment (``CREWS_*``), printing its ready line.

    ``tools``: the Python tools it offers (default: the built-ins and the ``crews.tools`` entry points).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("a2a.client.card_resolver").setLevel(logging.WARNING)  # it logs whole cards at INFO
    shutdown_tracing = setup_tracing(f"crews-role-{crew}-{role}")

    def ready() -> None:
        sys.stdout.write(f"role {crew}/{role} ready\n")
        sys.stdout.flush()

    servers = McpSettings().servers()  # a wrong declaration stops the worker here, with the reason
    try:
        event_loop.run(
            run_role(
                crew,
                role,
                BusSettings(),
                RoleSettings(),
                InferenceSettings(),
                on_ready=ready,
                tools=tools,
                mcp_servers=servers,
            )
        )
    finally:
        shutdown_tracing()


def parse_target(target: str) -> tuple[str, str]:
    """``<crew>/<role>`` → (crew, role); ``ValueError`` saying what a good one looks like."""
    crew, sep, role = target.partition("/")
    if not sep or not crew or not role:
        raise ValueError(f"{target!r}: give the role as <crew>/<role>, e.g. research/writer")
    subjects.token(crew)
    subjects.token(role)
    return crew, role


def _cli(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m roles.process <crew>/<role>")
    try:
        crew, role = parse_target(argv[0])
    except ValueError as exc:
        sys.exit(str(exc))
    main(crew, role)


if __name__ == "__main__":
    _cli(sys.argv[1:])
