"""A CrewAI project's image: crews-crewai plus the project's package and its own requirements.

    python -m images.build --project DIR [--project DIR2] [--from IMAGE] [--tag TAG]

``DIR`` is the CrewAI project (or its package directory); its package is where crew.py is
(``crews.spec.crewai.importer.project_package_dir``, as for ``crews up --project``). FROM the
crews-crewai image (built first, or found up to date, unless ``--from`` names another), the
image adds:

- each package directory at ``/opt/crews/projects/<package>`` (``crews.deploy.project_image``),
  owned by root, and ``CREWS_PROJECT_PATHS`` naming them: the crewai workers import the
  project's tools, guardrails and output models from there and nowhere else;
- the project's own requirements (``requirements.txt``, else ``[project].dependencies`` of
  ``pyproject.toml``, in the package directory or a parent up to ``DIR``), installed into the
  workers' venv with ``--no-index`` from wheels made on this host, as the base image's are
  (``images.wheels``): ``pip wheel`` constrained to what the base image has installed (its
  ``pip freeze``), so nothing already there changes, then ``pip check`` in the image. Making
  them needs the package registry from this host; offline, the build stops and says so.

Tagged ``localhost/crews-project-<package>:<tag>`` (default tag: the project's version, as the
chart's default), the name ``crews helm values`` writes for the roles that use the project.
"""

from __future__ import annotations

import hashlib
import shutil
import tomllib
from collections.abc import Sequence
from pathlib import Path

from crews.deploy.project_image import project_path, project_repository
from crews.errors import CrewSpecError
from crews.spec.crewai.importer import project_package_dir
from images import wheels
from images.tools import base_python, bud, run_in, version
from inference.cache_dir import default_cache_dir
from inference.local.install import InstallError, Progress, Step, ensure

SKIPPED = ("__pycache__", "*.pyc", ".venv", ".git", "*.egg-info")


def package_dirs(projects: Sequence[Path]) -> list[Path]:
    """The package directory of each project; two of one name are an error."""
    try:
        found = [project_package_dir(project) for project in projects]
    except CrewSpecError as exc:
        raise InstallError(str(exc)) from None
    names = [directory.name for directory in found]
    if len(set(names)) != len(names):
        raise InstallError(f"two projects have a package of one name ({', '.join(names)}): rename one")
    return found


def requirements(project: Path, package: Path) -> list[str]:
    """The project's own requirements: requirements.txt, else pyproject's dependencies, nearest first."""
    top = project.resolve()
    for folder in (package, *package.parents):
        listed = folder / "requirements.txt"
        if listed.is_file():
            lines = (line.split("#")[0].strip() for line in listed.read_text().splitlines())
            return [line for line in lines if line]
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            declared = tomllib.loads(pyproject.read_text()).get("project", {}).get("dependencies", [])
            return [str(item) for item in declared]
        if folder == top or top not in folder.parents:
            break
    return []


def installed(base_ref: str) -> list[str]:
    """``pip freeze`` of the base image's venv (crews itself, installed from a local wheel, left out)."""
    out = run_in(base_ref, ["python3", "-m", "pip", "freeze", "--disable-pip-version-check"])
    return [line for line in out.splitlines() if "==" in line and not line.startswith("crews==")]


def project_wheels(reqs: list[str], constraints: list[str], python_version: str, progress: Progress) -> Path:
    """Wheels of ``reqs`` and their dependencies, constrained to ``constraints``, cached on this host."""
    python = wheels.interpreter_for(python_version)
    stamp = hashlib.sha1("\n".join([*reqs, "--", *constraints, python_version]).encode()).hexdigest()[:12]
    target = default_cache_dir() / "images" / f"wheels-project-{stamp}"

    def build(step: Step) -> None:
        step.target.mkdir(parents=True)
        (step.target / "constraints.txt").write_text("\n".join(constraints) + "\n")
        progress(f"the project's requirements: pip wheel with {python} into {target} (log: {step.log})")
        step.run(
            [python, "-m", "pip", "--disable-pip-version-check", "wheel", "--quiet",
             "--wheel-dir", str(step.target), "-c", str(step.target / "constraints.txt"), *reqs],
            f"pip wheel of the project's requirements ({', '.join(reqs)})",
            "The image installs them offline, from wheels made on this host: this host must reach the "
            "package registry (or a pip index/find-links in pip's configuration); a requirement that "
            "conflicts with the crews-crewai image's packages (constraints.txt) cannot be installed.",
        )  # fmt: skip
        (step.target / "requirements.txt").write_text("\n".join(wheels.pins(step.target)) + "\n")

    ensure(target, stamp, build, what="wheels of the project's requirements", progress=progress)
    return target


def containerfile(packages: list[str], with_wheels: bool) -> str:
    paths = ":".join(project_path(package) for package in packages)
    lines = ["ARG BASE", "FROM ${BASE}", "USER 0"]
    if with_wheels:  # copied, not bind-mounted: a bind mount of the hard-linked wheels lost files
        # under buildah (pip: "No such file" for a wheel it had just listed); the wheels stay in a layer
        lines += [
            "COPY wheels/ /tmp/project-wheels/",
            "RUN /opt/crews/bin/pip install --no-cache-dir --disable-pip-version-check --no-index "
            "--find-links /tmp/project-wheels -r /tmp/project-wheels/requirements.txt "
            "&& /opt/crews/bin/pip check && rm -rf /tmp/project-wheels",
        ]
    lines += [
        *(f"COPY projects/{package}/ {project_path(package)}/" for package in packages),
        f"ENV CREWS_PROJECT_PATHS={paths}",
        f'LABEL dev.crews.projects="{",".join(packages)}"',
        "USER 10001:10001",
    ]
    return "\n".join(lines) + "\n"


def build_project(
    projects: Sequence[Path], base_ref: str, *, tag: str | None = None, progress: Progress
) -> str:
    """Build the image of ``projects`` FROM ``base_ref`` (a crews-crewai image); return its reference."""
    found = package_dirs(projects)
    packages = [directory.name for directory in found]
    ref = f"localhost/{project_repository(packages)}:{tag or version()}"
    context = wheels.CONTEXT / project_repository(packages)
    shutil.rmtree(context, ignore_errors=True)
    for directory in found:
        shutil.copytree(
            directory, context / "projects" / directory.name, ignore=shutil.ignore_patterns(*SKIPPED)
        )
    reqs = sorted(
        {req for project, where in zip(projects, found, strict=True) for req in requirements(project, where)}
    )
    if reqs:
        progress(f"the project's requirements: {', '.join(reqs)}")
        made = project_wheels(reqs, installed(base_ref), base_python(base_ref), progress)
        wheels.link_into_context(f"{context.name}/wheels", made)
    (context / "Containerfile").write_text(containerfile(packages, bool(reqs)))
    return _bud(ref, base_ref, context, progress)


def _bud(ref: str, base_ref: str, context: Path, progress: Progress) -> str:
    progress(f"{ref}: building from {base_ref}")
    argv = [
        "buildah", "bud", "--layers", "--isolation", "chroot", "--network", "host",
        "--build-arg", f"BASE={base_ref}", "-f", str(context / "Containerfile"), "-t", ref, str(context),
    ]  # fmt: skip
    log = context.parent / f".{context.name}.build.log"
    bud(argv, ref, log)
    return ref
