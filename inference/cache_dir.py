"""Where every cache the project writes lives (standard library only: the installers use it)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``CREWS_LOCAL_CACHE_DIR``, else ``~/.cache/crews``: every cache the project writes lives below it."""
    configured = os.environ.get("CREWS_LOCAL_CACHE_DIR", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "crews"
