"""The CrewAI project's own code, found by import path, only inside the project paths the operator declared.

A crew file never carries code: it names objects of a CrewAI project
(``project:<package>.<module>:<name>``: a tool, a guardrail function, an
output model) or a class of the installed ``crewai_tools``
(``crewai_tools:<Class>``). The operator declares which projects a worker
may import (``CREWS_PROJECT_PATHS``, each a package directory, ``os.pathsep``
between them; ``crews up --project DIR`` sets it), and ``ProjectCode.load``
resolves a reference only there:

- the reference's package must be the name of a declared directory: that
  directory is imported as the package (from its ``__init__.py``, or as a
  namespace package without one), nothing else on ``sys.path`` is searched
  for it, and an undeclared package is refused before anything is imported;
- ``crewai_tools`` is the installed package (the operator allows its tools
  by installing it in the CrewAI environment).

Every failure is a ``StepFailed`` that says what to fix. No CrewAI import
here; the crewai engine turns what is loaded into CrewAI objects.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from roles.errors import StepFailed

PROJECT = "project:"
CREWAI_TOOLS = "crewai_tools:"
DECLARE = (
    "the operator declares a CrewAI project's package directory in CREWS_PROJECT_PATHS on the crewai "
    "workers (`crews up --project DIR` locally)"
)


def _paths(value: Any) -> Any:
    if isinstance(value, str):
        return [part for part in value.split(os.pathsep) if part.strip()]
    return value


class ProjectSettings(BaseSettings):
    """Where the CrewAI projects a crewai worker may import live (prefix ``CREWS_``)."""

    model_config = SettingsConfigDict(env_prefix="CREWS_", extra="ignore")

    project_paths: Annotated[list[Path], NoDecode, BeforeValidator(_paths)] = []


class ProjectCode:
    """Loads objects by reference from the declared projects (and ``crewai_tools``)."""

    def __init__(self, paths: list[Path]) -> None:
        self.packages = {path.resolve().name: path.resolve() for path in paths}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> ProjectCode:
        return cls(ProjectSettings().project_paths)

    def load(self, ref: str, what: str) -> Any:
        """The object ``ref`` names; ``what`` says what it is for (in errors)."""
        if ref.startswith(CREWAI_TOOLS):
            module, attribute = "crewai_tools", ref.removeprefix(CREWAI_TOOLS)
            advice = "install crewai-tools in the CrewAI environment of the crewai workers"
        elif ref.startswith(PROJECT):
            module, _, attribute = ref.removeprefix(PROJECT).rpartition(":")
            self._declare(module.partition(".")[0], ref, what)
            advice = "check the reference against the project's code"
        else:
            raise StepFailed(f"{what} {ref!r} is not a project:... or crewai_tools:... reference")
        try:
            loaded = importlib.import_module(module)
        except ImportError as exc:
            raise StepFailed(
                f"{what} {ref!r}: module {module!r} cannot be imported ({exc}): {advice}"
            ) from exc
        if not hasattr(loaded, attribute):
            raise StepFailed(f"{what} {ref!r}: module {module!r} has no {attribute!r}: {advice}")
        return getattr(loaded, attribute)

    def _declare(self, package: str, ref: str, what: str) -> None:
        """Import the declared directory ``package`` as the package of that name (once)."""
        directory = self.packages.get(package)
        if directory is None:
            declared = ", ".join(sorted(self.packages)) or "none"
            raise StepFailed(
                f"{what} {ref!r} is in package {package!r}, which is not a declared CrewAI project "
                f"(declared: {declared}): {DECLARE}"
            )
        with self._lock:
            existing = sys.modules.get(package)
            if existing is not None:
                if [str(directory)] != list(getattr(existing, "__path__", [])):
                    raise StepFailed(
                        f"{what} {ref!r}: a module named {package!r} is already imported from elsewhere "
                        f"than {directory}: rename the project's package"
                    )
                return
            init = directory / "__init__.py"
            if init.is_file():
                spec = importlib.util.spec_from_file_location(
                    package, init, submodule_search_locations=[str(directory)]
                )
            else:
                spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
                spec.submodule_search_locations = [str(directory)]
            assert spec is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[package] = module
            try:
                if spec.loader is not None:
                    spec.loader.exec_module(module)
            except Exception as exc:  # the project's own code: whatever it raises, the step says so
                del sys.modules[package]
                raise StepFailed(
                    f"{what} {ref!r}: the project package {package!r} fails to load: {exc}"
                ) from exc
