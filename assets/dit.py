"""`latents` and one asset per DiT stage: `dit_image_256` → … → `dit_sft` (SPEC.md §1).

Thin: clip lists come from the curation tables (`training.dit.records`), training from
`training.dit.launcher.train_dit_stage` (latent cache + Ray Train / in-process). Each stage asset
depends on the previous one because it starts from that stage's final checkpoint; the registered
model version and the MLflow run are in the materialization metadata.
"""

from typing import Any

import dagster as dg

from assets.code_versions import module_code_version
from orchestration.resources import ComputeResource, TrackingResource, VersioningResource, WorkspaceResource
from training.dit.config import DiTTrainConfig
from training.dit.launcher import train_dit_stage
from training.dit.records import records_from_tables
from training.dit.stages import cache_latents
from training.dit.trainer import StageTracking

CURATION_DEPS = ["clips", "tiers", "deduped_clips", "captions", "sft_set"]


def _data_version(workspace: WorkspaceResource, versioning: VersioningResource, data: str) -> str:
    """Latest committed versions of the tables a stage reads; 'unversioned' (→ a content fingerprint) if none."""
    tables = workspace.workspace.tables
    names = ["clips", "tiers", "deduped_clips", "captions"] + (["sft_set"] if data == "sft_set" else [])
    store, refs = versioning.store(), []
    for name in names:
        path = tables / f"{name}.parquet" if (tables / f"{name}.parquet").exists() else tables / name
        history = store.history(path) if path.exists() else []
        if history:
            refs.append(history[-1].ref)
    return ";".join(refs) or "unversioned"


def _vae_path(workspace: WorkspaceResource):
    exported = workspace.workspace.checkpoints / "vae_export"
    return exported if (exported / "config.json").is_file() else None


@dg.asset(
    deps=[*CURATION_DEPS, "vae"],
    group_name="dit",
    kinds={"safetensors"},
    code_version=module_code_version(__name__),
    description="VAE latents + text encodings per clip and bucket, keyed by VAE and text-encoder versions.",
)
def latents(workspace: WorkspaceResource) -> dg.MaterializeResult:
    ws = workspace.workspace
    config = DiTTrainConfig.preset(workspace.profile)
    metadata: dict[str, Any] = {}
    for spec in config.stages:
        records = records_from_tables(ws.tables, ws.raw, spec.data)
        stats = cache_latents(config, spec.name, records, ws.latents, _vae_path(workspace), progress=False)
        metadata[f"{spec.name}_encoded"] = dg.MetadataValue.int(stats["encoded"])
        metadata[f"{spec.name}_reused"] = dg.MetadataValue.int(stats["reused"])
        metadata[f"{spec.name}_buckets"] = dg.MetadataValue.text(", ".join(stats["buckets"]))
        metadata["version_dir"] = dg.MetadataValue.path(stats["version_dir"])
    return dg.MaterializeResult(metadata=metadata)


def _stage_asset(stage: str, upstream: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"dit_{stage}",
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
        config = DiTTrainConfig.preset(workspace.profile)
        data = config.stage(stage).data
        records = records_from_tables(ws.tables, ws.raw, data)
        result = train_dit_stage(
            config,
            stage,
            records,
            ws.checkpoints / "dit",
            ws.latents,
            StageTracking(
                uri=tracking.tracking_uri,
                artifact_location=ws.mlflow_artifacts,
                experiment=f"{tracking.experiment}-dit",
                registered_model=tracking.registered_model,
                data_version=_data_version(workspace, versioning, data),
            ),
            vae_path=_vae_path(workspace),
            ray_address=compute.address,
        )
        return dg.MaterializeResult(
            metadata={
                "model_version": dg.MetadataValue.text(str(result["model_version"])),
                "mlflow_run_id": dg.MetadataValue.text(str(result["run_id"])),
                "steps": dg.MetadataValue.int(result["steps_done"]),
                "final_loss": dg.MetadataValue.float(float(result["final_loss"])),
                "bucket_losses": dg.MetadataValue.json(result["bucket_losses"]),
                "checkpoint": dg.MetadataValue.path(str(result["checkpoint"])),
                "data_version": dg.MetadataValue.text(str(result.get("data_version", ""))),
            }
        )

    return _train


dit_image_256 = _stage_asset("image_256", "latents")
dit_image_mixscale = _stage_asset("image_mixscale", "dit_image_256")
dit_video_low_short = _stage_asset("video_low_short", "dit_image_mixscale")
dit_video_low_long = _stage_asset("video_low_long", "dit_video_low_short")
dit_video_high_long = _stage_asset("video_high_long", "dit_video_low_long")
dit_sft = _stage_asset("sft", "dit_video_high_long")
