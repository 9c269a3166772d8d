"""Waiting on a condition that has no event to wake on (a Redis value, a file's lines): check, then check again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 30.0, what: str = "") -> T:
    """The first truthy value ``check()`` returns; ``TimeoutError`` (naming ``what``) after ``timeout``."""
    async with asyncio.timeout(timeout):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.05)
    raise AssertionError(f"unreachable: {what}")


async def all_acked(js: JetStreamContext, stream: str, consumer: str, timeout: float = 10.0) -> ConsumerInfo:
    """The consumer's info once none of its deliveries waits for an ack.

    The server applies an ack some time after it arrives (flushed is not yet
    counted), so an info read right after the last ack may still count it.
    """

    async def check() -> ConsumerInfo | None:
        info = await js.consumer_info(stream, consumer)
        return info if info.num_ack_pending == 0 else None

    return await eventually(check, timeout, f"{stream}/{consumer} with no ack pending")
