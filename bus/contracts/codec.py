"""A2A messages on the wire: the protobuf JSON mapping the A2A 1.0 spec uses."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message as ProtoMessage

M = TypeVar("M", bound=ProtoMessage)


def encode(message: ProtoMessage) -> bytes:
    """Serialise an A2A message (``a2a.types``) to compact JSON bytes."""
    return json_format.MessageToJson(message, indent=None).encode()


def decode(data: bytes, cls: type[M]) -> M:
    """Parse JSON bytes into an A2A message of type ``cls``; unknown fields are refused."""
    return json_format.Parse(data, cls())
