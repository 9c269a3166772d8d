"""Long-lived processes run on uvloop unless told otherwise (bus.event_loop)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from bus import event_loop


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_processes_run_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.EVENT_LOOP_ENV, raising=False)
    assert issubclass(event_loop.run(_loop_type()), uvloop.Loop)


def test_the_standard_loop_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.EVENT_LOOP_ENV, "asyncio")
    assert not issubclass(event_loop.run(_loop_type()), uvloop.Loop)
