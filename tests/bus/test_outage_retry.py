"""OutageRetry: the rule the coordinator's ticks, crews up's autoscaler and push delivery go on by."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.exceptions

from bus.outages import OutageRetry

log = logging.getLogger("tests.outage_retry")


def test_failed_rounds_back_off_up_to_the_ceiling_and_the_first_good_one_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    retry = OutageRetry(log, "tick", 0.5, max_s=1.5, back="checked every 0.5 s")
    with caplog.at_level(logging.INFO, logger=log.name):
        pauses = []
        for _ in range(3):
            with retry.round():
                raise redis.exceptions.ConnectionError("refused")
            pauses.append(retry.pause_s)
        with retry.round():
            pass
    assert pauses == [1.0, 1.5, 1.5]
    assert (retry.failing, retry.pause_s) == (False, 0.5)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "tick failed (ConnectionError: refused): trying again in 1.0 s"
    assert messages[-1] == "tick works again: checked every 0.5 s"


def test_without_a_ceiling_the_pause_stays_and_other_errors_are_raised() -> None:
    retry = OutageRetry(log, "scaling round", 0.2)
    with retry.round():
        raise TimeoutError
    assert (retry.failing, retry.pause_s) == (True, 0.2)
    with pytest.raises(ValueError), retry.round():
        raise ValueError("a bug, not an outage")


async def test_pause_returns_at_once_when_stopped() -> None:
    stop = asyncio.Event()
    stop.set()
    assert await OutageRetry(log, "push: delivery round", 3600).pause(stop)
