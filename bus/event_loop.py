"""The event loop every long-lived crews process runs on: uvloop when installed, else asyncio's.

uvloop (libuv) runs the same coroutines with a cheaper loop and transports:
in ``bench.stepcost``, run alternately on both loops, a worker's step cost
20 % less CPU and a coordinator's 10 to 15 % less (bench/FINDINGS.md).
``CREWS_EVENT_LOOP=asyncio`` keeps the standard loop (to compare, or to debug
with asyncio's debug mode).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
EVENT_LOOP_ENV = "CREWS_EVENT_LOOP"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on uvloop unless ``CREWS_EVENT_LOOP=asyncio`` or uvloop is missing."""
    if os.environ.get(EVENT_LOOP_ENV, "uvloop").lower() != "asyncio":
        try:
            import uvloop
        except ImportError:  # not on this platform (uvloop has no Windows build): the standard loop
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)
