"""Errors of the roles package.

RoleError
 ├── StepFailed              the step cannot succeed; ``reason`` tells a person what to change (not retryable)
 │    └── ToolUnavailable    a tool's MCP server stayed unreachable through the retries
 ├── StepCancelled           the job was cancelled (or failed) before or while the step ran
 ├── ToolCrashed             a tool raised something else than ToolError (a bug, an outage); retried by redelivery
 └── ToolError               one tool call failed; its message goes back to the model, which may recover
      ├── ToolNotAllowed     the model called a tool outside the role's allow-list (nothing ran)
      └── ToolArgumentsInvalid   the arguments do not match the tool's JSON schema

Retryable failures are not ours: the LLM pool raises ``inference.errors.LLMUnavailable``
and the worker turns it into ``bus.errors.RetryableError`` (a nak with delay).
"""

from __future__ import annotations

from inference.errors import BadLLMResponse, BudgetExceeded


class RoleError(Exception):
    """Root of the roles package's errors."""

    retryable: bool = False


class StepFailed(RoleError):
    """The step cannot succeed as it is; running it again would fail the same way."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ToolUnavailable(StepFailed):
    """A tool's server could not be reached (after retries with backoff), or did not list the tool."""

    def __init__(self, reason: str, *, server: str) -> None:
        super().__init__(reason)
        self.server = server


class StepCancelled(RoleError):
    """The job is no longer running (status ``cancelled`` or ``failed``): stop the step."""

    def __init__(self, job: str, status: str) -> None:
        super().__init__(f"job {job} is {status}")
        self.job = job
        self.status = status


class ToolCrashed(RoleError):
    """A tool raised an unexpected error; its message is withheld (it may quote the arguments or a secret).

    Not for the model: the step's delivery fails and is retried (the native loop resumes at this call).
    """

    retryable = True

    def __init__(self, tool: str, error_type: str) -> None:
        super().__init__(
            f"tool {tool} raised {error_type} (its message is withheld from logs and spans): the step is "
            "retried; if it keeps failing, check the tool's own logs and its backing service"
        )
        self.tool = tool
        self.error_type = error_type


class ToolError(RoleError):
    """A tool call failed in a way the model can act on (it is told, as the tool's result)."""


class ToolNotAllowed(ToolError):
    """The model asked for a tool the step does not allow (enforced in code, not by the prompt): nothing ran."""

    def __init__(self, reason: str, *, tool: str) -> None:
        super().__init__(reason)
        self.tool = tool


class ToolArgumentsInvalid(ToolError):
    """The model's arguments do not match the tool's JSON schema."""


CANNOT_SUCCEED: tuple[type[Exception], ...] = (StepFailed, BudgetExceeded, BadLLMResponse)
"""Errors after which a retry of the step cannot help: the step fails (worker and role agent alike)."""
