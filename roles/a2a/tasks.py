"""The A2A tasks of a role's NATS agent, in Redis: any replica of the role answers ``GetTask`` and ``ListTasks``.

Each task is one JSON value (``crews:a2a:{<crew>.<role>}:task:<id>``, kept
``ttl_s``), indexed by time in ``crews:a2a:{<crew>.<role>}:tasks``: one hash
tag per agent, so saving a task and indexing it is one transaction on a Redis
cluster too. Listing reads
the newest ``scan`` tasks and filters and pages them as the SDK's own stores do.

A task saved as ``CANCELED`` while its step runs on another replica is stopped
there: the store marks the step's job ``cancelled`` and announces it on the
job's events, which the step's ``CancelWatch`` hears (``roles.a2a.agent``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from a2a.server.context import ServerCallContext
from a2a.server.tasks import InMemoryTaskStore, TaskStore
from a2a.types import ListTasksRequest, ListTasksResponse, Task, TaskState
from google.protobuf import json_format

if TYPE_CHECKING:
    from bus.redis_client import RedisClient

OnCancel = Callable[[str], Awaitable[None]]


class RedisTaskStore(TaskStore):
    """An a2a-sdk ``TaskStore`` in Redis for the agent ``agent`` (``<crew>.<role>``)."""

    def __init__(
        self,
        client: RedisClient,
        agent: str,
        *,
        ttl_s: int = 24 * 3600,
        scan: int = 1000,
        on_cancel: OnCancel | None = None,
    ) -> None:
        self._redis = client
        self._prefix = f"crews:a2a:{{{agent}}}"  # the agent's keys share one cluster slot
        self._ttl_s, self._scan = ttl_s, scan
        self._on_cancel = on_cancel

    def _key(self, task_id: str) -> str:
        return f"{self._prefix}:task:{task_id}"

    async def save(self, task: Task, context: ServerCallContext) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(task.id), json_format.MessageToJson(task), ex=self._ttl_s)
            pipe.zadd(f"{self._prefix}:tasks", {task.id: time.time()})
            pipe.zremrangebyscore(f"{self._prefix}:tasks", "-inf", time.time() - self._ttl_s)
            await pipe.execute()
        if task.status.state == TaskState.TASK_STATE_CANCELED and self._on_cancel is not None:
            await self._on_cancel(task.id)

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        raw: str | None = await self._redis.get(self._key(task_id))
        return None if raw is None else json_format.Parse(raw, Task(), ignore_unknown_fields=True)

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        ids: list[str] = await self._redis.zrevrange(f"{self._prefix}:tasks", 0, self._scan - 1)
        found = InMemoryTaskStore()
        for task_id in ids:
            task = await self.get(task_id, context)
            if task is not None:
                await found.save(task, context)
        return await found.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        await self._redis.delete(self._key(task_id))
        await self._redis.zrem(f"{self._prefix}:tasks", task_id)
