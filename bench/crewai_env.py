"""The CrewAI baseline's interpreter: the crewai engine's venv (``crews.local.crewai_env``).

CrewAI is installed beside the project's venv, not into it: it pins
``pydantic<2.13`` and ``openai<3``, so installing it into ``.venv`` would
downgrade what every other crews process (and test) runs on. The baseline
script needs nothing but CrewAI itself; it runs in the venv the crewai engine's
workers use (crews and CrewAI resolved together), so one venv serves both.
"""

from __future__ import annotations

import sys
from pathlib import Path

from crews.local import crewai_env
from inference.local.install import InstallError

ROOT = crewai_env.ROOT


def python() -> Path:
    return crewai_env.python()


def ensure(log: bool = True) -> Path:
    """The CrewAI venv's interpreter, after creating the venv and installing CrewAI if needed."""
    crewai_env.ensure(log=log)
    return python()


def main() -> None:
    try:
        ensure()
    except InstallError as exc:
        sys.exit(f"error: {exc}")
    except KeyboardInterrupt:
        sys.exit("interrupted: the CrewAI venv is incomplete; the next run redoes it")


if __name__ == "__main__":
    main()
