"""Who a request is for: a principal (named by its API key) and the scopes it was given.

Jobs belong to the principal that submitted them (``owner`` in the job's state);
a principal sees, cancels and decides the approvals of its own jobs only, and
its idempotency keys are its own (``crews:idem:<owner>:<key>``). A crew belongs
to the principal that registered it first: another may not replace or delete
it. The ``admin`` scope sees and may do everything.

| scope | allows |
|---|---|
| ``crews:write`` | register, replace (its own) and delete (its own) crews |
| ``jobs:submit`` | submit jobs, cancel its own |
| ``jobs:read`` | read, list and follow its own jobs and their approvals |
| ``approvals:decide`` | approve or deny tool calls of its own jobs |
| ``admin`` | all of the above, for every principal's jobs and crews; metrics |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

Scope = Literal["crews:write", "jobs:submit", "jobs:read", "approvals:decide", "admin"]
SCOPES: Final[tuple[str, ...]] = get_args(Scope)
ADMIN: Final = "admin"


@dataclass(frozen=True)
class Principal:
    """A caller of the API: its name (the owner recorded on its jobs) and its scopes."""

    name: str
    scopes: frozenset[str]

    @property
    def admin(self) -> bool:
        return ADMIN in self.scopes

    def can(self, scope: Scope) -> bool:
        return self.admin or scope in self.scopes

    def owns(self, owner: str) -> bool:
        """Whether this principal may see a job or crew of ``owner``."""
        return self.admin or owner == self.name


LOCAL: Final = Principal("local", frozenset({ADMIN}))
"""The caller of an API without keys (which serves loopback only): one local user who may do everything."""
