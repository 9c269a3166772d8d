"""The CrewAI baseline's own virtualenv, ``.venv-crewai/``, made on first use.

CrewAI is installed beside the project's venv, not into it: the ``crewai``
extra pins ``pydantic<2.13`` and ``openai<3``, so installing it into
``.venv`` would downgrade what every other crews process (and test) runs on,
and the benchmark would no longer measure the service as it ships. The
baseline script needs nothing but CrewAI itself.

The requirement is read from pyproject's ``crewai`` extra, so the baseline
runs the CrewAI version the project declares.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from bench.console import say

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-crewai"
PYTHON = VENV / "bin" / "python"
MARKER = VENV / ".bench-installed"


def requirement() -> list[str]:
    """The ``crewai`` extra of pyproject.toml, e.g. ``["crewai>=1.0"]``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra: list[str] = project["optional-dependencies"]["crewai"]
    return extra


def ready(wanted: str) -> bool:
    if not PYTHON.exists() or not MARKER.exists() or MARKER.read_text() != wanted:
        return False
    check = subprocess.run([str(PYTHON), "-c", "import crewai"], capture_output=True, check=False)
    return check.returncode == 0


def ensure(log: bool = True) -> Path:
    """The baseline's interpreter, after creating the venv and installing CrewAI if needed."""
    wanted = " ".join(requirement())
    if ready(wanted):
        return PYTHON
    if log:
        say(f"installing the CrewAI baseline ({wanted}) into {VENV.name}/ (once; about 2 minutes) ...")
    if not PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    command = [str(PYTHON), "-m", "pip", "install", "--progress-bar", "off", *requirement()]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as pip:
        assert pip.stdout is not None
        for line in pip.stdout:
            if log and line.startswith(("Collecting", "Installing", "Successfully", "ERROR")):
                say(f"  pip: {line.rstrip()[:120]}")
    if pip.returncode != 0:
        raise RuntimeError(f"installing {wanted} into {VENV} failed (pip exit {pip.returncode})")
    MARKER.write_text(wanted)
    return PYTHON
