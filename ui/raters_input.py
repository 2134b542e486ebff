"""What the rater app accepts from clients: strict JSON bodies, ids in range, bounded error answers.

Every client mistake ends as a 4xx with a short message: never a 500, never an echo of the body.
- JSON bodies are parsed strictly: NaN/Infinity (not JSON, and unencodable in a JSON answer), nesting
  deeper than `MAX_JSON_DEPTH`, NUL characters (PostgreSQL text cannot hold them) and lone
  surrogates (not UTF-8) are refused with 400, before any model validation.
- Row ids in paths are bounded to SQL INTEGER (`MAX_ROW_ID`): a larger id cannot exist and would
  overflow the database driver.
- Validation errors (422) carry a one-line `detail` plus at most `MAX_ERRORS` entries of location,
  message and type, each cut to a few hundred characters, and never the offending input.
The body size limit itself is FastAPI's `max_body_size` (see `ui.raters.create_app`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import HTTPException, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ConfigDict

#: Largest id of a row (SQL INTEGER, 32-bit on PostgreSQL).
MAX_ROW_ID = 2**31 - 1
MAX_JSON_DEPTH = 32
MAX_ERRORS = 10
MAX_DETAIL_CHARS = 300

#: Model config of every request body: exactly the declared fields, JSON types as declared ("3" is no int).
STRICT_BODY = ConfigDict(extra="forbid", strict=True)

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="A row id (1 … 2^31 − 1).")]


def short(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """`text` cut to `limit` characters (with an ellipsis), so no answer grows with the request."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_strict_json(body: bytes) -> Any:
    """The JSON value of `body`; `HTTPException(400)` for anything a strict JSON parser refuses."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise HTTPException(
            400, f"request body is not valid JSON: {error.msg} at position {error.pos}"
        ) from None
    except RecursionError:
        raise HTTPException(400, f"request body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as error:  # undecodable bytes, integers over Python's digit limit
        raise HTTPException(400, f"request body is not valid JSON: {short(str(error), 120)}") from None
    _check_values(value)
    return value


def _refuse_constant(name: str) -> Any:
    raise HTTPException(400, f"request body is not valid JSON: {name} is not a JSON number")


def _check_values(value: Any) -> None:
    """Walk the parsed value once (iteratively): depth and storable text."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise HTTPException(400, f"request body nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(node, str):
            _check_text(node)
        elif isinstance(node, dict):
            for key, child in node.items():
                _check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise HTTPException(400, "request body: strings must not contain NUL (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise HTTPException(
            400, "request body: strings must not contain lone surrogates (\\ud800–\\udfff)"
        ) from None


class StrictJSONRequest(Request):
    """A request whose `json()` is `parse_strict_json` (FastAPI parses bodies through it)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_strict_json(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """Route class of every rater-app router: handlers see `StrictJSONRequest`s."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler


async def bounded_validation_error(_request: Request, error: Exception) -> JSONResponse:
    """422 for a `RequestValidationError`: a one-line detail plus bounded entries, no input echoed."""
    assert isinstance(error, RequestValidationError)
    entries: list[dict[str, Any]] = []
    for entry in error.errors()[:MAX_ERRORS]:
        location = [p if isinstance(p, int) else short(str(p), 40) for p in entry.get("loc", ())[:8]]
        message = short(str(entry.get("msg", "")))
        entries.append({"loc": location, "msg": message, "type": short(str(entry.get("type", "")), 60)})
    if not entries:
        return JSONResponse({"detail": "invalid request", "errors": []}, status_code=422)
    where = ".".join(str(part) for part in entries[0]["loc"])
    first = f"{where}: {entries[0]['msg']}" if where else entries[0]["msg"]
    return JSONResponse({"detail": short(first), "errors": entries}, status_code=422)
