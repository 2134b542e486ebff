"""Turning a model's answer into one JSON object: strict parse first, then conservative repairs.

VLMs wrap JSON in Markdown fences, add a sentence before it, or leave a trailing comma. The
repairs here are only those that cannot change what the model meant: strip code fences, take the
first balanced `{...}` object (string-aware), drop trailing commas before `}` / `]`. Anything else
is a failure that the caller records.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


class JSONRepairError(ValueError):
    """The text holds no JSON object, even after the allowed repairs."""


def _first_object(text: str) -> str | None:
    """The first balanced `{...}` substring, braces inside strings ignored; None if unbalanced."""
    start = text.find("{")
    if start < 0:
        return None
    depth, in_string, escaped = 0, False, False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : index + 1]
    return None


def _drop_trailing_commas(text: str) -> str:
    """Remove commas directly before a closing brace/bracket, outside strings."""
    out, in_string, escaped, pending = [], False, False, ""
    for char in text:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if pending:
            if char.isspace():
                pending += char
                continue
            if char not in "}]":
                out.append(pending)
            else:
                out.append(pending[1:])  # keep the whitespace, drop the comma
            pending = ""
        if char == ",":
            pending = ","
            continue
        if char == '"':
            in_string = True
        out.append(char)
    out.append(pending)
    return "".join(out)


def parse_json_object(text: str) -> tuple[dict[str, Any], bool]:
    """Parse `text` into a dict; returns (object, repaired). Raises `JSONRepairError` otherwise."""
    try:
        value = json.loads(text)
        if isinstance(value, dict):
            return value, False
    except json.JSONDecodeError:
        pass
    candidate = text
    fenced = _FENCE.search(candidate)
    if fenced:
        candidate = fenced.group(1)
    obj = _first_object(candidate)
    if obj is None:
        raise JSONRepairError(f"no complete JSON object in the answer: {text[:120]!r}")
    for attempt in (obj, _drop_trailing_commas(obj)):
        try:
            value = json.loads(attempt)
        except json.JSONDecodeError as error:
            last_error = error
            continue
        if isinstance(value, dict):
            return value, True
    raise JSONRepairError(f"JSON object does not parse after repair ({last_error}): {obj[:120]!r}")
