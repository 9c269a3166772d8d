"""The native engine: a tool-calling loop on the shared LLM pool, framed as CrewAI frames a task.

1. system: the role prompt; user: the task, expected output, context outputs
   and the job's shared memory (``roles.engines.prompts``);
2. each LLM call may ask for tools: each call's result goes back as a ``tool``
   message (data, never instructions). A tool error (bad arguments, a failing
   tool) is the tool's result, so the model can correct itself; a tool outside
   the allow-list fails the step;
3. an answer without tool calls is the final answer. With an output schema,
   the call asks for JSON (``response_format`` json_schema), and an answer
   that does not parse or validate gets one repair request, then fails;
4. at most ``max_iter`` LLM calls; the job's cancel is checked before each;
5. the loop is checkpointed (``roles.step.checkpoint``): the prompt, each
   answer and each tool result are recorded before it goes on, so a
   redelivered step replays them and resumes where the last run stopped; each
   tool call gets an idempotency key stable across runs. The answer that ends
   the loop is held for the step's result, which records it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import partial
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from inference.results import ChatResult, ToolCall, Usage
from roles.engines import prompts
from roles.engines.base import StepOutput, StepRun
from roles.errors import StepFailed, ToolError
from roles.step.checkpoint import StepCheckpoint
from roles.tools.toolset import error_text

Message = dict[str, Any]
FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
SCHEMA_NAME = re.compile(r"[^A-Za-z0-9_-]")


class OutputInvalid(ValueError):
    """The final answer does not parse as JSON or does not match the output schema."""


class OutputSchema:
    """A step's ``output_schema``: the ``response_format`` to ask with, and the check of the answer."""

    def __init__(self, schema: Mapping[str, Any], step: str) -> None:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise StepFailed(
                f"the output_schema of step {step!r} is not a valid JSON schema ({exc.message}): "
                "fix the task's output_schema in the crew file"
            ) from exc
        self.schema = dict(schema)
        self._validator = Draft202012Validator(self.schema)
        self._name = SCHEMA_NAME.sub("_", step)[:64] or "output"

    def response_format(self) -> dict[str, Any]:
        return {"type": "json_schema", "json_schema": {"name": self._name, "schema": self.schema}}

    def parse(self, answer: str) -> tuple[str, Any]:
        """The answer's JSON text (code fences removed) and its value; ``OutputInvalid`` otherwise."""
        fenced = FENCE.match(answer)
        text = fenced.group(1) if fenced else answer
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OutputInvalid(f"it is not JSON ({exc})") from exc
        error = best_match(self._validator.iter_errors(data))
        if error is not None:
            where = f" at {error.json_path}" if error.path else ""
            raise OutputInvalid(f"{error.message}{where}")
        return text, data


class NativeEngine:
    """Runs a step with our own tool-calling loop."""

    async def run(self, step: StepRun) -> StepOutput:
        work = step.work
        schema = OutputSchema(work.output_schema, work.step) if work.output_schema is not None else None
        checkpoint = step.checkpoint or StepCheckpoint.off(work.job, work.step)
        memory = await step.memory.at_start()
        messages: list[Message] = [
            {"role": "system", "content": prompts.system_prompt(work.prompt)},
            {
                "role": "user",
                "content": prompts.task_prompt(work, memory, memory_max_chars=step.memory_prompt_max_chars),
            },
        ]
        messages = await checkpoint.prompt(messages)
        return await _Loop(step, messages, schema, checkpoint).run()


class _Loop:
    """The state of one run: the conversation, the tokens used, whether the one repair was spent."""

    def __init__(
        self, step: StepRun, messages: list[Message], schema: OutputSchema | None, checkpoint: StepCheckpoint
    ) -> None:
        self.step, self.messages, self.schema, self.checkpoint = step, messages, schema, checkpoint
        self.usage = Usage()
        self.calls = 0
        self.replayed = 0
        self.repaired = False

    async def run(self) -> StepOutput:
        work = self.step.work
        for _ in range(work.max_iter):
            await self.step.check_cancelled()
            result = await self._chat()
            if result.tool_calls:
                await self._run_tools(result)
                continue
            answer = (result.content or "").strip()
            if not answer:
                self._follow_up(result, prompts.EMPTY_ANSWER)
                continue
            output = self._final(result, answer)
            if output is not None:
                return output
        raise StepFailed(
            f"step {work.step!r} ({work.role}) made {work.max_iter} LLM calls (max_iter) without a final "
            "answer: raise the role's max_iter, or make the task need fewer tool calls"
        )

    async def _chat(self) -> ChatResult:
        """The next answer: recorded by an earlier run of the step, or asked for now (and recorded)."""
        result, replayed = await self.checkpoint.answer(self.calls + 1, self._ask, final=self._ends)
        self.usage += result.usage
        self.calls += 1
        self.replayed += replayed
        return result

    async def _ask(self) -> ChatResult:
        work = self.step.work
        return await self.step.llm.chat(
            self.messages,
            job_id=work.job,
            role=work.role,
            step=work.step,
            tools=self.step.tools.specs() or None,
            response_format=self.schema.response_format() if self.schema else None,
            model=work.llm.model,
            temperature=work.llm.temperature,
            max_tokens=work.llm.max_tokens,
            budget=self.step.budget,
            extra_body=work.llm.extra_body(),
        )

    async def _run_tools(self, result: ChatResult) -> None:
        self.messages.append(result.to_message())
        most = self.step.max_tool_calls_per_turn
        for index, call in enumerate(result.tool_calls, start=1):
            if index > most:
                output = f"Error: not run: at most {most} tool calls run per answer; ask for this one again"
            else:
                output = await self.checkpoint.tool_result(
                    self.calls, index, partial(self._tool, call, index)
                )
            self.messages.append({"role": "tool", "tool_call_id": call.id, "content": output})

    async def _tool(self, call: ToolCall, index: int) -> str:
        key = self.checkpoint.idempotency_key(self.calls, index)
        try:
            return await self.step.tools.call(call, idempotency_key=key)
        except ToolError as exc:
            return error_text(exc)

    @staticmethod
    def _ends(result: ChatResult) -> bool:
        """Whether ``result`` looks like the loop's last answer (held for the result; one that fails its
        output schema and gets a repair is recorded before the repair is asked for)."""
        return not result.tool_calls and bool((result.content or "").strip())

    def _final(self, result: ChatResult, answer: str) -> StepOutput | None:
        """The step's output, or None after asking for the one repair of a malformed answer."""
        if self.schema is None:
            return StepOutput(
                output=answer, usage=self.usage, llm_calls=self.calls, resumed_turns=self.replayed
            )
        try:
            text, data = self.schema.parse(answer)
        except OutputInvalid as exc:
            if self.repaired:
                raise StepFailed(
                    f"the answer of step {self.step.work.step!r} does not match its output_schema after one "
                    f"repair attempt: {exc}; check the schema and the task description, or use a stronger model"
                ) from exc
            self.repaired = True
            self._follow_up(result, prompts.schema_repair(str(exc), self.schema.schema))
            return None
        return StepOutput(
            output=text, data=data, usage=self.usage, llm_calls=self.calls, resumed_turns=self.replayed
        )

    def _follow_up(self, result: ChatResult, request: str) -> None:
        answer = result.to_message()
        answer["content"] = answer["content"] or ""
        self.messages.append(answer)
        self.messages.append({"role": "user", "content": request})
