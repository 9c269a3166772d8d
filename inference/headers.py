"""Request headers the client adds to every call (and the scripted server reads).

They name the job, role and step a request belongs to, so server logs (vLLM's
included) can be read per job, and the scripted server can answer from its
script. Values are percent-encoded so any role or step name fits in a header.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

JOB_HEADER = "X-Crews-Job"
ROLE_HEADER = "X-Crews-Role"
STEP_HEADER = "X-Crews-Step"


def encode(value: str) -> str:
    return quote(value, safe="-_.~:@")


def decode(value: str | None) -> str:
    return unquote(value) if value else ""


def request_headers(job_id: str, role: str, step: str) -> dict[str, str]:
    """The headers for one request of ``job_id``'s ``role`` on ``step``."""
    return {JOB_HEADER: encode(job_id), ROLE_HEADER: encode(role), STEP_HEADER: encode(step)}
