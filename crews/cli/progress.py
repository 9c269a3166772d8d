"""Live progress of a job for the terminal: one row per step, fed by the job's A2A events."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from bus.contracts.events import DECISION_KEY, ManagerDecision
from bus.contracts.states import TERMINAL
from bus.contracts.usage import RoleUsage
from crews.api.models import JobSummary, RoleLoad, StepView
from crews.jobs.store import StackProcess

STATE_STYLE = {
    "submitted": "dim",
    "working": "yellow",
    "completed": "green",
    "failed": "red",
    "canceled": "magenta",
    "input-required": "cyan",
}


def _state(raw: str) -> str:
    return raw.removeprefix("TASK_STATE_").lower().replace("_", "-")


@dataclass
class StepRow:
    step: str
    role: str = ""
    state: str = "pending"
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    evals: str = ""

    def elapsed(self) -> str:
        if self.started is None:
            return ""
        return f"{(self.ended or time.monotonic()) - self.started:.1f}s"


@dataclass
class JobProgress:
    """What the events said so far: each step's state, the job's state, and its output."""

    job: str
    steps: dict[str, StepRow] = field(default_factory=dict)
    state: str = "submitted"
    output: str = ""
    reason: str = ""
    decisions: list[ManagerDecision] = field(default_factory=list)

    def seed(self, steps: list[StepView]) -> None:
        """Show every planned step from the start, in plan order (``steps`` as ``GET /jobs/{id}`` gives them)."""
        for step in steps:
            row = self.steps.setdefault(step.id, StepRow(step.id))
            row.role = step.role or row.role
            row.tokens = step.tokens or row.tokens
            row.cost_usd = step.cost_usd or row.cost_usd
            row.attempts = max(row.attempts, step.attempts)
            if step.evals:
                row.evals = f"{sum(e.passed for e in step.evals)}/{len(step.evals)}"
            if row.state == "pending":
                row.state = step.state

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def apply(self, event: dict[str, Any]) -> None:
        if "statusUpdate" in event:
            self._status(event["statusUpdate"])
        elif "artifactUpdate" in event and event["artifactUpdate"].get("taskId") == self.job:
            parts = event["artifactUpdate"].get("artifact", {}).get("parts", [])
            self.output = "".join(p.get("text", "") for p in parts)

    def _status(self, update: dict[str, Any]) -> None:
        state = _state(update.get("status", {}).get("state", ""))
        task_id = update.get("taskId", "")
        told = update.get("metadata", {}).get(DECISION_KEY)
        if task_id == self.job and told is not None:  # a job.decision: the job keeps running
            decision = ManagerDecision.model_validate(told)
            if decision not in self.decisions:
                self.decisions.append(decision)
            return
        if task_id == self.job:
            self.state = state
            message = update.get("status", {}).get("message", {})
            self.reason = "".join(p.get("text", "") for p in message.get("parts", [])) or self.reason
            return
        step = task_id.removeprefix(f"{self.job}.")
        row = self.steps.setdefault(step, StepRow(step))
        metadata = update.get("metadata", {})
        row.role = metadata.get("role", row.role)
        row.attempts = max(row.attempts, int(metadata.get("attempt") or 0))
        row.state = state
        now = time.monotonic()
        if state == "working" and row.started is None:
            row.started = now
        if state in TERMINAL:
            row.ended = now

    def table(self) -> Table:
        caption = "\n".join(d.text() for d in self.decisions) or None
        table = Table(
            title=f"job {self.job} — {self.state}",
            title_justify="left",
            caption=caption,
            caption_justify="left",
        )
        columns = ("step", "role", "state", "attempts", "time", "tokens", "cost", "evals")
        for column in columns:
            table.add_column(
                column, justify="right" if column in ("attempts", "tokens", "cost", "evals") else "left"
            )
        for row in self.steps.values():
            style = STATE_STYLE.get(row.state, "")
            table.add_row(
                row.step,
                row.role,
                f"[{style}]{row.state}[/]" if style else row.state,
                str(row.attempts or ""),
                row.elapsed(),
                str(row.tokens) if row.tokens else "",
                usd(row.cost_usd) if row.tokens else "",
                row.evals,
            )
        return table


def usd(amount: float) -> str:
    """Dollars with enough digits for a fraction of a cent."""
    return f"${amount:.6f}" if amount < 0.01 else f"${amount:.4f}"


def usage_table(usage: dict[str, RoleUsage]) -> Table:
    """Tokens and cost per role, with a total row."""
    table = Table(title="tokens and cost per role", title_justify="left")
    for column in ("role", "calls", "input", "output", "cost"):
        table.add_column(column, justify="right" if column != "role" else "left")
    totals = [0, 0, 0]
    total_cost = 0.0
    for role, numbers in sorted(usage.items()):
        row = [numbers.calls, numbers.input_tokens, numbers.output_tokens]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        total_cost += numbers.cost_usd
        table.add_row(role, *(str(n) for n in row), usd(numbers.cost_usd))
    table.add_row("[bold]total[/]", *(f"[bold]{n}[/]" for n in totals), f"[bold]{usd(total_cost)}[/]")
    return table


def jobs_table(jobs: list[JobSummary]) -> Table:
    table = Table(title="recent jobs", title_justify="left")
    for column in ("job", "crew", "status", "tokens", "cost"):
        table.add_column(column, justify="right" if column in ("tokens", "cost") else "left")
    for job in jobs:
        style = STATE_STYLE.get(job.status, "")
        table.add_row(
            job.id,
            job.crew,
            f"[{style}]{job.status}[/]" if style else job.status,
            str(job.tokens),
            usd(job.cost_usd),
        )
    return table


def roles_table(roles: list[RoleLoad]) -> Table:
    """Queue depth and worker processes per role (workers: what the local autoscaler runs)."""
    table = Table(title="roles", title_justify="left")
    for column in ("crew", "role", "queue depth", "workers"):
        table.add_column(column, justify="right" if column in ("queue depth", "workers") else "left")
    for role in roles:
        workers = "—" if role.workers is None else str(role.workers)
        table.add_row(role.crew, role.role, str(role.queue_depth), workers)
    return table


def processes_table(processes: list[StackProcess]) -> Table:
    """The local stack's processes: how many run, their pids, and how often the supervisor restarted them."""
    table = Table(title="processes (crews up)", title_justify="left")
    for column in ("process", "running", "pids", "restarts"):
        table.add_column(column, justify="right" if column in ("running", "restarts") else "left")
    for proc in processes:
        pids, restarts = proc.pids, proc.restarts
        table.add_row(
            proc.name,
            str(len(pids)),
            " ".join(map(str, pids[:6])),
            f"[yellow]{restarts}[/]" if restarts else "0",
        )
    return table
