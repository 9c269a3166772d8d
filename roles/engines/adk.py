"""The ``adk`` engine: a step runs as a Google ADK ``LlmAgent`` on the shared LLM pool.

1. the agent's instruction is the role prompt, the user message the task
   (``roles.engines.prompts``, as the native engine frames them: CrewAI's
   wording, the context outputs, the shared memory as a data block); the
   instruction is given as a function, so ADK does not template ``{...}`` in
   it from session state (a crew file's text is never a template here);
2. its model is ``PoolLlm`` (``roles.engines.adk_llm``): every call goes
   through ``LLMPool.chat`` with the step's job, role, budget and LLM
   parameters; its tools are the step's allow-list (``roles.engines.adk_tools``)
   through the same argument checks and approval gate as native;
3. ADK runs its own loop (model turn, function calls, function responses)
   in an in-memory session that lives for this run only (a worker holds no job
   state); the last final response is the answer. An empty answer gets one
   follow-up turn; with an output schema, the calls ask for JSON and an
   answer that does not parse or validate gets one repair turn, then fails,
   as in the native engine. ``max_iter`` bounds the LLM calls of the whole run.

ADK's own spans would record prompts and tool arguments; the engine turns
that off (``ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS=false`` unless set), since
spans must carry no secrets.
"""

from __future__ import annotations

import os

os.environ.setdefault("ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS", "false")

from google.adk.agents import LlmAgent
from google.adk.agents.readonly_context import ReadonlyContext
from google.adk.agents.run_config import RunConfig
from google.adk.events import Event
from google.adk.runners import InMemoryRunner
from google.genai import types

from roles.engines import prompts
from roles.engines.adk_llm import PoolLlm, Raised
from roles.engines.adk_tools import adk_tools
from roles.engines.base import StepOutput, StepRun
from roles.engines.native import OutputInvalid, OutputSchema
from roles.errors import StepFailed

APP = "crews"
USER = "crews-coordinator"
AGENT_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"


class AdkEngine:
    """Runs a step as an ADK ``LlmAgent`` whose model is the pool client."""

    async def run(self, step: StepRun) -> StepOutput:
        work = step.work
        schema = OutputSchema(work.output_schema, work.step) if work.output_schema is not None else None
        memory = await step.memory.at_start()
        system = prompts.system_prompt(work.prompt)
        raised = Raised()
        llm = PoolLlm.for_step(step, schema.response_format() if schema else None, raised)

        def instruction(_: ReadonlyContext) -> str:
            return system

        agent = LlmAgent(
            name=agent_name(work.role),
            model=llm,
            instruction=instruction,
            tools=list(adk_tools(step.tools, raised.keep)),
        )
        runner = InMemoryRunner(agent=agent, app_name=APP)
        session = await runner.session_service.create_session(app_name=APP, user_id=USER)
        run = _Run(runner, session.id, llm, step, schema, raised)
        try:
            return await run.answer(
                prompts.task_prompt(work, memory, memory_max_chars=step.memory_prompt_max_chars)
            )
        finally:
            await runner.close()


class _Run:
    """The turns of one step in one ADK session: the task, and at most one follow-up and one repair."""

    def __init__(
        self,
        runner: InMemoryRunner,
        session: str,
        llm: PoolLlm,
        step: StepRun,
        schema: OutputSchema | None,
        raised: Raised,
    ) -> None:
        self.runner, self.session, self.llm, self.step, self.schema = runner, session, llm, step, schema
        self.raised = raised

    async def answer(self, task: str) -> StepOutput:
        request, followed_up, repaired = task, False, False
        while True:
            answer = (await self._turn(request)).strip()
            if not answer:
                if followed_up:
                    raise StepFailed(
                        f"step {self.step.work.step!r} ({self.step.work.role}) got an empty answer twice: "
                        "make the task clearer, or use a stronger model"
                    )
                request, followed_up = prompts.EMPTY_ANSWER, True
                continue
            if self.schema is None:
                return self._output(answer)
            try:
                text, data = self.schema.parse(answer)
            except OutputInvalid as exc:
                if repaired:
                    raise StepFailed(
                        f"the answer of step {self.step.work.step!r} does not match its output_schema after "
                        f"one repair attempt: {exc}; check the schema and the task description, or use a "
                        "stronger model"
                    ) from exc
                request, repaired = prompts.schema_repair(str(exc), self.schema.schema), True
                continue
            return self._output(text, data)

    async def _turn(self, text: str) -> str:
        """Send one user message and run ADK's loop to its final response; that response's text."""
        message = types.Content(role="user", parts=[types.Part(text=text)])
        config = RunConfig(max_llm_calls=self.step.work.max_iter + 2)  # PoolLlm enforces max_iter itself
        final = ""
        try:
            async for event in self.runner.run_async(
                user_id=USER, session_id=self.session, new_message=message, run_config=config
            ):
                self._check(event)
                if event.is_final_response() and event.content and event.content.parts:
                    final = "".join(p.text for p in event.content.parts if p.text and not p.thought)
        except Exception:
            self._raise_kept()
            raise
        self._raise_kept()
        return final

    def _check(self, event: Event) -> None:
        """Raise what went wrong in ADK's loop: what our code raised, else the error event."""
        self._raise_kept()
        if event.error_code:
            raise StepFailed(
                f"ADK ended step {self.step.work.step!r} with {event.error_code}: {event.error_message}"
            )

    def _raise_kept(self) -> None:
        """Raise what our model or tools raised inside ADK's loop, as it was raised."""
        if self.raised.error is not None:
            raise self.raised.error

    def _output(self, text: str, data: object = None) -> StepOutput:
        return StepOutput(output=text, data=data, usage=self.llm.usage, llm_calls=self.llm.calls)


def agent_name(role: str) -> str:
    """An ADK agent name (a Python identifier) for ``role``."""
    name = "".join(c if c in AGENT_NAME_CHARS else "_" for c in role) or "role"
    return name if name[0].isalpha() or name[0] == "_" else f"role_{name}"
