"""What the chaos run runs: its crews, the scripted LLM's answers, and the side effects each job must leave.

- ``ledger`` (parallel, three roles): ``open`` (clerk) fans out to ``east``,
  ``west`` and ``north`` (analysts), which fan in to ``close`` (auditor), then
  ``file`` (clerk) runs after it. Every step calls ``ledger_append`` 1 to 3 times
  (in one or several turns) before it answers, each call with an entry
  ``<job>/<step>/<turn>/<call>``: the same place in the conversation gives the
  same entry (the script answers by turn), so a tool call run twice with an
  unstable idempotency key would show as one entry applied twice.
- ``doomed``: its one step's LLM answers 500 on every delivery: the step is
  dead-lettered and the job must fail with the reason, never hang.
- ``idle``: no worker ever takes its step, so its jobs end only by their own
  short ``timeout_s`` (the coordinator's timer, across outages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from inference.testing.script import Script

JobKind = Literal["ledger", "deadline", "doomed"]


@dataclass(frozen=True)
class LedgerStep:
    """One step of the ledger crew: its role, what it waits for, and its tool calls per turn."""

    name: str
    role: str
    context: tuple[str, ...]
    calls_per_turn: tuple[int, ...]


LEDGER_STEPS = (
    LedgerStep("open", "clerk", (), (1,)),
    LedgerStep("east", "analyst", ("open",), (1, 1)),
    LedgerStep("west", "analyst", ("open",), (2,)),  # two calls in one answer
    LedgerStep("north", "analyst", ("open",), (1, 1, 1)),
    LedgerStep("close", "auditor", ("east", "west", "north"), (1,)),
    LedgerStep("file", "clerk", ("close",), (1, 1)),
)
LEDGER_ROLES = ("clerk", "analyst", "auditor")
CALLS_PER_JOB = sum(sum(step.calls_per_turn) for step in LEDGER_STEPS)

LEDGER_CREW, DOOMED_CREW, IDLE_CREW = "ledger", "doomed", "idle"
DOOMED_ROLE = "doomer"


def ledger_crew() -> str:
    roles = "\n".join(
        f"  {role}: {{role: {role.title()}, goal: Keep the books, tools: [{{name: ledger_append, approval: none}}]}}"
        for role in LEDGER_ROLES
    )
    tasks = "\n".join(
        f"  {step.name}: {{description: Post the {step.name} entries., expected_output: Done., "
        f"agent: {step.role}" + (f", context: [{', '.join(step.context)}]" if step.context else "") + "}"
        for step in LEDGER_STEPS
    )
    return f"name: {LEDGER_CREW}\nprocess: parallel\nmemory: false\nroles:\n{roles}\ntasks:\n{tasks}\n"


DOOMED = f"""
name: {DOOMED_CREW}
memory: false
roles: {{{DOOMED_ROLE}: {{role: Doomer, goal: Try}}}}
tasks: {{attempt: {{description: Try it., expected_output: Done., agent: {DOOMED_ROLE}}}}}
"""

IDLE = f"""
name: {IDLE_CREW}
memory: false
roles: {{doer: {{role: Doer, goal: Do it}}}}
tasks: {{only: {{description: Do it., expected_output: Done., agent: doer}}}}
"""


def entry(job: str, step: str, turn: int, call: int) -> str:
    return f"{job}/{step}/{turn}/{call}"


def key_of(entry_text: str) -> str:
    """The idempotency key the call behind ``entry_text`` must have had: ``<job>:<step>:<turn>:<call>``."""
    return entry_text.replace("/", ":")


def expected_entries(job: str) -> list[str]:
    """The side effects a completed ledger job leaves: one entry per tool call of each step."""
    return [
        entry(job, step.name, turn, call)
        for step in LEDGER_STEPS
        for turn, calls in enumerate(step.calls_per_turn, start=1)
        for call in range(1, calls + 1)
    ]


def script(latency_s: float) -> Script:
    """The LLM: each ledger step's tool calls turn by turn, then its answer; the doomed step always a 500."""
    rules: list[dict[str, Any]] = []
    for step in LEDGER_STEPS:
        replies: list[Any] = [
            {
                "tool_calls": [
                    {"name": "ledger_append", "arguments": {"entry": f"{{job}}/{{step}}/{{turn}}/{call}"}}
                    for call in range(1, calls + 1)
                ]
            }
            for calls in step.calls_per_turn
        ]
        replies.append({"text": f"{step.name} posted"})
        rules.append({"role": step.role, "step": step.name, "by_turn": True, "replies": replies})
    rules.append({"role": DOOMED_ROLE, "replies": [{"error": 500, "message": "the doomed step fails"}]})
    return Script.model_validate({"latency_s": latency_s, "rules": rules})
