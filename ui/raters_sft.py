"""SFT-selection routes of the rater app: annotators accept/reject `sft_candidates` clips."""

# No `from __future__ import annotations`: FastAPI must resolve the local `Annotated` aliases.
import dataclasses
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from evaluation.human_eval.accounts import RaterIdentity
from evaluation.human_eval.sft import (
    ACCEPT_CRITERIA,
    REJECT_REASONS,
    SftError,
    next_sft_candidate,
    record_sft_decision,
    sft_candidate_video,
    sft_progress,
)
from evaluation.human_eval.store import HumanEvalStore
from ui.raters_input import STRICT_BODY, RowId, StrictJSONRoute, short


class DecisionBody(BaseModel):
    model_config = STRICT_BODY

    client_submission_id: str = Field(min_length=1, max_length=64)
    decision: str = Field(max_length=16)
    criteria: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=32)
    note: str = Field(default="", max_length=2000)


def sft_router(store: HumanEvalStore, current_rater: Callable[[Request], RaterIdentity]) -> APIRouter:
    """Routes under /api/sft; any signed-in rater may annotate."""
    router = APIRouter(prefix="/api/sft", route_class=StrictJSONRoute)
    Rater = Annotated[RaterIdentity, Depends(current_rater)]

    @router.get("/criteria")
    def criteria(_rater: Rater) -> dict[str, dict[str, str]]:
        return {"accept": ACCEPT_CRITERIA, "reject": REJECT_REASONS}

    @router.get("/next")
    def next_candidate(rater: Rater) -> dict[str, Any]:
        view = next_sft_candidate(store, rater.id)
        done, total = sft_progress(store, rater.id)
        return {
            "candidate": dataclasses.asdict(view) if view else None,
            "progress": {"done": done, "total": total},
        }

    @router.get("/{candidate_id}/video")
    def video(candidate_id: RowId, _rater: Rater) -> FileResponse:
        try:
            path = sft_candidate_video(store, candidate_id)
        except LookupError as error:
            raise HTTPException(status_code=404, detail=short(str(error))) from error
        if not path.is_file():
            raise HTTPException(status_code=410, detail=f"the video of candidate {candidate_id} is missing")
        return FileResponse(path, media_type="video/mp4")

    @router.post("/{candidate_id}/decisions")
    def decide(candidate_id: RowId, body: DecisionBody, rater: Rater) -> JSONResponse:
        try:
            row_id, created = record_sft_decision(
                store,
                rater.id,
                candidate_id,
                body.decision,
                body.client_submission_id,
                body.criteria,
                body.note,
            )
        except SftError as error:
            raise HTTPException(status_code=422, detail=short(str(error))) from error
        except LookupError as error:
            raise HTTPException(status_code=404, detail=short(str(error))) from error
        done, total = sft_progress(store, rater.id)
        return JSONResponse(
            {"decision_id": row_id, "created": created, "progress": {"done": done, "total": total}},
            status_code=201 if created else 200,
        )

    return router
