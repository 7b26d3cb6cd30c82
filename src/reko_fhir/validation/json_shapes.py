"""Reading a resource's JSON where its shape may be wrong: an element of the wrong JSON type
is the profile walk's structural error at its own path (an issue with its expression), so the
rules across resources read past it instead of raising on it."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def as_object(value: Any) -> Json:
    """``value`` when a JSON object, else an empty one: an element of the wrong JSON type is
    the profile walk's structural error at its own path, and no rule looks into it."""
    return value if isinstance(value, dict) else {}


def as_objects(value: Any) -> list[Json]:
    """The JSON objects of an array (none when ``value`` is no array; see as_object)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def as_array(value: Any) -> list[Any]:
    """``value`` when a JSON array, else an empty one (see as_object)."""
    return value if isinstance(value, list) else []


def as_text(value: Any) -> str | None:
    """``value`` when a string (see as_object)."""
    return value if isinstance(value, str) else None
