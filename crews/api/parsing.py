"""Crew files from request bodies, parsed off the event loop, a few at a time, within a time limit.

Parsing is CPU work on attacker-written text: on the event loop it would stall
every request (``/healthz`` included) for as long as it takes. Here it runs in a
worker thread (``asyncio.to_thread``); at most ``CREWS_API_PARSE_CONCURRENCY``
parses run at once (the rest wait their turn, within the same time limit), and
one that takes longer than ``CREWS_API_PARSE_TIMEOUT_S`` is answered with 422.
The YAML reader's own caps (``crews.spec.positions``: expanded values, depth)
keep the thread itself from running long.
"""

from __future__ import annotations

import asyncio
import json

from crews.api.deps import Services
from crews.api.errors import UnsupportedMediaType
from crews.spec.limits import SpecLimits
from crews.spec.load import load_crew_text
from crews.spec.models import CrewSpec
from crews.spec.problems import CrewFileError, SpecIssue

BODY_NAME = "<body>"
"""The file name crew-file errors give for a crew sent in a request body."""

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
JSON_TYPES = ("application/json",)


async def parse_crew_off_loop(body: bytes, content_type: str, deps: Services) -> CrewSpec:
    """The crew in a request body, parsed in a thread; ``CrewFileError`` for a bad or too costly file."""
    timeout = deps.api.api_parse_timeout_s
    try:
        async with asyncio.timeout(timeout):
            async with deps.parse_slots:
                return await asyncio.to_thread(parse_crew, body, content_type, deps.limits)
    except TimeoutError:
        message = (
            f"reading the crew file took longer than {timeout:g} s (CREWS_API_PARSE_TIMEOUT_S): simplify it"
        )
        raise CrewFileError([SpecIssue(BODY_NAME, 1, 1, "", message)]) from None


def parse_crew(body: bytes, content_type: str, limits: SpecLimits | None = None) -> CrewSpec:
    """The crew in a request body; a bad file raises ``CrewFileError`` naming line, column and field."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in YAML_TYPES + JSON_TYPES:
        raise UnsupportedMediaType(
            f"send the crew file as YAML (Content-Type: application/yaml) or JSON (application/json), "
            f"not {media or 'a body without Content-Type'}"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CrewFileError([SpecIssue(BODY_NAME, 1, 1, "", "the body is not UTF-8 text")]) from None
    if media in JSON_TYPES:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            issue = SpecIssue(BODY_NAME, exc.lineno, exc.colno, "", f"not valid JSON: {exc.msg}")
            raise CrewFileError([issue]) from None
        except RecursionError:
            issue = SpecIssue(BODY_NAME, 1, 1, "", "the JSON nests too deeply to be a crew file")
            raise CrewFileError([issue]) from None
    return load_crew_text(text, BODY_NAME, limits)  # JSON is YAML, so its errors get lines too
