"""The main image, built once per session (or found up to date) for the image tests."""

from __future__ import annotations

import shutil

import pytest

from images.build import IMAGES, build


@pytest.fixture(scope="session")
def image() -> str:
    """The main image, built (or found up to date) from the local Debian base."""
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not installed: run `make install-image-tools`")
    return build(IMAGES[0])
