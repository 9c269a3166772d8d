"""Build the crews images with buildah: ``crews`` (Containerfile) and ``crews-crewai`` (Containerfile.crewai).

    python -m images.build [--only crews|crews-crewai] [--base IMAGE] [--tag TAG]
    python -m images.build --wheels-only [--python-version 3.11.14]   # wheels/ for docker build
    python -m images.build --project DIR [--from IMAGE]   # a CrewAI project's image (images.project)

(``make image`` runs it after installing buildah and debootstrap if they are missing.) For each image:

1. ``wheels/<image>/`` in the build context, made on this host (``images.wheels``): the build
   installs with ``--no-index`` and fetches nothing.
2. The base: ``--base`` if given; else ``python:3.11-slim`` (the Containerfiles' default) if it
   is in buildah's storage or can be pulled; else a Debian bookworm made by debootstrap and
   cached under ``$CREWS_LOCAL_CACHE_DIR`` (``images.base``).
3. ``buildah bud --layers`` tagged ``localhost/<image>:<tag>`` (default: the project's version),
   labelled with a hash of every input (Containerfile, base image id, pinned wheels, the
   project's source): when the image already carries that hash the build is skipped, and when
   only the source changed the dependency layers come from buildah's cache.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from images import base, wheels
from images.project import build_project
from images.tools import ROOT, base_python, bud, buildah, image_label, must, version
from inference.local.install import InstallError, Progress

DEFAULT_BASE = "python:3.11-slim"
STAMP_LABEL = "dev.crews.inputs"
SOURCES = ("pyproject.toml", "README.md", "crews", "roles", "bus", "inference")
PULL_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Image:
    """One image: its name (the chart's default repository), its Containerfile, the crews extra it installs."""

    name: str
    containerfile: str
    extra: str


IMAGES = (Image("crews", "Containerfile", "adk"), Image("crews-crewai", "Containerfile.crewai", "crewai"))


def _stderr(message: str) -> None:
    sys.stderr.write(f"[image] {message}\n")
    sys.stderr.flush()


def resolve_base(requested: str | None, progress: Progress) -> str:
    """The base image to build from (see the module's docstring, step 2)."""
    if requested:
        return requested
    if image_label(DEFAULT_BASE, STAMP_LABEL) is not None:
        return DEFAULT_BASE
    if (
        buildah(["pull", "--quiet", "--retry", "0", DEFAULT_BASE], check=False, timeout=PULL_TIMEOUT_S)
        is not None
    ):
        return DEFAULT_BASE
    progress(f"{DEFAULT_BASE} cannot be pulled here: building from a local Debian base")
    return base.ensure_image(progress)


def _source_files() -> Iterator[Path]:
    for name in SOURCES:
        path = ROOT / name
        if path.is_file():
            yield path
            continue
        for item in sorted(path.rglob("*")):
            if item.is_file() and "__pycache__" not in item.parts and item.suffix != ".pyc":
                yield item


def inputs_hash(image: Image, base_ref: str, context_wheels: Path) -> str:
    """A hash of everything the image is made of; equal hashes, equal images."""
    digest = hashlib.sha256()
    digest.update((ROOT / image.containerfile).read_bytes())
    digest.update(
        must(buildah(["inspect", "--type", "image", "--format", "{{.FromImageID}}", base_ref])).encode()
    )
    digest.update((context_wheels / "requirements.txt").read_bytes())
    for path in _source_files():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build(
    image: Image, *, base_ref: str | None = None, tag: str | None = None, progress: Progress = _stderr
) -> str:
    """Build ``image`` unless an image of the same inputs is there; return its reference."""
    ref = f"localhost/{image.name}:{tag or version()}"
    base_ref = resolve_base(base_ref, progress)
    context_wheels = wheels.prepare(image.name, image.extra, base_python(base_ref), progress)
    inputs = inputs_hash(image, base_ref, context_wheels)
    if image_label(ref, STAMP_LABEL) == inputs:
        progress(f"{ref}: up to date (inputs {inputs})")
        return ref
    progress(f"{ref}: building from {base_ref} (inputs {inputs})")
    started = time.monotonic()
    argv = [
        "buildah", "bud", "--layers", "--isolation", "chroot", "--network", "host",
        "--build-arg", f"BASE={base_ref}", "--label", f"{STAMP_LABEL}={inputs}",
        "-f", str(ROOT / image.containerfile), "-t", ref, str(ROOT),
    ]  # fmt: skip
    log = wheels.CONTEXT / f".{image.name}.build.log"
    bud(argv, ref, log)
    progress(f"{ref}: built in {time.monotonic() - started:.0f} s")
    return ref


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m images.build", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", choices=[i.name for i in IMAGES], action="append", help="build only this image"
    )
    parser.add_argument(
        "--base", default=None, help=f"base image (default: {DEFAULT_BASE}, else a local Debian)"
    )
    parser.add_argument("--tag", default=None, help="image tag (default: the project's version)")
    parser.add_argument("--wheels-only", action="store_true", help="only make wheels/<image>/ (no buildah)")
    parser.add_argument("--python-version", default=None, help="with --wheels-only: the base's Python")
    parser.add_argument(
        "--project", type=Path, action="append", metavar="DIR",
        help="build a CrewAI project's image FROM crews-crewai instead (repeatable; see images/project.py)",
    )  # fmt: skip
    parser.add_argument(
        "--from", dest="from_image", default=None, metavar="IMAGE",
        help="with --project: the image to build on (default: crews-crewai, built first if out of date)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if args.project:
            crewai = args.from_image or build(IMAGES[1], base_ref=args.base, tag=args.tag)
            print(build_project(args.project, crewai, tag=args.tag, progress=_stderr))  # noqa: T201
            return
        for image in IMAGES:
            if args.only and image.name not in args.only:
                continue
            if args.wheels_only:
                version = args.python_version or wheels.python_version(sys.executable)
                print(wheels.prepare(image.name, image.extra, version, _stderr))  # noqa: T201
            else:
                print(build(image, base_ref=args.base, tag=args.tag))  # noqa: T201
    except InstallError as exc:
        parser.exit(1, f"error: {exc}\n")
    except KeyboardInterrupt:
        parser.exit(130, "interrupted: run it again (finished steps are kept)\n")


if __name__ == "__main__":
    main()
