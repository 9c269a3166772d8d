"""6. Batching on the real vLLM (``python -m bench --vllm``): 8 demo jobs at once vs 8 direct request chains.

The local vLLM (``inference.local.vllm``, installed by ``make install-vllm``)
serves the CPU model. crews runs ``examples/demo.yaml`` (two researchers at
once, then a writer) for ``jobs`` jobs at once through a coordinator and one
worker per role. Then the same server gets the same load with no crews in
between: ``jobs`` concurrent chains of direct chat completions (``httpx``),
each the shape of one crews job as recorded in its results: the two first
steps at once, then the third, each with a prompt of the step's input token
count (filler text sized with vLLM's ``/tokenize``) and exactly the step's
output token count (``max_tokens`` = ``min_tokens``, ``ignore_eos``). The
figure is output tokens per second of wall time, crews / direct (target
≥ 0.9); the rounds alternate (crews, direct, direct, crews, ...), so both
see the same machine load.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.crew import outcome, wait_ended
from bench.stack import ROOT, BenchStack
from bench.stats import ratio
from bus.contracts.result import StepResult
from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore, job_keys
from crews.spec.load import load_crew
from crews.spec.models import CrewSpec
from inference.errors import LocalLLMError
from inference.settings import DEFAULT_MODEL

DEMO = ROOT / "examples" / "demo.yaml"
FILLER = " bee"


@dataclass(frozen=True)
class StepShape:
    """One step's LLM load: its prompt and answer in tokens, and whether it waits for the others."""

    step: str
    input_tokens: int
    output_tokens: int
    last: bool
    sampling: tuple[tuple[str, float], ...] = ()  # the role's temperature and repetition penalty


@dataclass
class VLLMBatching:
    jobs: int
    rounds: int
    crews_tokens: int = 0
    crews_wall_s: float = 0.0
    direct_tokens: int = 0
    direct_wall_s: float = 0.0
    crews_lost: int = 0
    shapes: list[list[StepShape]] = field(default_factory=list, repr=False)
    error: str | None = None

    @property
    def crews_tokens_per_s(self) -> float | None:
        return self.crews_tokens / self.crews_wall_s if self.crews_wall_s else None

    @property
    def direct_tokens_per_s(self) -> float | None:
        return self.direct_tokens / self.direct_wall_s if self.direct_wall_s else None

    @property
    def batching_ratio(self) -> float | None:
        """crews' output tokens/s over the direct requests' (target ≥ 0.9)."""
        return ratio(self.crews_tokens_per_s, self.direct_tokens_per_s)


Round = tuple[int, float, int, list[list[StepShape]]]


async def _crews_round(stack: BenchStack, spec: CrewSpec, jobs: int) -> Round:
    """``jobs`` demo jobs at once: output tokens, wall seconds (first submit → last end), lost, shapes."""
    async with stack.clients() as c:
        begin = time.time()
        ids = [(await submit_job(c.js, c.store, spec.name, {})).id for _ in range(jobs)]
        await wait_ended(c.store, ids, 900.0, poll_s=0.05)
        done = await outcome(c.store, ids)
        shapes = [await _shape(c.store, job, spec) for job in ids]
    wall = (max(done.finished) - begin) if done.finished else float("nan")
    tokens = sum(s.output_tokens for shape in shapes for s in shape)
    return tokens, wall, jobs - done.completed, shapes


async def _shape(store: RedisJobStore, job: str, spec: CrewSpec) -> list[StepShape]:
    raw: dict[str, str] = await store.redis.hgetall(job_keys(job).results)
    results = {step: StepResult.model_validate_json(value) for step, value in raw.items()}
    return [
        StepShape(step, r.usage.input_tokens, r.usage.output_tokens, last=bool(spec.tasks[step].context),
                  sampling=_sampling(spec, step))
        for step, r in sorted(results.items())
    ]  # fmt: skip


def _sampling(spec: CrewSpec, step: str) -> tuple[tuple[str, float], ...]:
    agent = spec.tasks[step].agent
    llm = spec.roles[agent].llm if agent in spec.roles else None
    if llm is None:
        return ()
    found = {"temperature": llm.temperature, "repetition_penalty": llm.repetition_penalty}
    return tuple((key, value) for key, value in found.items() if value is not None)


class DirectLoad:
    """The same load as crews' jobs, sent straight to the server; prompts sized once per token count."""

    def __init__(self, url: str) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=600.0)
        self.url = url
        self._prompts: dict[int, list[dict[str, str]]] = {}

    async def _count(self, messages: list[dict[str, str]]) -> int:
        base = self.url.removesuffix("/v1")
        reply = await self.http.post(f"{base}/tokenize", json={"model": DEFAULT_MODEL, "messages": messages})
        reply.raise_for_status()
        return int(reply.json()["count"])

    async def messages(self, tokens: int) -> list[dict[str, str]]:
        """A system and a user message whose chat prompt is ``tokens`` long (±1)."""
        if tokens not in self._prompts:
            words = max(1, tokens - 40)
            for _ in range(4):
                messages = [
                    {"role": "system", "content": "You are a Researcher. Keep notes short."},
                    {"role": "user", "content": "Notes:" + FILLER * words},
                ]
                missing = tokens - await self._count(messages)
                if abs(missing) <= 1 or words + missing < 1:
                    break
                words += missing
            self._prompts[tokens] = messages
        return self._prompts[tokens]

    async def step(self, shape: StepShape) -> int:
        body: dict[str, Any] = {
            "model": DEFAULT_MODEL,
            "messages": await self.messages(shape.input_tokens),
            "max_tokens": max(1, shape.output_tokens),
            "min_tokens": max(1, shape.output_tokens),
            "ignore_eos": True,
            **dict(shape.sampling),
        }
        reply = await self.http.post("/chat/completions", json=body)
        reply.raise_for_status()
        return int(reply.json()["usage"]["completion_tokens"])

    async def job(self, shape: list[StepShape]) -> int:
        first = await asyncio.gather(*(self.step(s) for s in shape if not s.last))
        then = await asyncio.gather(*(self.step(s) for s in shape if s.last))
        return sum(first) + sum(then)

    async def round(self, shapes: list[list[StepShape]]) -> tuple[int, float]:
        for shape in shapes:  # size the prompts before the clock starts
            for s in shape:
                await self.messages(s.input_tokens)
        begin = time.perf_counter()
        tokens = await asyncio.gather(*(self.job(shape) for shape in shapes))
        return sum(tokens), time.perf_counter() - begin

    async def aclose(self) -> None:
        await self.http.aclose()


async def run(jobs: int, rounds: int, *, url: str | None = None) -> VLLMBatching:
    """Start the local vLLM (unless ``url`` names a running one), then alternate crews and direct rounds."""
    found = VLLMBatching(jobs=jobs, rounds=rounds)
    server = None
    if url is None:
        try:
            server = _start_vllm()
        except (OSError, LocalLLMError) as exc:  # not installed, or it would not start: reported
            found.error = f"local vLLM unavailable ({exc}); run `make install-vllm`"[:400]
            return found
        url = server.url
    env = {"CREWS_WORKER_CONCURRENCY": str(jobs), "CREWS_LLM_TIMEOUT_S": "600", "CREWS_LLM_MAX_RETRIES": "2"}
    stack = BenchStack(llm_url=url, extra_env=env).start()
    direct = DirectLoad(url)
    try:
        spec = load_crew(DEMO)
        stack.workers(spec.name, spec.all_roles(), 1)
        stack.coordinator()
        async with stack.clients() as c:
            await c.store.save_crew(spec)
        await _crews_round(stack, spec, 1)  # warm-up: the workers' runtimes and vLLM's first batch
        for i in range(rounds):
            order = ("crews", "direct") if i % 2 == 0 else ("direct", "crews")
            for kind in order:
                if kind == "crews":
                    tokens, wall, lost, shapes = await _crews_round(stack, spec, jobs)
                    found.crews_tokens += tokens
                    found.crews_wall_s += wall
                    found.crews_lost += lost
                    found.shapes = found.shapes or shapes
                else:
                    if not found.shapes:  # direct first: take the shape of a crews round now
                        found.shapes = (await _crews_round(stack, spec, jobs))[3]
                    tokens, wall = await direct.round(found.shapes)
                    found.direct_tokens += tokens
                    found.direct_wall_s += wall
    finally:
        await direct.aclose()
        stack.close()
        if server is not None:
            server.stop()
    return found


def _start_vllm() -> Any:
    from inference.local.vllm import LocalVLLM, install_paths
    from inference.settings import InferenceSettings

    install = install_paths(InferenceSettings().local_cache_dir)
    if not install.python.exists() or not Path(install.model_dir).exists():
        raise FileNotFoundError(f"no local vLLM under {install.python.parents[2]}")
    server = LocalVLLM(install, port=0)
    server.start()
    return server
