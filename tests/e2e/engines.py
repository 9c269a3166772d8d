"""The engines the contract tests run against, and the ``crews`` each one's workers run from.

native and adk workers run from the project's venv; crewai workers from the
CrewAI venv (``crews.local.crewai_env``: crews and CrewAI resolved together,
no google-adk), made on first use (``make test`` makes it beforehand).
"""

from __future__ import annotations

from crews.local import crewai_env
from tests.e2e.stack import CREWS

ENGINES = ["native", "adk", "crewai"]


def crews_executable(engine: str) -> str:
    """The ``crews`` command whose environment can run ``engine``."""
    if engine == "crewai":
        return str(crewai_env.ensure(log=False))
    return CREWS
