"""CrewAI's own virtualenv, made on first use under the project's cache folder.

CrewAI is installed beside the project's venv, not into it: the ``crewai``
extra pins ``pydantic<2.13`` and ``openai<3``, so installing it into
``.venv`` would downgrade what every other crews process (and test) runs on,
and the benchmark would no longer measure the service as it ships. The
baseline script needs nothing but CrewAI itself.

The requirement is read from pyproject's ``crewai`` extra, so the baseline
runs the CrewAI version the project declares. The venv lives at
``$CREWS_LOCAL_CACHE_DIR/crewai-<hash of the requirement>/venv``, made through
``inference.local.install`` (interrupted installs are redone, concurrent ones
wait for each other).
"""

from __future__ import annotations

import hashlib
import sys
import tomllib
from pathlib import Path

from inference.cache_dir import default_cache_dir
from inference.local.install import InstallError, ensure_venv

ROOT = Path(__file__).resolve().parents[1]


def requirement() -> list[str]:
    """The ``crewai`` extra of pyproject.toml, e.g. ``["crewai>=1.0"]``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra: list[str] = project["optional-dependencies"]["crewai"]
    return extra


def venv_dir() -> Path:
    """Where the CrewAI venv for the declared requirement lives."""
    digest = hashlib.sha1(" ".join(requirement()).encode()).hexdigest()[:12]
    return default_cache_dir() / f"crewai-{digest}" / "venv"


def python() -> Path:
    return venv_dir() / "bin" / "python"


def _say(message: str) -> None:
    sys.stderr.write(f"[install] {message}\n")


def _quiet(message: str) -> None:
    pass


def ensure(log: bool = True) -> Path:
    """The CrewAI venv's interpreter, after creating the venv and installing CrewAI if needed."""
    ensure_venv(
        venv_dir(),
        requirement(),
        what=f"CrewAI ({' '.join(requirement())})",
        python=sys.executable,
        advice="Check that the package registry is reachable and run it again; the step starts over.",
        progress=_say if log else _quiet,
    )
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
