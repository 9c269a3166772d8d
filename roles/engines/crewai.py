"""The ``crewai`` engine: a step runs as a CrewAI ``Agent`` executing its ``Task`` with CrewAI's own loop.

1. the agent is the role (role, goal, backstory), with ``max_iter`` and
   ``max_rpm`` as the role sets them, no delegation (the coordinator plans),
   no retries of its own (``max_retry_limit=0``: a retry is a redelivery) and
   no tool cache (every call goes through the approval gate); its LLM is
   ``PoolLLM`` (``roles.engines.crewai_llm``) over the pool client, its tools
   the step's allow-list (``roles.engines.crewai_tools``);
2. the task is the step's description and expected output; the context
   outputs and the job's shared memory (a delimited data block) are its
   context, so CrewAI frames them as it frames any task's context;
3. with an output schema (or the CrewAI project's ``output_pydantic`` /
   ``output_json`` model), the calls ask for JSON and a guardrail checks the
   answer: CrewAI sends it back with the error, then the step fails. The
   task's ``guardrail`` / ``guardrails`` (rules in words: CrewAI's LLM
   guardrail on the pool; project functions by import path) follow, with
   CrewAI's ``guardrail_max_retries``; ``human_input`` asks a person through
   the approval gate (``roles.engines.crewai_task``). The project's own tools
   join the step's tools (``roles.engines.crewai_tools``), loaded only from
   the projects the operator declared (``roles.engines.crewai_project``);
4. CrewAI runs synchronously, so the task runs in a thread; its LLM and tool
   calls come back to the worker's loop through ``roles.engines.crewai_bridge``.
   Whatever our code raised inside CrewAI (a cancel, the budget, a retryable
   pool error, a tool outside the allow-list) is raised again as it was.

CrewAI's anonymous telemetry and tracing are turned off (unless set), and so
are its console panels.
"""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_DISABLE_TRACKING", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

from crewai import Agent, Task
from crewai.core.providers.human_input import reset_provider, set_provider
from crewai.events.event_listener import event_listener

from roles.engines import prompts
from roles.engines.base import StepOutput, StepRun
from roles.engines.crewai_bridge import Bridge
from roles.engines.crewai_llm import PoolLLM
from roles.engines.crewai_project import ProjectCode
from roles.engines.crewai_task import GateHumanInput, output_check, task_guardrails
from roles.engines.crewai_tools import CallIds, crewai_tools, with_project_tools
from roles.engines.native import OutputInvalid
from roles.errors import StepFailed

event_listener.formatter.verbose = False  # CrewAI's console panels: a worker logs, it does not draw


class CrewAIEngine:
    """Runs a step as a CrewAI agent's task, its LLM calls on the pool client."""

    def __init__(self) -> None:
        self.code = ProjectCode.from_env()

    async def run(self, step: StepRun) -> StepOutput:
        memory = await step.memory.at_start()
        bridge = Bridge(asyncio.get_running_loop(), step.work.job)
        try:
            return await asyncio.to_thread(_execute, step, bridge, memory, self.code)
        finally:
            bridge.stop()  # a cancel or a time limit: CrewAI's thread gets StepCancelled on its next call


def _execute(step: StepRun, bridge: Bridge, memory: dict[str, str], code: ProjectCode) -> StepOutput:
    """Build the agent and the task and run it (on CrewAI's thread)."""
    work = step.work
    check = output_check(work, code)
    ids = CallIds()
    llm = PoolLLM.for_step(step, bridge, ids, check.schema.response_format() if check else None)
    toolbox = with_project_tools(step.tools, work, code)
    agent = Agent(
        role=work.prompt.role,
        goal=work.prompt.goal,
        backstory=work.prompt.backstory,
        llm=llm,
        tools=crewai_tools(toolbox, bridge, ids),
        max_iter=work.max_iter,
        max_rpm=work.max_rpm,
        allow_delegation=False,
        max_retry_limit=0,
        cache=False,
        verbose=False,
    )
    guardrails, retries = task_guardrails(work, check, code)
    task = Task(
        description=work.description,
        expected_output=work.expected_output,
        agent=agent,
        guardrails=guardrails or None,
        guardrail_max_retries=retries,
        human_input=bool(work.crewai and work.crewai.human_input),
    )
    token = set_provider(GateHumanInput(toolbox.gate, bridge, work.step))
    try:
        output = task.execute_sync(agent=agent, context=_context(step, memory) or None)
    except Exception as exc:  # CrewAI wraps what it raises; ours is kept on the bridge and raised as it was
        bridge.raise_kept()
        raise StepFailed(
            f"CrewAI could not finish step {work.step!r} ({work.role}): {exc}; check the task and the role's "
            "tools, or raise its max_iter"
        ) from exc
    finally:
        reset_provider(token)
    bridge.raise_kept()
    text, data = output.raw.strip(), None
    if check is not None:
        try:
            text, data = check.parse(text)
        except OutputInvalid as exc:
            raise StepFailed(
                f"the answer of step {work.step!r} does not match its output_schema after one repair "
                f"attempt: {exc}; check the schema and the task description, or use a stronger model"
            ) from exc
    return StepOutput(output=text, data=data, usage=llm.meter.usage, llm_calls=llm.meter.calls)


def _context(step: StepRun, memory: dict[str, str]) -> str:
    """The context outputs, then the shared memory as a data block, as the native prompt has them."""
    context = prompts.context_text(step.work.context)
    if memory:
        block = prompts.MEMORY_BLOCK.format(
            task="", memory=prompts.memory_text(memory, step.memory_prompt_max_chars)
        ).strip()
        context = f"{context}\n\n{block}" if context else block
    return context
