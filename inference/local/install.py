"""Install steps that work from nothing, survive being interrupted and run safely side by side.

Every install ``make demo`` and ``make test`` make (the project's venv, the
vLLM venv, the converted model, the CrewAI venv) goes through ``ensure``:

- the step's folder is built in place under an exclusive ``flock`` on a lock
  file beside it, so two installs started at once run it once, and the
  second finds it done;
- a marker file holding the step's *stamp* (what was installed) is written
  last, atomically; a folder without the marker, or with another stamp, is an
  interrupted or outdated install and is removed and redone;
- each command's output goes to a log beside the folder; a failure raises
  ``InstallError`` whose message is one paragraph: what failed, the log's
  last lines, what to do. ``main`` prints it without a traceback.

This module imports only the standard library: the Makefile runs it with the
system interpreter to make the project's own venv.

    python3 -m inference.local.install venv .venv --stamp <hash> -- -e '.[dev]'
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from inference.cache_dir import default_cache_dir

__all__ = ["default_cache_dir"]

MARKER = ".crews-complete"
Progress = Callable[[str], None]


class InstallError(Exception):
    """An install step failed; the message says what, shows the log's tail and what to do."""


def _stderr(message: str) -> None:
    sys.stderr.write(f"[install] {message}\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class Step:
    """One install in progress: its folder, its log, the environment its commands get."""

    target: Path
    log: Path
    env: Mapping[str, str]

    def run(self, argv: Sequence[str], what: str, advice: str = "") -> None:
        """Run ``argv`` with its output appended to the log; raise ``InstallError`` if it fails."""
        with self.log.open("a") as out:
            out.write(f"$ {' '.join(argv)}\n")
            out.flush()
            try:
                code = subprocess.call(argv, stdout=out, stderr=subprocess.STDOUT, env=dict(self.env))
            except OSError as exc:
                out.write(f"{exc}\n")
                code = 127
        if code != 0:
            raise InstallError(
                f"{what} failed (exit {code}). Last lines of {self.log}:\n{tail(self.log)}\n"
                f"{advice or 'Fix what the log shows and run the command again; the step starts over.'}"
            )


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log, indented, or a note that there is none."""
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "    (no log was written)"
    return "\n".join(f"    {line}" for line in text)


def is_complete(target: Path, stamp: str) -> bool:
    """Whether ``target`` holds a finished install of exactly ``stamp``."""
    try:
        return (target / MARKER).read_text() == stamp
    except OSError:
        return False


@contextmanager
def _locked(lock: Path) -> Iterator[None]:
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure(
    target: Path,
    stamp: str,
    build: Callable[[Step], None],
    *,
    what: str,
    env: Mapping[str, str] | None = None,
    update_in_place: bool = False,
    progress: Progress = _stderr,
) -> bool:
    """Make ``target`` by ``build`` unless a complete install of ``stamp`` is there; True if it built.

    ``build`` fills ``step.target``, which does not exist when it is called
    (it may create it or rename a finished folder onto it) except with
    ``update_in_place``: then a once-complete install of another stamp is
    handed to ``build`` as it is, its marker removed first, so an update
    interrupted half way is redone from nothing on the next run.
    """
    target = target.absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if is_complete(target, stamp):
            return False
        if update_in_place and (target / MARKER).is_file():
            (target / MARKER).unlink()
        elif target.exists() or target.is_symlink():
            progress(f"{what}: removing an incomplete or outdated install at {target}")
            _remove(target)
        log = target.parent / f"{target.name}.install.log"
        log.write_text(f"# {what} ({stamp}), started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        started = time.monotonic()
        build(Step(target, log, dict(os.environ) if env is None else env))
        if not target.is_dir():
            raise InstallError(f"{what} finished without creating {target}; see {log}")
        marker = target / f"{MARKER}.tmp"
        marker.write_text(stamp)
        marker.replace(target / MARKER)
        progress(f"{what}: done in {time.monotonic() - started:.0f} s ({target})")
        return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def ensure_venv(
    venv: Path,
    requirements: Sequence[str],
    *,
    what: str,
    stamp: str | None = None,
    python: str = sys.executable,
    advice: str = "",
    update_in_place: bool = False,
    progress: Progress = _stderr,
) -> bool:
    """A venv at ``venv`` with ``requirements`` pip-installed (arguments as pip takes them)."""
    stamp = stamp or " ".join(requirements)

    def build(step: Step) -> None:
        progress(f"{what}: installing into {venv} (log: {step.log})")
        if not (venv / "bin" / "python").exists():
            step.run([python, "-m", "venv", str(venv)], f"{what}: creating the venv")
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        step.run([*pip, "install", "--quiet", *requirements], f"{what}: pip install", advice)

    return ensure(venv, stamp, build, what=what, update_in_place=update_in_place, progress=progress)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python3 -m inference.local.install", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    venv = commands.add_parser("venv", help="make a venv with pip requirements (after --)")
    venv.add_argument("path", type=Path)
    venv.add_argument("--stamp", default=None, help="what the install is; another stamp redoes it")
    venv.add_argument("--what", default="the project's venv")
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    requirements = argv[split + 1 :]
    advice = "Check that the package registry is reachable (pip's proxy and index settings) and run it again."
    try:
        ensure_venv(
            args.path, requirements, what=args.what, stamp=args.stamp, advice=advice, update_in_place=True
        )
    except InstallError as exc:
        parser.exit(1, f"error: {exc}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"interrupted: {args.what} is incomplete; the next run redoes it\n")


if __name__ == "__main__":
    main()
