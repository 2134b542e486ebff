"""Admin routes of the rater app: accounts, campaign progress and results (role 'admin' only)."""

# No `from __future__ import annotations`: FastAPI must resolve the local `Annotated` aliases.
import dataclasses
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from evaluation.human_eval.accounts import AccountError, RaterIdentity, create_rater
from evaluation.human_eval.campaign import campaign_progress
from evaluation.human_eval.results import campaign_results
from evaluation.human_eval.schema import Campaign
from evaluation.human_eval.sft import accepted_sft_clips
from evaluation.human_eval.store import HumanEvalStore
from ui.raters_input import STRICT_BODY, RowId, StrictJSONRoute, short


class NewRater(BaseModel):
    model_config = STRICT_BODY

    name: str = Field(min_length=1, max_length=120)
    role: str = Field(default="rater", max_length=16)
    password: str | None = Field(default=None, max_length=200)


def admin_router(store: HumanEvalStore, current_rater: Callable[[Request], RaterIdentity]) -> APIRouter:
    """Routes under /api/admin; a non-admin gets 403."""

    def current_admin(request: Request) -> RaterIdentity:
        rater = current_rater(request)
        if not rater.is_admin:
            raise HTTPException(status_code=403, detail="admin role required")
        return rater

    router = APIRouter(prefix="/api/admin", route_class=StrictJSONRoute)
    Admin = Annotated[RaterIdentity, Depends(current_admin)]

    @router.post("/raters", status_code=201)
    def add_rater(body: NewRater, _admin: Admin) -> dict[str, Any]:
        try:
            identity, token = create_rater(store, body.name, body.role, body.password)
        except AccountError as error:
            raise HTTPException(status_code=422, detail=short(str(error))) from error
        return {**dataclasses.asdict(identity), "token": token}

    @router.get("/campaigns")
    def campaigns(_admin: Admin) -> list[dict[str, Any]]:
        with store.session() as session:
            rows = [(c.id, c.name) for c in session.scalars(select(Campaign).order_by(Campaign.id))]
        out = []
        for campaign_id, name in rows:
            progress = campaign_progress(store, campaign_id)
            out.append(
                {
                    "id": campaign_id,
                    "name": name,
                    **dataclasses.asdict(progress),
                    "complete": progress.complete,
                }
            )
        return out

    @router.get("/campaigns/{campaign_id}/results")
    def results(campaign_id: RowId, _admin: Admin, exclude_flagged: bool = False) -> dict[str, Any]:
        try:
            return campaign_results(store, campaign_id, exclude_flagged=exclude_flagged).to_dict()
        except LookupError as error:
            raise HTTPException(status_code=404, detail=short(str(error))) from error

    @router.get("/sft/accepted")
    def accepted(_admin: Admin) -> list[dict[str, Any]]:
        return [dataclasses.asdict(clip) for clip in accepted_sft_clips(store)]

    return router
