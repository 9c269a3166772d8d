"""What a crew's A2A endpoint refuses before anything happens: ``InvalidParamsError`` (-32602) naming the field.

- A message needs a ``messageId``, a ``role`` and at least one part, and every
  part needs content (text, data, a file or a URL): an empty message starts no
  job and answers no question.
- Enum values the SDK's parser drops silently (``ListTasks`` with
  ``status: "TASK_STATE_DONE"``) are refused at the edge instead, by
  ``bus.a2a_nats.strict`` on every binding (the HTTP side in
  ``crews.api.a2a_strict``).
"""

from __future__ import annotations

from a2a.types import Message, Role, SendMessageRequest
from a2a.utils.errors import InvalidParamsError


def check_message(params: SendMessageRequest) -> Message:
    """The request's message, refused unless it has an id, a role and parts with content."""
    if not params.HasField("message"):
        raise InvalidParamsError(message="the request needs a 'message'")
    message = params.message
    if not message.message_id:
        raise InvalidParamsError(message="the message needs a 'messageId' (a new one for every message)")
    if message.role == Role.ROLE_UNSPECIFIED:
        raise InvalidParamsError(message="the message needs a 'role' ('ROLE_USER' for a caller's message)")
    if not message.parts:
        raise InvalidParamsError(message="the message has no parts: send a text or a data part")
    for index, part in enumerate(message.parts):
        if part.WhichOneof("content") is None:
            raise InvalidParamsError(
                message=f"part {index} of the message is empty: give it text, data, raw or url"
            )
    return message
