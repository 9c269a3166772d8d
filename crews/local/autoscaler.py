"""The local autoscaler: each role's worker count follows its own queue depth, as KEDA does in the chart.

Lag is what KEDA's nats-jetstream scaler reads: the role consumer's pending
plus ack-pending messages. The desired count is ``ceil(lag / target_queue_depth)``
within the role's ``scaling.min``..``max``; a role scales out at once and back
in only after ``cooldown_s`` without needing more workers. A round that meets a
NATS or Redis outage is logged and tried again at the next poll: the stack
(and the workers it runs) outlives a server that dies and comes back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from bus import subjects
from bus.outages import OutageRetry
from crews.spec.models import CrewSpec, ScalingSpec

log = logging.getLogger(__name__)


def desired_workers(lag: int, scaling: ScalingSpec) -> int:
    """How many workers a role wants for ``lag`` waiting steps (the chart's KEDA rule)."""
    wanted = math.ceil(lag / scaling.target_queue_depth) if lag > 0 else 0
    return max(scaling.min, min(scaling.max, wanted))


async def role_lag(js: JetStreamContext, crew: str, role: str) -> int:
    """Pending + ack-pending steps of the role's consumer (0 while it does not exist)."""
    try:
        info = await js.consumer_info(subjects.TASKS_STREAM, subjects.role_consumer(crew, role))
    except NotFoundError:
        return 0
    return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


@dataclass
class RoleScale:
    """What the autoscaler knows of one role: its workers and when it last needed them all."""

    crew: str
    role: str
    scaling: ScalingSpec
    count: int = 0
    last_needed: float = field(default_factory=time.monotonic)


class Autoscaler:
    """Decides worker counts per role; ``start``/``stop`` callbacks change the real processes."""

    def __init__(
        self,
        js: JetStreamContext,
        start: Callable[[str, str], Awaitable[None]],
        stop: Callable[[str, str], Awaitable[None]],
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.js, self._start, self._stop = js, start, stop
        self.cooldown_s, self._clock = cooldown_s, clock
        self.roles: dict[tuple[str, str], RoleScale] = {}

    def track(self, spec: CrewSpec) -> None:
        """Manage every role of ``spec`` (a crew registered since the last call)."""
        for key, role in spec.all_roles().items():
            if (spec.name, key) not in self.roles:
                self.roles[(spec.name, key)] = RoleScale(spec.name, key, role.scaling)

    async def step(self) -> dict[str, int]:
        """One round: read each role's lag, scale it; returns ``{"crew/role": workers}``."""
        for scale in self.roles.values():
            want = desired_workers(await role_lag(self.js, scale.crew, scale.role), scale.scaling)
            now = self._clock()
            if want >= scale.count:
                scale.last_needed = now
            while scale.count < want:
                await self._start(scale.crew, scale.role)
                scale.count += 1
            if want < scale.count and now - scale.last_needed >= self.cooldown_s:
                while scale.count > want:
                    await self._stop(scale.crew, scale.role)
                    scale.count -= 1
        return {f"{s.crew}/{s.role}": s.count for s in self.roles.values()}

    async def run(
        self,
        poll_s: float,
        stop: asyncio.Event,
        before: Callable[[], Awaitable[None]] | None = None,
        after: Callable[[dict[str, int]], Awaitable[None]] | None = None,
    ) -> None:
        """Scale every ``poll_s`` until ``stop``; ``before`` may ``track`` new crews, ``after`` sees the counts."""
        retry = OutageRetry(log, "scaling round", poll_s)
        while not stop.is_set():
            with retry.round():
                if before is not None:
                    await before()
                counts = await self.step()
                if after is not None:
                    await after(counts)
            await retry.pause(stop)
