"""The build context's ``wheels/<image>/``: every third-party package an image installs, as wheels.

An image build fetches nothing: its Containerfile installs with ``pip install --no-index
--find-links wheels/<image>`` (a build here cannot reach the package registry, and an image
built from a fixed set of wheels is reproducible). The wheels are made on the host with
``pip wheel`` of the project with the image's extra (the project itself is the root of the
resolution: pip's resolver finds a solution from it that it does not find from the flat list of
requirements), its own wheel then dropped (the builder stage builds it from the source), plus
the build backend (setuptools) so that the builder stage can build it.
``requirements.txt`` beside them pins exactly what pip resolved; the Containerfile installs
those pins first (a layer that stays cached while the dependencies do not change), then the
project, resolved again against the same folder.

pip evaluates dependency markers (``python_full_version < "3.11.3"`` …) for the interpreter it
runs on, so the wheels are made by a host interpreter of the base image's Python version
(``interpreter_for``: e.g. Debian's ``/usr/bin/python3``, 3.11.2, for the local bookworm base).
The folder is cached under ``$CREWS_LOCAL_CACHE_DIR/images/wheels-<image>-<hash>/`` through
``inference.local.install.ensure`` (a change to the requirements or the Python redoes it) and
hard-linked into the context.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from images.tools import ROOT, project
from inference.cache_dir import default_cache_dir
from inference.local.install import Progress, Step, ensure

CONTEXT = ROOT / "wheels"
BUILD_REQUIREMENTS = ("setuptools>=69", "wheel")
# Needed to build the project's wheel in the builder stage, not installed into the image's venv.
BUILD_ONLY = {"setuptools", "wheel"}


def requirements(extra: str) -> list[str]:
    """The project's dependencies and those of ``extra``, as pyproject.toml declares them."""
    table = project()
    deps = list(table["dependencies"])  # type: ignore[call-overload]
    extras: dict[str, list[str]] = table["optional-dependencies"]  # type: ignore[assignment]
    return [*deps, *extras[extra]]


def stamp(extra: str, python_version: str) -> str:
    described = [*requirements(extra), *BUILD_REQUIREMENTS, python_version, platform.machine()]
    return hashlib.sha1("\n".join(described).encode()).hexdigest()[:12]


def python_version(python: str) -> str:
    """``platform.python_version()`` of the interpreter ``python``, or "" if it does not run."""
    try:
        done = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def interpreter_for(version: str) -> str:
    """A host interpreter with pip of exactly Python ``version``; else this one (same minor: see the log)."""
    minor = ".".join(version.split(".")[:2])
    candidates = [sys.executable, "/usr/bin/python3", shutil.which(f"python{minor}") or ""]
    for python in filter(None, candidates):
        if python_version(python) == version:
            return python
    return sys.executable


def pins(folder: Path) -> list[str]:
    """``name==version`` of every wheel in ``folder`` but the build-only ones, sorted."""
    found = []
    for wheel in sorted(folder.glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        normalized = re.sub(r"[-_.]+", "-", name).lower()
        if normalized not in BUILD_ONLY:
            found.append(f"{normalized}=={version}")
    return found


def ensure_wheels(image: str, extra: str, version: str, progress: Progress) -> Path:
    """The cached wheels of ``image`` for Python ``version`` (made with pip wheel if missing)."""
    python = interpreter_for(version)
    made_for = python_version(python)
    target = default_cache_dir() / "images" / f"wheels-{image}-{stamp(extra, made_for)}"

    def build(step: Step) -> None:
        progress(f"wheels of {image}: pip wheel with {python} ({made_for}) into {target} (log: {step.log})")
        if made_for != version:
            progress(f"wheels of {image}: no Python {version} here; markers are evaluated for {made_for}")
        pip = [python, "-m", "pip", "--disable-pip-version-check"]
        step.run(
            [*pip, "wheel", "--quiet", "--wheel-dir", str(target), f"{ROOT}[{extra}]", *BUILD_REQUIREMENTS],
            f"pip wheel of the {image} image's dependencies",
            "Check that the package registry is reachable and run it again; the step starts over.",
        )
        for own in target.glob("crews-*.whl"):
            own.unlink()
        (target / "requirements.txt").write_text("\n".join(pins(target)) + "\n")

    ensure(target, stamp(extra, made_for), build, what=f"wheels of the {image} image", progress=progress)
    return target


def link_into_context(image: str, cached: Path) -> Path:
    """``wheels/<image>/`` in the build context, the cached wheels hard-linked (copied across devices)."""
    folder = CONTEXT / image
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for item in cached.iterdir():
        if item.name.startswith("."):
            continue
        try:
            os.link(item, folder / item.name)
        except OSError:
            shutil.copy2(item, folder / item.name)
    return folder


def prepare(image: str, extra: str, version: str, progress: Progress) -> Path:
    """``wheels/<image>/`` for an image whose Python is ``version``."""
    return link_into_context(image, ensure_wheels(image, extra, version, progress))
