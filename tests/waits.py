"""Waiting on a condition that has no event to wake on (a Redis value, a file's lines): check, then check again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

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
