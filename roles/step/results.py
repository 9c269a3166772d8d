"""Step results in the job's results hash: written once per step, whoever finishes first.

A result is ``{"output", "data", "role", "worker", "usage": {"input_tokens", "output_tokens", "cost_usd"}, "duration_s"}``
under the step's id. ``HSETNX`` makes the write once-only: a worker that ran a
redelivered step after another had recorded it gets the first result back and
reports that one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bus.contracts.result import StepResult

__all__ = ["ResultStore", "StepResult"]

if TYPE_CHECKING:
    from bus.redis_client import RedisClient
    from roles.step.checkpoint import StepCheckpoint


class ResultStore:
    """One job's results hash."""

    def __init__(self, client: RedisClient, key: str) -> None:
        self._redis = client
        self.key = key

    async def get(self, step: str) -> StepResult | None:
        raw: str | None = await self._redis.hget(self.key, step)
        return None if raw is None else StepResult.model_validate_json(raw)

    async def record(
        self, step: str, result: StepResult, *, clearing: StepCheckpoint | None = None
    ) -> tuple[StepResult, bool]:
        """Write ``result`` unless the step has one; returns the stored result and whether it is ours.

        ``clearing``: the step's checkpoint, removed in the same round trip (once a result is
        stored, whoever wrote it, the turns are not needed: a redelivery replays the result).
        """
        pipe = self._redis.pipeline(transaction=False)
        pipe.hsetnx(self.key, step, result.model_dump_json())
        if clearing is not None:
            clearing.clear_in(pipe)
        written, *_ = await pipe.execute()
        if written:
            return result, True
        stored = await self.get(step)
        if stored is None:  # the job's keys expired between the two calls
            raise LookupError(f"result of step {step} vanished from {self.key}")
        return stored, False
