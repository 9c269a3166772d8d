"""Redis key layouts shared across the bus: a job's keys (one hash tag, one cluster slot) and the crew registry."""

from __future__ import annotations

from pydantic import BaseModel, Field

CREW_PREFIX = "crews:crew:"


def crew_key(name: str) -> str:
    """Where a registered crew's definition (its ``CrewSpec`` as JSON) is kept."""
    return f"{CREW_PREFIX}{name}"


class StepKeys(BaseModel):
    """Redis keys of the job (docs/architecture.md, "Redis keys")."""

    state: str
    results: str
    memory: str
    usage: str
    approvals: str = Field("", description="hash of tool calls waiting for (or given) a person's approval")
    turns: str = Field(
        "",
        description="hash of the running steps' checkpointed tool loops (empty: no checkpoints)",
    )
    progress: str = Field(
        "",
        description="hash step → the delivery attempt that started it, written by the role worker as the "
        "step starts (empty: a step from a coordinator that sends none; its WORKING then sets the state)",
    )

    @classmethod
    def for_job(cls, job: str) -> StepKeys:
        """``crews:{job:<id>}:state|results|memory|usage|approvals|turns|progress``: one hash tag, one slot."""
        tag = f"crews:{{job:{job}}}"
        return cls(
            state=f"{tag}:state",
            results=f"{tag}:results",
            memory=f"{tag}:memory",
            usage=f"{tag}:usage",
            approvals=f"{tag}:approvals",
            turns=f"{tag}:turns",
            progress=f"{tag}:progress",
        )

    @staticmethod
    def turn_field(step: str, *parts: str | int) -> str:
        """A field of the turns hash: ``<step>:prompt``, ``<step>:llm:<turn>``, ``<step>:tool:<turn>:<call>``.

        Step ids never hold ``:`` (crew task names are ``[A-Za-z0-9_-]``), so
        ``<step>:`` is a prefix of that step's fields only.
        """
        return ":".join([step, *(str(part) for part in parts)])
