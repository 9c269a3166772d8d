"""Enum values the protobuf JSON parser drops: found, so that a binding can refuse them (-32602).

a2a-sdk parses params with ``ignore_unknown_fields=True`` (unknown fields are
allowed for forward compatibility), which also turns an unknown enum value
into the field's default: ``ListTasks`` with ``"status": "TASK_STATE_DONE"``
would list every task. ``unknown_enum_values`` names each enum field whose
given value is not one of its type's, at any depth; both the NATS binding and
the HTTP edge of the crews' A2A endpoints refuse such a call.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor


def unknown_enum_values(value: Any, descriptor: Any, path: str = "") -> list[str]:
    """``field: value`` for every enum value in ``value`` (proto JSON of the message ``descriptor``) its enum lacks."""
    if not isinstance(value, dict):
        return []
    found: list[str] = []
    for key, item in value.items():
        field = descriptor.fields_by_camelcase_name.get(key) or descriptor.fields_by_name.get(key)
        if field is None:
            continue
        items = item if isinstance(item, list) and _repeated(field) else [item]
        for one in items:
            found += _check(one, field, f"{path}{key}")
    return found


def _repeated(field: Any) -> bool:
    return bool(field.is_repeated)


def _check(value: Any, field: Any, path: str) -> list[str]:
    if field.type == FieldDescriptor.TYPE_ENUM and field.enum_type.full_name != "google.protobuf.NullValue":
        names = field.enum_type.values_by_name
        numbers = field.enum_type.values_by_number
        known = (isinstance(value, str) and value in names) or (
            isinstance(value, int) and not isinstance(value, bool) and value in numbers
        )
        return [] if known else [f"{path}: {value!r} (one of {', '.join(names)})"]
    if field.type == FieldDescriptor.TYPE_MESSAGE and not field.message_type.full_name.startswith(
        "google.protobuf."
    ):
        if field.message_type.GetOptions().map_entry:
            return []
        return unknown_enum_values(value, field.message_type, f"{path}.")
    return []
