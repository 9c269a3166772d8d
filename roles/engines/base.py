"""What an engine is given for one step, what it returns, and how a worker finds the engine for a step.

Engines are imported on first use (``engine_for``), so a worker loads only the
framework its role needs (none, for a native role).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bus.contracts.step import Engine as EngineName
from bus.contracts.step import StepWork
from inference.budget import TokenBudget
from inference.results import Usage
from roles.errors import StepFailed
from roles.outside_agents import OutsideAgent
from roles.step.checkpoint import StepCheckpoint
from roles.step.memory import SharedMemory
from roles.tools.toolset import ToolSet

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS

    from inference.client import LLMPool


@dataclass(frozen=True)
class StepRun:
    """One run of one step: the work, the LLM pool, the step's tools and memory, and the job's budget."""

    work: StepWork
    llm: LLMPool
    tools: ToolSet
    memory: SharedMemory
    budget: TokenBudget
    check_cancelled: Callable[[], Awaitable[None]]
    """Raises ``StepCancelled`` when the job is no longer running; engines call it between LLM calls."""
    memory_prompt_max_chars: int = 8_000
    max_tool_calls_per_turn: int = 8
    """Tool calls of one LLM answer that run; the rest are answered with an error."""
    nc: NATS | None = None
    """The worker's NATS connection: engines that talk on the bus (``a2a``) use it; None outside a worker."""
    checkpoint: StepCheckpoint | None = None
    """The step's recorded turns (``roles.step.checkpoint``): a tool loop resumes from them; None: none kept."""
    agents: Mapping[str, OutsideAgent] = field(default_factory=dict)
    """The outside A2A agents the operator declared (``roles.outside_agents``), by name."""


@dataclass(frozen=True)
class StepOutput:
    """A step's answer: the text, the parsed JSON when the step has an output schema, the tokens it used."""

    output: str
    data: Any = None
    usage: Usage = field(default_factory=Usage)
    llm_calls: int = 0
    resumed_turns: int = 0
    """LLM answers replayed from the step's checkpoint instead of asked again (0: a fresh run)."""


class Engine(Protocol):
    async def run(self, step: StepRun) -> StepOutput:
        """Run the step to its final answer; ``StepFailed`` when it cannot succeed, ``StepCancelled`` on cancel.

        Errors of the LLM pool (``inference.errors``) pass through: the worker
        knows which are retryable.
        """
        ...


ENGINES: dict[str, str] = {
    "native": "roles.engines.native:NativeEngine",
    "a2a": "roles.engines.a2a:A2AEngine",
    "adk": "roles.engines.adk:AdkEngine",
    "crewai": "roles.engines.crewai:CrewAIEngine",
}
FRAMEWORKS: dict[str, tuple[str, str]] = {
    "crewai": (
        "crewai",
        "run this role's workers from the CrewAI environment: `crews up` does, "
        "`python -m crews.local.crewai_env` makes it and prints its `crews`; in Kubernetes, the crews-crewai image",
    ),
    "adk": ("google", "install the adk extra (pip install 'crews[adk]'): the crews image has it"),
}


def engine_imported(name: EngineName) -> bool:
    """Whether ``engine_for(name)`` needs no import (then it is cheap enough for the event loop)."""
    target = ENGINES.get(name)
    return target is not None and target.partition(":")[0] in sys.modules


def engine_for(name: EngineName) -> Engine:
    """The engine for a step of ``engine: name``, imported now; ``StepFailed`` when this worker has none."""
    target = ENGINES.get(name)
    if target is None:
        raise StepFailed(
            f"engine {name!r} is not available in this worker yet (it has {', '.join(sorted(ENGINES))}): "
            "use engine: native for this role"
        )
    module, _, attribute = target.partition(":")
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        package, advice = FRAMEWORKS.get(name, ("", ""))
        if not package or not (exc.name or "").startswith(package):
            raise
        raise StepFailed(
            f"engine {name!r} needs {exc.name}, which this worker's environment does not have: {advice}"
        ) from exc
    engine: Engine = getattr(loaded, attribute)()
    return engine
