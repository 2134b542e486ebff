"""Asset checks on tables and checkpoints: a failure of a blocking one stops the downstream assets.

Tables go through Great Expectations suites (`orchestration.expectations`, GX imported lazily);
tier nesting (720p ⊂ 540p ⊂ 360p ⊂ 256p) is a set relation GX has no expectation for, so it is
checked directly. Checkpoints must load, have a finite final loss, and evaluations must clear a floor.
"""

import json
import math

import dagster as dg

from curation.config import TIER_NAMES
from curation.schemas import CLIPS_SCHEMA, TIERS_SCHEMA
from media.tables import read_table
from orchestration.expectations import TableExpectations, validate_table
from orchestration.resources import WorkspaceResource

CLIPS_EXPECTATIONS = TableExpectations(
    "clips",
    columns=CLIPS_SCHEMA.names,
    not_null=["clip_id", "source_path", "source_sha256"],
    unique=["clip_id"],
    ranges={"start_frame": (0, None), "fps": (1, 240), "width": (16, None), "height": (16, None)},
    min_rows=1,
)
TIERS_EXPECTATIONS = TableExpectations(
    "tiers",
    columns=TIERS_SCHEMA.names,
    not_null=["clip_id", "highest_tier", *[f"tier_{t}" for t in TIER_NAMES]],
    unique=["clip_id"],
    allowed_values={"highest_tier": list(TIER_NAMES)},
    max_null_fraction={"failed_filter": 1.0},
)


def _result(report, extra: dict | None = None) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=report.success,
        description=report.summary(),
        metadata={"rows": report.rows, "failed_expectations": len(report.failures), **(extra or {})},
    )


@dg.asset_check(asset="clips", blocking=True, description="GX suite: ids unique, ranges, sizes, fps.")
def clips_expectations(workspace: WorkspaceResource) -> dg.AssetCheckResult:
    frame = read_table(workspace.workspace.table("clips")).to_pandas()
    report = validate_table(frame, CLIPS_EXPECTATIONS)
    ordered = bool((frame["end_frame"] > frame["start_frame"]).all())
    result = _result(report, {"end_after_start": ordered})
    return (
        result if ordered else dg.AssetCheckResult(passed=False, description="a clip ends before it starts")
    )


def nesting_violations(frame) -> dict[str, int]:
    """Clips in a stricter tier but missing from the looser one below it, per tier pair."""
    return {
        f"{upper}⊄{lower}": int((frame[f"tier_{upper}"] & ~frame[f"tier_{lower}"]).sum())
        for lower, upper in zip(TIER_NAMES, TIER_NAMES[1:], strict=False)
    }


@dg.asset_check(
    asset="tiers", blocking=True, description="GX suite and tier nesting 720p ⊂ 540p ⊂ 360p ⊂ 256p."
)
def tiers_expectations(workspace: WorkspaceResource) -> dg.AssetCheckResult:
    frame = read_table(workspace.workspace.table("tiers")).to_pandas()
    report = validate_table(frame, TIERS_EXPECTATIONS)
    violations = nesting_violations(frame)
    nested = not any(violations.values())
    return dg.AssetCheckResult(
        passed=report.success and nested,
        description=report.summary() + ("" if nested else f"; tiers not nested: {violations}"),
        metadata={"rows": report.rows, "nesting_violations": dg.MetadataValue.json(violations)},
    )


@dg.asset_check(
    asset="dit_sft", blocking=True, description="The SFT checkpoint loads and its loss is finite."
)
def dit_sft_checkpoint(workspace: WorkspaceResource) -> dg.AssetCheckResult:
    from model.checkpoints import load_transformer
    from orchestration.workspace_training import dit_checkpoint_root
    from training.dit.stages import finished_stage

    finished = finished_stage(dit_checkpoint_root(workspace.workspace), "sft")
    if finished is None:
        return dg.AssetCheckResult(passed=False, description="the sft stage has no finished checkpoint")
    model = load_transformer(finished.checkpoint / "transformer")
    finite_weights = all(bool(p.isfinite().all()) for p in model.parameters())
    loss = finished.loss
    passed = finite_weights and math.isfinite(loss)
    return dg.AssetCheckResult(
        passed=passed,
        description=f"loaded {sum(p.numel() for p in model.parameters())} parameters; final loss {loss:.4f}",
        metadata={"final_loss": loss, "finite_weights": finite_weights},
    )


# Not blocking: `champion` reads the same verdict and records the rejection (which benchmark, by how
# many dB) on the model version; blocking would skip that record and leave the registry silent.
@dg.asset_check(
    asset="vae_eval",
    blocking=False,
    description="Held-out reconstruction PSNR at or above the floor: mean-colour PSNR of the same items + margin.",
)
def vae_psnr_floor(workspace: WorkspaceResource) -> dg.AssetCheckResult:
    floor = json.loads((workspace.workspace.reports / "vae_eval.json").read_text())["floor"]
    rows = floor["benchmarks"]
    return dg.AssetCheckResult(
        passed=bool(floor["passed"]),
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(
            f"{name} {row['psnr_db']:.2f} dB (floor {row['floor_db']:.2f} = mean colour "
            f"{row['mean_colour_db']:.2f} + {floor['margin_db']})"
            for name, row in rows.items()
        ),
        metadata={f"{name}_shortfall_db": row["shortfall_db"] for name, row in rows.items()},
    )
