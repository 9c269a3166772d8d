"""The environment a test gives the processes it starts: the test's own, without its crews settings."""

from __future__ import annotations

import os

# Where every cache the project writes lives: CI points it at a folder the install steps filled, so a
# child that lost it would install the vLLM or CrewAI venv again under ~/.cache/crews, in the test.
KEPT = ("CREWS_LOCAL_CACHE_DIR",)


def child_env(*dropped: str) -> dict[str, str]:
    """``os.environ`` without variables starting with ``CREWS_`` (or ``dropped``), ``CREWS_LOCAL_CACHE_DIR`` kept."""
    prefixes = dropped or ("CREWS_",)
    return {k: v for k, v in os.environ.items() if k in KEPT or not k.startswith(prefixes)}
