"""A CrewAI project's image (``images.project``), built on the session's main image, serves its code to a worker.

The chart runs a project's crewai roles from the image ``python -m images.build --project DIR``
builds FROM crews-crewai. The image tests build only the main image (CrewAI's environment takes
minutes to resolve), so this builds the project image FROM that one: the same steps (the package
at ``/opt/crews/projects/<package>``, ``CREWS_PROJECT_PATHS``, the project's requirements from
wheels made on the host). Inside it, as the image's user, the worker's own loader
(``roles.engines.crewai_project.ProjectCode.from_env``) must find the project's tool by its
``project:`` reference and the tool must run, importing the project's requirement.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from images.project import build_project
from images.tools import image_label, run_in

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800), pytest.mark.xdist_group("images")]

TOOL = """\
import tomli_w


def ledger(entry: str) -> str:
    return tomli_w.dumps({"recorded": entry}).strip()
"""


def _progress(message: str) -> None:
    sys.stderr.write(f"[project image] {message}\n")


@pytest.fixture(scope="module")
def project_image(image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("projects") / "shop_project"
    package = root / "src" / "shop"
    (package / "config").mkdir(parents=True)
    (package / "tools").mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "shop"\nversion = "1.0"\ndependencies = ["tomli-w>=1.0"]\n'
    )
    (package / "config" / "agents.yaml").write_text("clerk: {role: Clerk, goal: Record., backstory: B}\n")
    (package / "config" / "tasks.yaml").write_text(
        "record: {description: Record it., expected_output: Done., agent: clerk}\n"
    )
    (package / "__init__.py").write_text("")
    (package / "tools" / "__init__.py").write_text("")
    (package / "tools" / "ledger.py").write_text(TOOL)
    return build_project([Path(root)], image, tag="test", progress=_progress)


def test_the_workers_loader_finds_and_runs_the_projects_tool_in_the_image(project_image: str) -> None:
    assert project_image == "localhost/crews-project-shop:test"
    assert image_label(project_image, "dev.crews.projects") == "shop"
    script = (
        "import os; from roles.engines.crewai_project import ProjectCode; "
        "tool = ProjectCode.from_env().load('project:shop.tools.ledger:ledger', 'tool'); "
        "print(os.environ['CREWS_PROJECT_PATHS'], os.getuid()); print(tool('one sale')); "
        "print(os.access('/opt/crews/projects/shop/tools/ledger.py', os.W_OK))"
    )
    out = run_in(project_image, ["python3", "-c", script])
    assert out.splitlines() == ["/opt/crews/projects/shop 10001", 'recorded = "one sale"', "False"]


def test_the_projects_requirement_is_installed_and_the_environment_is_consistent(project_image: str) -> None:
    out = run_in(project_image, ["sh", "-c", "python3 -m pip check && python3 -m pip show tomli-w"])
    assert "No broken requirements found." in out
    assert "Location: /opt/crews/" in out
