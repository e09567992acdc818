"""Reading a request body into events, without trusting its shape."""

from __future__ import annotations

from typing import Any

import orjson

# Jitsu SDKs copy the API key into each event; it must never travel further.
SECRET_FIELDS = ("api_key",)
TYPE_FIELDS = ("event_type", "event", "type")  # Jitsu, then common, then Segment


class MalformedBody(ValueError):
    """The body is not a JSON object, array of objects or `{"events": [...]}`."""


def parse(body: bytes) -> tuple[list[Any], bool]:
    """The events in a body, and whether it was a batch. Elements are unchecked."""
    if not body.strip():
        raise MalformedBody("empty body")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(_json_problem(str(exc))) from None
    if isinstance(doc, list):
        return doc, True
    if isinstance(doc, dict):
        for name in ("events", "batch"):
            if isinstance(doc.get(name), list):
                return doc[name], True
        return [doc], False
    raise MalformedBody(f"body is a JSON {type(doc).__name__}, expected an object or array")


def event_type(event: dict[str, Any]) -> str | None:
    for name in TYPE_FIELDS:
        value = event.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def without_secrets(event: dict[str, Any]) -> dict[str, Any]:
    for name in SECRET_FIELDS:
        if name in event:
            return {k: v for k, v in event.items() if k not in SECRET_FIELDS}
    return event


def _json_problem(message: str) -> str:
    # orjson's messages are precise; keep the first clause, never the input.
    if "UTF-8" in message:
        return "body is not valid UTF-8"
    if "depth limit" in message or "recursion" in message:
        return "JSON nested too deeply"
    return "invalid JSON: " + message.split(":", 1)[0]
