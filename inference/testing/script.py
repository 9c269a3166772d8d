"""The script the scripted LLM server answers from, and its per-job progress through it.

A script is a list of rules matched on the request's role and step (the
``X-Crews-Role`` / ``X-Crews-Step`` headers the client sends); the first rule
whose ``role`` and ``step`` match (an omitted one matches anything) answers,
else ``default`` does. Each rule's ``replies`` are used in order, one per
request of the same (job, role, step); the last one repeats. So a tool-call
reply followed by a text reply drives one turn of an agent's tool loop::

    model: crews-local          # the served model name (requests for another get 404)
    latency_s: 0.0              # added before every reply (a reply may set its own)
    rules:
      - role: researcher
        step: research
        replies:
          - tool_calls: [{name: search, arguments: {query: crews}}]
          - text: "Crews are teams of agents."
      - role: writer
        replies:
          - {error: 500, times: 2}              # two failures, then...
          - {json: {title: "Crews", words: 3}}  # ...a JSON answer
          - {error: 429, retry_after: 1}
      - replies: ["plain text is short for {text: ...}"]
      - role: clerk
        by_turn: true                           # reply n answers the conversation's turn n
        replies:
          - tool_calls: [{name: ledger_append, arguments: {entry: "{job}/{step}/{turn}"}}]
          - text: posted
    default:
      - echo: "echo: {input}"   # {input}: last user message; also {role}, {step}, {job}

With ``by_turn`` a rule picks its reply by the conversation's turn (how many
assistant messages the request carries) instead of by arrival, so a
conversation asked again — a step restarted or resumed after a crash — gets
the same answers. String values in tool-call arguments may hold ``{job}``,
``{role}``, ``{step}`` and ``{turn}`` (the turn that reply answers, from 1).

Usage is deterministic: tokens are whitespace-separated words (input: every
message's text; output: the content plus each tool call's name and JSON
arguments).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
)

from inference.settings import DEFAULT_MODEL

REPLY_KEYS = ("tool_calls", "text", "json", "echo", "error")


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    latency_s: float | None = Field(None, ge=0, description="delay before this reply (default: the script's)")
    times: int = Field(1, ge=1, description="use this reply this many times in a row")


class TextReply(_Reply):
    text: str


class ScriptedToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class ToolCallsReply(_Reply):
    tool_calls: list[ScriptedToolCall] = Field(min_length=1)
    text: str | None = None


class JsonReply(_Reply):
    data: Any = Field(alias="json", description="answered as JSON text in the content")


class EchoReply(_Reply):
    echo: str = Field("{input}", description="template: {input} (last user message), {role}, {step}, {job}")


class ErrorReply(_Reply):
    error: int = Field(ge=400, le=599, description="HTTP status to answer with")
    message: str = "scripted error"
    retry_after: float | None = Field(None, ge=0, description="Retry-After header, seconds")


def _reply_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((key for key in REPLY_KEYS if key in value), None)
    kinds: list[tuple[type[_Reply], str]] = [
        (ToolCallsReply, "tool_calls"),
        (TextReply, "text"),
        (JsonReply, "json"),
        (EchoReply, "echo"),
        (ErrorReply, "error"),
    ]
    return next((tag for cls, tag in kinds if isinstance(value, cls)), None)


def _text_shorthand(value: Any) -> Any:
    return {"text": value} if isinstance(value, str) else value


Reply = Annotated[
    Annotated[ToolCallsReply, Tag("tool_calls")]
    | Annotated[TextReply, Tag("text")]
    | Annotated[JsonReply, Tag("json")]
    | Annotated[EchoReply, Tag("echo")]
    | Annotated[ErrorReply, Tag("error")],
    Discriminator(
        _reply_kind,
        custom_error_type="unknown_reply",
        custom_error_message=f"a reply needs one of the keys {', '.join(REPLY_KEYS)} (or is a plain string)",
    ),
    BeforeValidator(_text_shorthand),
]


def _echo_default() -> list[Reply]:
    return [EchoReply()]


class Rule(BaseModel):
    """Replies for requests of one role and/or step (None matches any)."""

    model_config = ConfigDict(extra="forbid")

    role: str | None = None
    step: str | None = None
    by_turn: bool = Field(
        False,
        description="pick the reply by the conversation's turn (assistant messages so far), not by arrival",
    )
    replies: list[Reply] = Field(min_length=1)

    def matches(self, role: str, step: str) -> bool:
        return self.role in (None, role) and self.step in (None, step)


class Script(BaseModel):
    """What the scripted server answers; see the module docstring for the format."""

    model_config = ConfigDict(extra="forbid")

    model: str = DEFAULT_MODEL
    latency_s: float = Field(0.0, ge=0)
    rules: list[Rule] = Field(default_factory=list)
    default: list[Reply] = Field(default_factory=lambda: _echo_default(), min_length=1)

    @classmethod
    def from_file(cls, path: Path) -> Script:
        """Load a YAML or JSON script file; errors name the file and the field."""
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read script {path}: {exc}") from exc
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            raise ValueError(f"invalid script {path}:\n{exc}") from exc

    @classmethod
    def for_role(
        cls, role: str, *replies: Reply | str | dict[str, Any], step: str | None = None, **fields: Any
    ) -> Script:
        """A script with one rule, e.g. ``Script.for_role("writer", TextReply(text="done"))``."""
        rule = Rule.model_validate({"role": role, "step": step, "replies": list(replies)})
        return cls.model_validate({"rules": [rule], **fields})


class RecordedRequest(BaseModel):
    """One request the scripted server received (for tests to assert what an engine sent)."""

    job: str
    role: str
    step: str
    traceparent: str | None = None
    authorization: str | None = None
    body: dict[str, Any]


def expanded(replies: list[Reply]) -> list[Reply]:
    return [reply for reply in replies for _ in range(reply.times)]


class ScriptState:
    """The current script, each (job, role, step)'s position in it, and the requests received.

    Thread-safe: the server reads it on its own thread while a test replaces the script.
    """

    def __init__(self, script: Script, *, keep_requests: int = 1000) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._script = script
        self._positions: dict[tuple[str, str, str], int] = defaultdict(int)
        self._requests: deque[RecordedRequest] = deque(maxlen=keep_requests)
        self._waiting = 0.0

    @property
    def script(self) -> Script:
        with self._lock:
            return self._script

    def replace(self, script: Script) -> None:
        """Use ``script`` from now on, with every position, the request log and ``waiting`` reset."""
        with self._lock:
            self._script = script
            self._positions.clear()
            self._requests.clear()
            self._waiting = 0.0

    def next_reply(self, request: RecordedRequest) -> tuple[Reply, float]:
        """The reply for this request and its latency; advances the (job, role, step) position."""
        with self._lock:
            self._requests.append(request)
            self._arrived.notify_all()
            script = self._script
            rule = next((r for r in script.rules if r.matches(request.role, request.step)), None)
            replies = expanded(rule.replies if rule else script.default)
            key = (request.job, request.role, request.step)
            position = self._positions[key]
            self._positions[key] = position + 1
            if rule is not None and rule.by_turn:
                position = conversation_turn(request.body) - 1
        reply = replies[min(position, len(replies) - 1)]
        return reply, script.latency_s if reply.latency_s is None else reply.latency_s

    @property
    def waiting(self) -> float:
        """The ``vllm:num_requests_waiting`` this server reports at ``/metrics``."""
        with self._lock:
            return self._waiting

    def set_waiting(self, waiting: float) -> None:
        with self._lock:
            self._waiting = waiting

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float) -> bool:
        """Block until ``count`` requests have arrived (False after ``timeout`` seconds)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self._requests) >= count, timeout)


def conversation_turn(body: dict[str, Any]) -> int:
    """The turn a chat request asks for, from 1: one more than the assistant messages it carries."""
    messages = body.get("messages") or []
    return 1 + sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")


def count_words(value: Any) -> int:
    """The scripted server's token count: whitespace-separated words of the text in ``value``."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(count_words(part.get("text", "") if isinstance(part, dict) else part) for part in value)
    return 0 if value is None else len(json.dumps(value).split())
