"""Running buildah and reading what it knows about images; the project's paths.

Every command's output goes to the caller's log (``inference.local.install.Step``) or, for
short queries, is captured; a failure raises ``InstallError`` with the command's last lines.
"""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Sequence
from pathlib import Path

from inference.local.install import InstallError

ROOT = Path(__file__).resolve().parents[1]
BUILDAH = "buildah"


def project() -> dict[str, object]:
    """The ``[project]`` table of pyproject.toml."""
    table: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return table


def version() -> str:
    return str(project()["version"])


def buildah(args: Sequence[str], *, check: bool = True, timeout: float | None = None) -> str | None:
    """``buildah <args>``'s stdout; if it fails: ``InstallError`` with ``check``, else None."""
    try:
        done = subprocess.run([BUILDAH, *args], capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise InstallError(
            "buildah is not installed: run `make install-image-tools` (apt-get install buildah debootstrap)."
        ) from exc
    except subprocess.TimeoutExpired:
        if check:
            raise InstallError(f"buildah {' '.join(args)} did not finish in {timeout} s") from None
        return None
    if check and done.returncode != 0:
        raise InstallError(
            f"buildah {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    return done.stdout if done.returncode == 0 else None


def image_label(ref: str, label: str) -> str | None:
    """The value of ``label`` on the local image ``ref``; None if there is no such image."""
    out = buildah(
        ["inspect", "--type", "image", "--format", f'{{{{index .OCIv1.Config.Labels "{label}"}}}}', ref],
        check=False,
    )
    return None if out is None else out.strip().replace("<no value>", "")


def must(out: str | None) -> str:
    """The output of a checked ``buildah`` call (never None)."""
    assert out is not None
    return out.strip()


def run_in(image: str, argv: Sequence[str]) -> str:
    """The stdout of ``argv`` run in a container of the local ``image`` (removed afterwards)."""
    container = must(buildah(["from", "--quiet", "--pull=never", image]))
    try:
        return must(buildah(["run", "--isolation", "chroot", "--network", "host", container, "--", *argv]))
    finally:
        buildah(["rm", container], check=False)


def base_python(base_ref: str) -> str:
    """The Python version of the base image (``python3`` in it), e.g. "3.11.2"."""
    return run_in(base_ref, ["python3", "-c", "import platform; print(platform.python_version())"])


def bud(argv: Sequence[str], ref: str, log: Path) -> None:
    """Run ``buildah bud`` (``argv``) with its output in ``log``; ``InstallError`` with the log's tail on failure."""
    with log.open("w") as out:
        code = subprocess.call(list(argv), stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        lines = "\n".join(f"    {line}" for line in log.read_text(errors="replace").splitlines()[-25:])
        raise InstallError(f"buildah bud of {ref} failed (exit {code}). Last lines of {log}:\n{lines}")
