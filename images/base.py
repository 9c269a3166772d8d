"""A local Debian bookworm base with Python 3.11, for machines that cannot pull ``python:3.11-slim``.

``debootstrap --variant=minbase --include=python3,python3-venv bookworm`` makes the root file
system once; it is kept as a tar under ``$CREWS_LOCAL_CACHE_DIR/images/debian-bookworm-python3/``
(through ``inference.local.install.ensure``: interrupted runs are redone, concurrent ones wait)
and imported into buildah's storage as ``localhost/crews-base:bookworm``, labelled with the
tar's identity so a remade tar is imported again. Python is ``/usr/bin/python3`` (3.11, the
version the project targets), as ``python3`` is on ``python:3.11-slim``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from images.tools import buildah, image_label, must
from inference.cache_dir import default_cache_dir
from inference.local.install import Progress, Step, ensure

IMAGE = "localhost/crews-base:bookworm"
LABEL = "dev.crews.base"
SUITE = "bookworm"
PACKAGES = "python3,python3-venv"
MIRROR = os.environ.get("CREWS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
STAMP = f"debootstrap minbase {SUITE} {PACKAGES} {MIRROR}"


def rootfs_dir() -> Path:
    return default_cache_dir() / "images" / f"debian-{SUITE}-python3"


def ensure_rootfs(progress: Progress) -> Path:
    """The cached tar of the base's root file system, made by debootstrap if missing (~40 s)."""
    target = rootfs_dir()

    def build(step: Step) -> None:
        if shutil.which("debootstrap") is None:
            step.run(["debootstrap", "--version"], "debootstrap", "Run `make install-image-tools`.")
        tree = target.with_name(f"{target.name}.tree")
        shutil.rmtree(tree, ignore_errors=True)
        progress(f"the base image: debootstrap {SUITE} into {tree} (log: {step.log})")
        step.run(
            ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", SUITE, str(tree), MIRROR],
            "debootstrap",
            "Check that the Debian mirror (CREWS_DEBIAN_MIRROR) is reachable and run it again.",
        )
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (tree / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        target.mkdir()
        step.run(["tar", "-C", str(tree), "-cf", str(target / "rootfs.tar"), "."], "tar of the base")
        shutil.rmtree(tree)

    ensure(target, STAMP, build, what=f"the Debian {SUITE} base", progress=progress)
    return target / "rootfs.tar"


def ensure_image(progress: Progress) -> str:
    """``localhost/crews-base:bookworm`` in buildah's storage, imported from the cached tar if needed."""
    tar = ensure_rootfs(progress)
    identity = f"{STAMP} {tar.stat().st_mtime_ns} {tar.stat().st_size}"
    if image_label(IMAGE, LABEL) == identity:
        return IMAGE
    progress(f"the base image: importing {tar} as {IMAGE}")
    container = must(buildah(["from", "scratch"]))
    try:
        buildah(["add", container, str(tar), "/"])
        buildah(["config", "--label", f"{LABEL}={identity}", "--cmd", "python3", container])
        buildah(["commit", "--quiet", container, IMAGE])
    finally:
        buildah(["rm", container], check=False)
    return IMAGE
