"""The CrewAI environment: a venv holding crews itself and CrewAI, for the workers of ``engine: crewai`` roles.

CrewAI cannot share the project's venv (it pins ``pydantic<2.13`` and
``openai<3``; google-adk's OpenTelemetry pin excludes it), but crews and
CrewAI resolve together, so this venv has ``pip install -e <repo>[crewai]``
(an editable install: the worker runs this checkout's code) and no google-adk.
``crews up`` starts the worker of every ``engine: crewai`` role with this
venv's ``crews``; the tests do too. In Kubernetes the same split is the
``crews-crewai`` image.

It lives at ``$CREWS_LOCAL_CACHE_DIR/crewai-<hash>/venv``, the hash of the
checkout's path and its ``pyproject.toml`` (a dependency change makes a new
one), and is made through ``inference.local.install`` (an interrupted install
is redone; two started at once wait for each other).

    python -m crews.local.crewai_env          # make it (``make install-crewai``), print its crews
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from inference.cache_dir import default_cache_dir
from inference.local.install import InstallError, ensure_venv

ROOT = Path(__file__).resolve().parents[2]


def requirement() -> list[str]:
    """What pip installs: this checkout, editable, with its ``crewai`` extra."""
    return ["-e", f"{ROOT}[crewai]"]


def venv_dir() -> Path:
    digest = hashlib.sha1(f"{ROOT}\n".encode() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()[:12]
    return default_cache_dir() / f"crewai-{digest}" / "venv"


def python() -> Path:
    return venv_dir() / "bin" / "python"


def crews_command() -> Path:
    """The ``crews`` command of the CrewAI venv (``crews role <crew>/<role>`` for crewai roles)."""
    return venv_dir() / "bin" / "crews"


def _say(message: str) -> None:
    sys.stderr.write(f"[install] {message}\n")


def _quiet(message: str) -> None:
    pass


def ensure(log: bool = True) -> Path:
    """The CrewAI venv's ``crews``, after making the venv if it is missing or outdated."""
    ensure_venv(
        venv_dir(),
        requirement(),
        what="crews with CrewAI (the crewai engine's venv)",
        python=sys.executable,
        advice="Check that the package registry is reachable and run it again; the step starts over.",
        progress=_say if log else _quiet,
    )
    return crews_command()


def main() -> None:
    try:
        sys.stdout.write(f"{ensure()}\n")
    except InstallError as exc:
        sys.exit(f"error: {exc}")
    except KeyboardInterrupt:
        sys.exit("interrupted: the CrewAI venv is incomplete; the next run redoes it")


if __name__ == "__main__":
    main()
