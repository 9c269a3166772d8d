"""The job's shared memory: a blackboard in Redis (``keys.memory``, a hash key → text) for a crew's roles.

Roles read and write it with the built-in tools ``memory_read`` and
``memory_write`` (``roles.tools.registry``), and see its contents in each step's prompt.
Values are text; a role that wants structure writes JSON text. The whole memory
is kept under ``max_chars`` (``CREWS_MEMORY_MAX_CHARS``): a write that would pass
it is refused with a ``ToolError`` the model sees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roles.errors import ToolError

if TYPE_CHECKING:
    from bus.redis_client import RedisClient


# Write ARGV[1] = ARGV[2] unless the memory would then hold more than ARGV[3] characters; 1: written.
_WRITE = """
local total = string.len(ARGV[2])
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if field ~= ARGV[1] then total = total + redis.call('HSTRLEN', KEYS[1], field) + string.len(field) end
end
if total + string.len(ARGV[1]) > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""
DEFAULT_MAX_CHARS = 256_000


class SharedMemory:
    """One job's shared memory, at most ``max_chars`` characters (keys and values)."""

    def __init__(
        self,
        client: RedisClient,
        key: str,
        *,
        max_chars: int = DEFAULT_MAX_CHARS,
        at_start: dict[str, str] | None = None,
    ) -> None:
        self._redis = client
        self.key = key
        self.max_chars = max_chars
        self._write = client.register_script(_WRITE)
        self._at_start = at_start

    async def at_start(self) -> dict[str, str]:
        """The memory as the step starts: read with the step's start when the worker did, else now."""
        if self._at_start is not None:
            return dict(self._at_start)
        return await self.read_all()

    async def read(self, name: str) -> str | None:
        value: str | None = await self._redis.hget(self.key, name)
        return value

    async def read_all(self) -> dict[str, str]:
        values: dict[str, str] = await self._redis.hgetall(self.key)
        return values

    async def write(self, name: str, value: str) -> None:
        if not await self._write(keys=[self.key], args=[name, value, self.max_chars]):
            raise ToolError(
                f"the shared memory is full (at most {self.max_chars} characters): overwrite or shorten "
                "an entry instead of adding one"
            )
