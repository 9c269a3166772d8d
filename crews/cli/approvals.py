"""``crews approvals``, ``approve``, ``deny``: a person's decisions on the tool calls that wait for one."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from crews.cli.jobs import ApiOption, api_url

CommentOption = Annotated[str, typer.Option("--comment", "-m", help="Why: recorded with the decision.")]


def register(app: typer.Typer) -> None:
    app.command("approvals")(approvals)
    app.command()(approve)
    app.command()(deny)


def approvals(
    job: Annotated[str | None, typer.Argument(help="a job id; left out: every running job")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="also those already decided")] = False,
    api: ApiOption = None,
) -> None:
    """Tool calls that wait for a person's approval: the tool and its exact arguments."""
    asyncio.run(_list(job, show_all, api_url(api)))


def approve(job: str, approval: str, comment: CommentOption = "", api: ApiOption = None) -> None:
    """Approve one waiting call: it runs with exactly the arguments shown by `crews approvals`."""
    asyncio.run(_decide(job, approval, True, comment, api_url(api)))


def deny(
    job: str,
    approval: str,
    comment: Annotated[str, typer.Option("--comment", "-m", help="Why (the model is told).")],
    api: ApiOption = None,
) -> None:
    """Deny one waiting call: it does not run, and the model is told no (with the comment)."""
    if not comment.strip():
        raise typer.BadParameter("say why: the model reads it", param_hint="--comment")
    asyncio.run(_decide(job, approval, False, comment, api_url(api)))


async def _list(job: str | None, show_all: bool, url: str | None) -> None:
    from crews.cli.job_commands import client_for

    async with client_for(url) as client:
        jobs = [job] if job else [j.id for j in await client.jobs(status="running")]
        shown = 0
        for one in jobs:
            for record in await client.approvals(one):
                if show_all or record["status"] == "pending":
                    typer.echo(describe(one, record))
                    shown += 1
        if not shown:
            typer.echo("no tool calls wait for approval" + (f" in job {job}" if job else ""))


async def _decide(job: str, approval: str, approve_it: bool, comment: str, url: str | None) -> None:
    from crews.cli.job_commands import client_for
    from crews.errors import JobError

    async with client_for(url) as client:
        found = next((a for a in await client.approvals(job) if a["id"] == approval), None)
        if found is None:
            raise JobError(f"job {job} has no approval {approval!r}: `crews approvals {job}` lists them")
        # The decision names the digest of the call shown here: if the call waiting is another, it is refused.
        record = await client.decide(job, approval, approve_it, comment, found["arguments_sha256"])
        typer.echo(describe(job, record))


def describe(job: str, record: dict[str, Any]) -> str:
    """One approval in a few lines: id, step, tool and arguments, status, who decided and why."""
    arguments = json.dumps(record["arguments"], ensure_ascii=False, sort_keys=True)
    lines = [
        f"{job} {record['id']}  [{record['status']}]",
        f"  step {record['step']} ({record['role']}): {record['tool']}({arguments})",
        f"  sha256 {record['arguments_sha256']}",
    ]
    if record.get("decided_by"):
        when = datetime.fromtimestamp(record["decided_at"], UTC).isoformat(timespec="seconds")
        why = f": {record['comment']}" if record.get("comment") else ""
        lines.append(f"  {record['status']} by {record['decided_by']} at {when}{why}")
    return "\n".join(lines)
