"""The engines the contract tests run against, and the ``crews`` each one's workers run from.

native and adk workers run from the project's venv; crewai workers from the
CrewAI venv (``roles.engines.crewai_env``: crews and CrewAI resolved together),
made on first use.
"""

from __future__ import annotations

from tests.e2e.stack import CREWS

ENGINES = ["native", "adk"]


def crews_executable(engine: str) -> str:
    """The ``crews`` command whose environment can run ``engine``."""
    return CREWS
