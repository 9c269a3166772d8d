"""The crewai workers import a CrewAI project's code only from the package directories the operator declared."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from roles.engines.crewai_project import ProjectCode, ProjectSettings
from roles.errors import StepFailed


def package(root: Path, name: str, init: bool) -> Path:
    directory = root / name
    (directory / "tools").mkdir(parents=True)
    if init:
        (directory / "__init__.py").write_text("LOADED = True\n")
    (directory / "tools" / "custom.py").write_text(
        "from ..helpers import VALUE\n\ndef lookup():\n    return VALUE\n"
    )
    (directory / "helpers.py").write_text("VALUE = 42\n")
    return directory


@pytest.mark.parametrize("init", [True, False], ids=["package", "namespace package"])
def test_a_declared_project_is_imported_as_its_package(tmp_path: Path, init: bool) -> None:
    name = f"shop_{'pkg' if init else 'ns'}_{tmp_path.name[-8:].replace('-', '_')}"
    directory = package(tmp_path, name, init)
    try:
        lookup = ProjectCode([directory]).load(f"project:{name}.tools.custom:lookup", "tool 'lookup'")
        assert lookup() == 42  # relative imports inside the project work
        assert list(sys.modules[name].__path__) == [str(directory.resolve())]
    finally:
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[module]


def test_an_undeclared_package_is_refused_before_anything_is_imported(tmp_path: Path) -> None:
    declared = package(tmp_path, "declared_shop", True)
    package(tmp_path / "elsewhere", "other_shop", True)
    code = ProjectCode([declared])
    with pytest.raises(StepFailed) as caught:
        code.load("project:other_shop.tools.custom:lookup", "tool 'lookup'")
    assert str(caught.value) == (
        "tool 'lookup' 'project:other_shop.tools.custom:lookup' is in package 'other_shop', which is not a "
        "declared CrewAI project (declared: declared_shop): the operator declares a CrewAI project's package "
        "directory in CREWS_PROJECT_PATHS on the crewai workers (`crews up --project DIR` locally)"
    )
    assert "other_shop" not in sys.modules
    with pytest.raises(StepFailed, match="has no 'missing'"):
        code.load("project:declared_shop.helpers:missing", "guardrail")
    del sys.modules["declared_shop"], sys.modules["declared_shop.helpers"]


def test_project_paths_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CREWS_PROJECT_PATHS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert ProjectSettings().project_paths == [tmp_path / "a", tmp_path / "b"]
