"""The rater app: a small FastAPI server with plain HTML/JS pages over `evaluation.human_eval`.

Why FastAPI + HTML rather than Gradio: every request must carry one rater's credential and touch
only that rater's rows, submissions must be idempotent JSON posts that a load test can drive over
HTTP, and the side-by-side players need custom JavaScript (synchronised playback, keyboard
shortcuts) that Gradio would only host as injected script. FastAPI/uvicorn already ship with
Gradio, so this adds no dependency; videos are served with HTTP Range support for seeking.

Routes (JSON under /api; auth = `Authorization: Bearer <token>` or the `vf_session` cookie):
    GET  /login, /, /sft                       pages (static HTML + JS)
    POST /api/login {name, password}           → {token, name, role} + HttpOnly session cookie; deals
                                               the rater the pairs still short of raters;
                                               429 + Retry-After after too many failures
    POST /api/logout                           revoke the session
    GET  /api/me, /api/progress                who am I, how far am I
    GET  /api/assignments[/next|/{id}]         own queue only (another rater's id → 404)
    GET  /api/assignments/{id}/video/{side}    left | right mp4 (blinded)
    POST /api/assignments/{id}/ratings         {client_submission_id, answers, elapsed_ms} → 201 new, 200 retry
    SFT selection and admin routes: see `ui/raters_sft.py`, `ui/raters_admin.py`.

Client input never causes a 5xx: bodies over `RaterAppConfig.max_body_bytes` → 413, JSON that is
not strict JSON → 400, out-of-range ids and fields → 422 with bounded details (`ui/raters_input.py`);
logins are rate limited per name and per address (`ui/raters_throttle.py`).
"""

# No `from __future__ import annotations`: FastAPI must resolve the local `Annotated` aliases.
import dataclasses
import errno
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from evaluation.human_eval.accounts import AuthError, RaterIdentity, authenticate, login, revoke_token
from evaluation.human_eval.campaign import deal_pending_items
from evaluation.human_eval.config import HumanEvalConfig, RaterAppConfig
from evaluation.human_eval.ratings import (
    MAX_ELAPSED_MS,
    AssignmentNotFound,
    RatingError,
    assignment_video,
    get_assignment,
    next_assignment,
    rater_progress,
    rater_queue,
    submit_rating,
)
from evaluation.human_eval.store import DbLike, HumanEvalStore, open_store
from ui.raters_admin import admin_router
from ui.raters_input import STRICT_BODY, RowId, StrictJSONRoute, bounded_validation_error, short
from ui.raters_sft import sft_router
from ui.raters_throttle import LoginThrottle

STATIC = Path(__file__).with_name("raters_static")
SESSION_COOKIE = "vf_session"


class LoginBody(BaseModel):
    model_config = STRICT_BODY

    name: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=200)


class RatingBody(BaseModel):
    model_config = STRICT_BODY

    client_submission_id: str = Field(min_length=1, max_length=64)
    answers: dict[Annotated[str, Field(max_length=32)], Annotated[str, Field(max_length=16)]] = Field(
        max_length=16
    )
    elapsed_ms: int | None = Field(default=None, ge=0, le=MAX_ELAPSED_MS)


class PortUnavailableError(OSError):
    """The app cannot listen where asked (port in use, not allowed, or not a port)."""


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(SESSION_COOKIE)


def create_app(db: DbLike, config: RaterAppConfig | None = None) -> FastAPI:
    """The rater app over the store `db` (URL, config or store). Bind it to 127.0.0.1 when served.

    `config` defaults to `db.app` when `db` is a `HumanEvalConfig`, else to `RaterAppConfig()`.
    """
    if config is None:
        config = db.app if isinstance(db, HumanEvalConfig) else RaterAppConfig()
    store: HumanEvalStore = open_store(db)
    throttle = LoginThrottle.from_config(config)
    # max_body_size: FastAPI counts bytes as they arrive (Content-Length or chunked) and answers
    # 413 before the body is parsed, for every route, signed in or not.
    app = FastAPI(
        title="VideoFoundry raters", docs_url=None, redoc_url=None, max_body_size=config.max_body_bytes
    )
    app.router.route_class = StrictJSONRoute
    app.state.store = store

    def current_rater(request: Request) -> RaterIdentity:
        try:
            return authenticate(store, bearer_token(request))
        except AuthError as error:
            raise HTTPException(status_code=401, detail=str(error)) from error

    Rater = Annotated[RaterIdentity, Depends(current_rater)]
    app.state.current_rater = current_rater
    app.add_exception_handler(RequestValidationError, bounded_validation_error)

    @app.exception_handler(AssignmentNotFound)
    def _not_found(_request: Request, error: AssignmentNotFound) -> JSONResponse:
        return JSONResponse({"detail": short(str(error))}, status_code=404)

    @app.exception_handler(RatingError)
    def _bad_rating(_request: Request, error: RatingError) -> JSONResponse:
        return JSONResponse({"detail": short(str(error))}, status_code=422)

    for page in ("login", "sft"):
        app.add_api_route(f"/{page}", _page(f"{page}.html"), methods=["GET"], include_in_schema=False)
    app.add_api_route("/", _page("rate.html"), methods=["GET"], include_in_schema=False)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        path = STATIC / name
        if name not in {p.name for p in STATIC.iterdir()} or path.suffix not in {".js", ".css"}:
            raise HTTPException(status_code=404, detail=f"no static file {short(name, 80)!r}")
        return FileResponse(path)

    @app.post("/api/login")
    def api_login(body: LoginBody, request: Request, response: Response) -> dict[str, Any]:
        address = request.client.host if request.client else "unknown"
        wait_s = throttle.admit(body.name, address)
        if wait_s:
            raise HTTPException(
                status_code=429,
                detail=f"too many failed logins: try again in {wait_s} s",
                headers={"Retry-After": str(wait_s)},
            )
        try:
            identity, token = login(store, body.name, body.password)
        except AuthError as error:
            raise HTTPException(status_code=401, detail=str(error)) from error
        throttle.succeeded(body.name, address)
        deal_pending_items(store, identity.id)  # a rater created before the campaign gets its pairs now
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", max_age=12 * 3600)
        return {"token": token, "name": identity.name, "role": identity.role}

    @app.post("/api/logout")
    def api_logout(request: Request, response: Response, _rater: Rater) -> dict[str, bool]:
        token = bearer_token(request)
        if token:
            revoke_token(store, token)
        response.delete_cookie(SESSION_COOKIE)
        return {"ok": True}

    @app.get("/api/me")
    def me(rater: Rater) -> dict[str, Any]:
        return {"id": rater.id, "name": rater.name, "role": rater.role}

    @app.get("/api/progress")
    def progress(rater: Rater) -> dict[str, int]:
        return dataclasses.asdict(rater_progress(store, rater.id))

    @app.get("/api/assignments")
    def assignments(rater: Rater) -> list[dict[str, Any]]:
        return [dataclasses.asdict(view) for view in rater_queue(store, rater.id)]

    @app.get("/api/assignments/next")
    def next_item(rater: Rater) -> dict[str, Any]:
        view = next_assignment(store, rater.id)
        return {
            "assignment": dataclasses.asdict(view) if view else None,
            "progress": dataclasses.asdict(rater_progress(store, rater.id)),
        }

    @app.get("/api/assignments/{assignment_id}")
    def one(assignment_id: RowId, rater: Rater) -> dict[str, Any]:
        return dataclasses.asdict(get_assignment(store, rater.id, assignment_id))

    @app.get("/api/assignments/{assignment_id}/video/{side}")
    def video(assignment_id: RowId, side: str, rater: Rater) -> FileResponse:
        if side not in ("left", "right"):
            raise HTTPException(status_code=404, detail="side must be left or right")
        path = assignment_video(store, rater.id, assignment_id, side)
        if not path.is_file():
            raise HTTPException(status_code=410, detail="the video file of this assignment is missing")
        # No filename: the file name could reveal the model; private cache: rater-specific URL.
        return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=3600"})

    @app.post("/api/assignments/{assignment_id}/ratings")
    def rate(assignment_id: RowId, body: RatingBody, rater: Rater) -> JSONResponse:
        result = submit_rating(
            store, rater.id, assignment_id, body.client_submission_id, body.answers, body.elapsed_ms
        )
        payload = {
            "rating_id": result.rating_id,
            "created": result.created,
            "progress": dataclasses.asdict(rater_progress(store, rater.id)),
        }
        return JSONResponse(payload, status_code=201 if result.created else 200)

    app.include_router(sft_router(store, current_rater))
    app.include_router(admin_router(store, current_rater))
    return app


def _page(name: str) -> Callable[[], FileResponse]:
    def serve_page() -> FileResponse:
        return FileResponse(STATIC / name, media_type="text/html", headers={"Cache-Control": "no-store"})

    return serve_page


def listen_local(port: int, host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket listening on `host:port` (port 0: any free port).

    Raises `PortUnavailableError` (port in use, not permitted, not 0 … 65535) before anything serves,
    so a busy port is a clear error instead of a server that dies on startup.
    """
    if not 0 <= port <= 65535:
        raise PortUnavailableError(f"port {port} is not a TCP port (0 … 65535)")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Reuse a port left in TIME_WAIT by an earlier run; a port with a live listener stays refused.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortUnavailableError(f"port {port} on {host} is in use") from None
        raise PortUnavailableError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    return sock


def serve_raters(db: DbLike, listener: socket.socket, config: RaterAppConfig | None = None) -> None:
    """Run the rater app with uvicorn on the listening socket `listener` until interrupted."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(db, config), log_level="warning"))
    server.run(sockets=[listener])
