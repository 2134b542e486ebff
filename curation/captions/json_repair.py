"""Turning a model's answer into one JSON object: strict parse first, then conservative repairs.

VLMs wrap JSON in Markdown fences, add a sentence before it, or leave a trailing comma. The
repairs here are only those that cannot change what the model meant: strip code fences, take the
first balanced `{...}` object (string-aware), drop trailing commas before `}` / `]`. Anything else
is a failure that the caller records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


class JSONRepairError(ValueError):
    """The text holds no JSON object, even after the allowed repairs."""


def _scan(text: str, start: int = 0) -> Iterator[tuple[int, str, bool]]:
    """(index, char, structural) for each char from `start`; structural is False inside a string
    literal, from the char after its opening quote to its closing quote, escapes included."""
    in_string, escaped = False, False
    for index in range(start, len(text)):
        char = text[index]
        yield index, char, not in_string
        if not in_string:
            in_string = char == '"'
        elif escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            in_string = False


def _first_object(text: str) -> str | None:
    """The first balanced `{...}` substring, braces inside strings ignored; None if unbalanced."""
    start = text.find("{")
    if start < 0:
        return None
    depth = 0
    for index, char, structural in _scan(text, start):
        if structural and char in "{}":
            depth += 1 if char == "{" else -1
            if depth == 0:
                return text[start : index + 1]
    return None


def _drop_trailing_commas(text: str) -> str:
    """Remove commas directly before a closing brace/bracket, outside strings."""
    out, pending = [], ""  # pending: a comma and the whitespace after it, not yet written
    for _, char, structural in _scan(text):
        if structural and pending and char.isspace():
            pending += char
            continue
        if pending:
            out.append(pending[1:] if char in "}]" else pending)  # keep the whitespace
            pending = ""
        if structural and char == ",":
            pending = ","
        else:
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
