"""The job's shared memory: a blackboard in Redis (``keys.memory``, a hash key → text) for a crew's roles.

Roles read and write it with the built-in tools ``memory_read`` and
``memory_write`` (``roles.tools.registry``), and see its contents in each step's prompt.
Values are text; a role that wants structure writes JSON text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bus.redis_client import RedisClient


class SharedMemory:
    """One job's shared memory."""

    def __init__(self, client: RedisClient, key: str) -> None:
        self._redis = client
        self.key = key

    async def read(self, name: str) -> str | None:
        value: str | None = await self._redis.hget(self.key, name)
        return value

    async def read_all(self) -> dict[str, str]:
        values: dict[str, str] = await self._redis.hgetall(self.key)
        return values

    async def write(self, name: str, value: str) -> None:
        await self._redis.hset(self.key, name, value)
