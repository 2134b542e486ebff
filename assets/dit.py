"""`latents` and one asset per DiT stage, generated from `training.dit.config.STAGE_ORDER`:
`dit_image_256` → … → `dit_sft` (SPEC.md §1).

Thin: the latent cache is `orchestration.workspace_training.cache_latents_in_workspace`, a stage
is `train_dit_stage_in_workspace` (clip list from the curation tables, latent cache, Ray Train or
in-process). Each stage asset depends on the previous one because it starts from that stage's
final checkpoint; the registered model version and the MLflow run are in the materialization
metadata.
"""

import dagster as dg

from assets.code_versions import module_code_version
from orchestration.metadata import train_result_metadata
from orchestration.resources import ComputeResource, TrackingResource, VersioningResource, WorkspaceResource
from orchestration.workspace_training import (
    cache_latents_in_workspace,
    tables_data_version,
    train_dit_stage_in_workspace,
)
from training.dit.config import STAGE_ORDER, DiTTrainConfig

CURATION_DEPS = ["clips", "tiers", "deduped_clips", "captions", "sft_set"]


@dg.asset(
    deps=[*CURATION_DEPS, "vae"],
    group_name="dit",
    kinds={"safetensors"},
    code_version=module_code_version(__name__),
    description="VAE latents + text encodings per clip and bucket, keyed by VAE and text-encoder versions.",
)
def latents(workspace: WorkspaceResource) -> dg.MaterializeResult:
    stats = cache_latents_in_workspace(workspace.workspace, workspace.config_for(DiTTrainConfig))
    metadata: dict[str, dg.MetadataValue] = {}
    for stage, counts in stats.items():
        metadata[f"{stage}_encoded"] = dg.MetadataValue.int(counts["encoded"])
        metadata[f"{stage}_reused"] = dg.MetadataValue.int(counts["reused"])
        metadata[f"{stage}_buckets"] = dg.MetadataValue.text(", ".join(counts["buckets"]))
        metadata["version_dir"] = dg.MetadataValue.path(counts["version_dir"])
    return dg.MaterializeResult(metadata=metadata)


def stage_asset_name(stage: str) -> str:
    return f"dit_{stage}"


def _stage_asset(stage: str, upstream: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=stage_asset_name(stage),
        deps=[upstream],
        group_name="dit",
        kinds={"pytorch", "mlflow"},
        code_version=module_code_version(__name__),
        description=f"DiT stage `{stage}` (training.dit.config manifest), from the previous stage's checkpoint.",
    )
    def _train(
        workspace: WorkspaceResource,
        tracking: TrackingResource,
        compute: ComputeResource,
        versioning: VersioningResource,
    ) -> dg.MaterializeResult:
        ws = workspace.workspace
        config = workspace.config_for(DiTTrainConfig)
        result = train_dit_stage_in_workspace(
            ws,
            config,
            stage,
            tracking.settings(),
            data_version=tables_data_version(ws, versioning.store(), config.stage(stage).data),
            ray_address=compute.address,
            restart_if_plan_changed=True,  # re-materialized on new inputs: a changed plan starts over
        )
        return dg.MaterializeResult(metadata=train_result_metadata(result, tracking.tracking_uri))

    return _train


# One asset per stage, each depending on the one before (the first on the latent cache).
stage_assets: list[dg.AssetsDefinition] = [
    _stage_asset(stage, "latents" if index == 0 else stage_asset_name(STAGE_ORDER[index - 1]))
    for index, stage in enumerate(STAGE_ORDER)
]
