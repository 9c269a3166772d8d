"""The checkpointed tool loop: each LLM answer and each tool result of a step is recorded before the loop goes on.

One hash per job, ``StepKeys.turns`` (``crews:{job:<id>}:turns``), holds the
running steps' loops under ``StepKeys.turn_field``:

| field | value |
|---|---|
| ``<step>:prompt`` | the first messages (JSON), so a resumed run asks with the same prompt |
| ``<step>:llm:<turn>`` | the ``turn``-th LLM answer (``ChatResult`` JSON; turns count from 1) |
| ``<step>:tool:<turn>:<call>`` | the result of the ``call``-th tool call (from 1) of that answer |

The prompt is written with the first answer (one round trip): a run that
crashed before its first answer was recorded has nothing to resume, so the
next one builds its prompt afresh. An answer that ends the loop (the engine
says so with ``final``) is not written at all: the step's result, written
next, holds it, and the crash window is the same one round trip after the
answer (before any further LLM call or tool, ``flush`` writes what is held).

A redelivered step loads its fields and replays them: recorded answers are not
asked for again (no token is paid twice) and recorded tool results are not run
again (no side effect is repeated). Every field is written with ``HSETNX``, so
two runs of one step at once (a redelivery while the first is still alive)
agree on the first answer recorded. A tool gets ``idempotency_key(turn,
call)`` = ``<job>:<step>:<turn>:<call>``, the same in every run, for the side
effect that ran but whose result was not recorded before a crash.

The worker removes the step's fields once its result is recorded (``clear``);
the job store expires the hash with the job's other keys.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from bus.contracts.keys import StepKeys
from inference.results import ChatResult

if TYPE_CHECKING:
    import redis.asyncio as aioredis

Message = dict[str, Any]

# Delete one step's fields of the turns hash (fields are prefixed with "<step>:").
_CLEAR = """
local deleted = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, #ARGV[1]) == ARGV[1] then
    redis.call('HDEL', KEYS[1], field)
    deleted = deleted + 1
  end
end
return deleted
"""


class StepCheckpoint:
    """One step's recorded turns; without a key (``""``) nothing is recorded and everything runs."""

    def __init__(
        self, client: aioredis.Redis | None, key: str, job: str, step: str, recorded: dict[str, str]
    ) -> None:
        self._redis, self.key, self.job, self.step = client, key, job, step
        self._recorded = recorded
        self._unwritten: dict[str, Callable[[], str]] = {}  # the prompt (and a final answer), until written
        self.resumed_turns = sum(1 for field in recorded if field.startswith(f"{step}:llm:"))
        """LLM answers this run found recorded by an earlier run (0: a fresh start)."""
        self.resumed_tools = sum(1 for field in recorded if field.startswith(f"{step}:tool:"))

    @classmethod
    async def load(cls, client: aioredis.Redis, key: str, job: str, step: str) -> StepCheckpoint:
        """The step's turns recorded so far (none on a first run)."""
        if not key:
            return cls.off(job, step)
        raw: dict[str, str] = await client.hgetall(key)
        return cls.of_hash(client, key, job, step, raw)

    @classmethod
    def of_hash(
        cls, client: aioredis.Redis, key: str, job: str, step: str, raw: dict[str, str]
    ) -> StepCheckpoint:
        """The step's turns from the job's whole turns hash ``raw`` (read by the caller)."""
        prefix = StepKeys.turn_field(step, "")
        return cls(client, key, job, step, {k: v for k, v in raw.items() if k.startswith(prefix)})

    @classmethod
    def off(cls, job: str, step: str) -> StepCheckpoint:
        """A checkpoint that records nothing (a step carrying no turns key, a test)."""
        return cls(None, "", job, step, {})

    def idempotency_key(self, turn: int, call: int) -> str:
        """The key a tool call receives for its side effects: the same in every run of the step."""
        return f"{self.job}:{self.step}:{turn}:{call}"

    async def prompt(self, messages: list[Message]) -> list[Message]:
        """The step's first messages: the recorded ones when resuming, else ``messages`` (recorded with
        the first answer)."""
        field = StepKeys.turn_field(self.step, "prompt")
        if field in self._recorded:
            loaded: list[Message] = json.loads(self._recorded[field])
            return loaded
        first = list(messages)  # the engine appends to ``messages``: the record is of the first ones
        self._unwritten[field] = partial(json.dumps, first, ensure_ascii=False)
        return messages

    async def answer(
        self,
        turn: int,
        ask: Callable[[], Awaitable[ChatResult]],
        *,
        final: Callable[[ChatResult], bool] = lambda _: False,
    ) -> tuple[ChatResult, bool]:
        """The ``turn``-th LLM answer, and True when it was recorded by an earlier run (not asked again).

        An answer for which ``final`` is true ends the loop: it is held, not written (see the module).
        """
        field = StepKeys.turn_field(self.step, "llm", turn)
        if field in self._recorded:
            return ChatResult.model_validate_json(self._recorded[field]), True
        if set(self._unwritten) - {StepKeys.turn_field(self.step, "prompt")}:  # an answer said final was
            await self.flush()  # not: it is recorded before another is paid for
        result = await ask()
        if self._redis is None:
            return result, False
        if final(result):
            self._unwritten[field] = result.model_dump_json
            return result, False
        text = result.model_dump_json()
        stored = await self._write({**self._take_unwritten(), field: text})
        return (result if stored[field] == text else ChatResult.model_validate_json(stored[field])), False

    async def tool_result(self, turn: int, call: int, run: Callable[[], Awaitable[str]]) -> str:
        """The result of tool call ``call`` of answer ``turn``: recorded, or run now and recorded."""
        return await self._once(StepKeys.turn_field(self.step, "tool", turn, call), run)

    async def clear(self) -> None:
        """Forget the step's turns (its result is recorded)."""
        if self._redis is not None:
            await self._redis.eval(_CLEAR, 1, self.key, StepKeys.turn_field(self.step, ""))

    def clearing(self) -> tuple[str | None, str]:
        """What :meth:`clear` removes, for a script that does it: the turns hash (None: nothing to remove),
        the fields' prefix. A step that recorded nothing (one answer, held) has nothing to remove."""
        if self._redis is None or not self._recorded:
            return None, ""
        return self.key, StepKeys.turn_field(self.step, "")

    async def flush(self) -> None:
        """Write what is held (the prompt, a final answer): before work that a crash must not repeat."""
        if self._unwritten and self._redis is not None:
            await self._write(self._take_unwritten())

    async def _once(self, field: str, produce: Callable[[], Awaitable[str]]) -> str:
        """The recorded value of ``field``, or ``produce()``'s, recorded unless another run was first."""
        if field in self._recorded:
            return self._recorded[field]
        await self.flush()
        value = await produce()
        if self._redis is None:
            self._recorded[field] = value
            return value
        return (await self._write({field: value}))[field]

    def _take_unwritten(self) -> dict[str, str]:
        fields = {name: dump() for name, dump in self._unwritten.items()}
        self._unwritten = {}
        return fields

    async def _write(self, fields: dict[str, str]) -> dict[str, str]:
        """``HSETNX`` each field (one round trip); the values stored: ours, or another run's that was first."""
        assert self._redis is not None
        pipe = self._redis.pipeline(transaction=False)
        for name, text in fields.items():
            pipe.hsetnx(self.key, name, text)
        written = dict(zip(fields, await pipe.execute(), strict=True))
        for name, text in fields.items():
            stored: str | None = None if written[name] else await self._redis.hget(self.key, name)
            self._recorded[name] = stored if stored is not None else text  # another run was first
        return {name: self._recorded[name] for name in fields}
