"""Errors of the crews package.

CrewsError
 ├── CrewSpecError          the crew file is wrong: the user must fix it (file, line, field)
 ├── PlanError              inputs do not fit the crew (missing input, bad value)
 ├── JobError               a job cannot do what was asked (unknown job, already finished)
 │    └── JobNotFound
 ├── ManagerError           a hierarchical manager's decision cannot be applied: the job fails
 │    └── ManagerStopped    the decision would run more steps than budgets.max_steps allows
 ├── CrewNotFound           no crew registered under that name
 └── LocalStackError        the local stack could not start a server or process
"""

from __future__ import annotations


class CrewsError(Exception):
    """Root of every error crews raises on purpose."""


class CrewSpecError(CrewsError):
    """A crew file (or CrewAI project) is invalid; the message says where and how to fix it."""


class PlanError(CrewsError):
    """The inputs do not fit the crew; the message names what is missing."""


class JobError(CrewsError):
    """A job operation cannot be done in the job's current state."""


class JobNotFound(JobError):
    """No job with that id."""


class ManagerError(CrewsError):
    """A hierarchical manager's decision does not fit the plan; the message says which and why."""


class ManagerStopped(ManagerError):
    """The manager asked for more steps than ``budgets.max_steps`` allows (a looping manager ends here)."""


class CrewNotFound(CrewsError):
    """No crew registered under that name."""


class LocalStackError(CrewsError):
    """The local stack could not start one of its servers or processes."""
