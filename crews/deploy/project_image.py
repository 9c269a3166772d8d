"""Where a CrewAI project's code lives in its image, and what the image is called.

``python -m images.build --project DIR`` builds ``<repository>:<tag>`` FROM the crews-crewai
image with the project's package directory at ``/opt/crews/projects/<package>`` and
``CREWS_PROJECT_PATHS`` naming it; ``crews helm values`` gives the roles that use the
project's code that image and those ``projectPaths``. Both read these names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

PROJECTS_DIR = PurePosixPath("/opt/crews/projects")
BUILD_COMMAND = "python -m images.build --project DIR"


def project_path(package: str) -> str:
    """The package directory of ``package`` in the project image."""
    return str(PROJECTS_DIR / package)


def project_repository(packages: Iterable[str]) -> str:
    """The image's repository: ``crews-project-<package>`` (lowercase; packages joined by '-')."""
    names = sorted({re.sub(r"[^a-z0-9]+", "-", package.lower()).strip("-") for package in packages})
    return "crews-project-" + "-".join(name for name in names if name)
