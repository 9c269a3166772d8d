"""Errors of the inference package.

InferenceError
 ├── LLMUnavailable      no endpoint answered after retries (429, 5xx, timeout, refused): retry later
 ├── BudgetExceeded      the job has used its token budget: do not retry
 ├── BadLLMResponse      the pool refused the request (4xx) or answered with something unusable
 └── LocalLLMError       the local model server could not be installed or started

Each error says on itself whether a retry can help (``retryable``) and, for
``LLMUnavailable``, after how long (``retry_after``, seconds), so a worker can
nak its step with that delay.
"""

from __future__ import annotations


class InferenceError(Exception):
    """Root of the inference package's errors."""

    retryable: bool = False


class LLMUnavailable(InferenceError):
    """Every attempt failed with a transient error (rate limit, server error, timeout, connection)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetExceeded(InferenceError):
    """The job has spent its token or money budget; raise the budget or shorten the crew's tasks."""

    retryable = False

    def __init__(self, message: str, *, job_id: str, used: float, limit: float) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.used = used
        self.limit = limit


class BadLLMResponse(InferenceError):
    """The request was refused (4xx) or the answer cannot be used (no choice, bad tool arguments, bad JSON)."""

    retryable = False

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class LocalLLMError(InferenceError):
    """The local vLLM could not be installed, converted or started; the message has the log tail."""

    retryable = False
