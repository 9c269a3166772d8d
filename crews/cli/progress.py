"""Live progress of a job for the terminal: one row per step, fed by the job's A2A events."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from bus.contracts.states import TERMINAL

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

    def seed(self, steps: list[dict[str, Any]]) -> None:
        """Show every planned step from the start, in plan order (``steps`` as ``GET /jobs/{id}`` gives them)."""
        for step in steps:
            row = self.steps.setdefault(step["id"], StepRow(step["id"]))
            row.role = step.get("role") or row.role
            row.attempts = max(row.attempts, int(step.get("attempts") or 0))
            if row.state == "pending":
                row.state = step.get("state", "pending")

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
        table = Table(title=f"job {self.job} — {self.state}", title_justify="left")
        for column in ("step", "role", "state", "attempts", "time"):
            table.add_column(column)
        for row in self.steps.values():
            style = STATE_STYLE.get(row.state, "")
            state = f"[{style}]{row.state}[/]" if style else row.state
            table.add_row(row.step, row.role, state, str(row.attempts or ""), row.elapsed())
        return table


def usage_table(usage: dict[str, dict[str, int]]) -> Table:
    """Tokens per role, with a total row."""
    table = Table(title="tokens per role", title_justify="left")
    for column in ("role", "calls", "input", "output"):
        table.add_column(column, justify="right" if column != "role" else "left")
    totals = [0, 0, 0]
    for role, numbers in sorted(usage.items()):
        row = [numbers.get("calls", 0), numbers.get("input_tokens", 0), numbers.get("output_tokens", 0)]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        table.add_row(role, *(str(n) for n in row))
    table.add_row("[bold]total[/]", *(f"[bold]{n}[/]" for n in totals))
    return table


def jobs_table(jobs: list[dict[str, Any]]) -> Table:
    table = Table(title="recent jobs", title_justify="left")
    for column in ("job", "crew", "status"):
        table.add_column(column)
    for job in jobs:
        state = job["status"]
        style = STATE_STYLE.get(state, "")
        table.add_row(job["id"], job["crew"], f"[{style}]{state}[/]" if style else state)
    return table


def roles_table(roles: list[dict[str, Any]]) -> Table:
    """Queue depth and worker processes per role (workers: what the local autoscaler runs)."""
    table = Table(title="roles", title_justify="left")
    for column in ("crew", "role", "queue depth", "workers"):
        table.add_column(column, justify="right" if column in ("queue depth", "workers") else "left")
    for role in roles:
        workers = role.get("workers")
        table.add_row(
            role["crew"], role["role"], str(role["queue_depth"]), "—" if workers is None else str(workers)
        )
    return table


def processes_table(processes: list[dict[str, Any]]) -> Table:
    """The local stack's processes: how many run, their pids, and how often the supervisor restarted them."""
    table = Table(title="processes (crews up)", title_justify="left")
    for column in ("process", "running", "pids", "restarts"):
        table.add_column(column, justify="right" if column in ("running", "restarts") else "left")
    for proc in processes:
        pids = proc.get("pids", [])
        restarts = int(proc.get("restarts", 0))
        table.add_row(
            proc["name"],
            str(len(pids)),
            " ".join(map(str, pids[:6])),
            f"[yellow]{restarts}[/]" if restarts else "0",
        )
    return table
