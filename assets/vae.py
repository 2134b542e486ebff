"""`vae` (the trained causal 3D VAE, EMA weights exported) and `vae_eval` (reconstruction report).

Thin: data from the 256p tier (`training.vae.data.clips_from_tier_tables`), training from
`training.vae.run.run_vae_training`, benchmarks from `evaluation.vae_benchmarks.evaluate_vae`. The
exported model lands in `checkpoints/vae_export/`, where the DiT's `latents` asset reads it.
"""

import dagster as dg

from assets.code_versions import module_code_version
from evaluation.vae_benchmarks import HeldoutEvaluator, evaluate_vae, write_report
from model.checkpoints import load_vae
from orchestration.resources import ComputeResource, TrackingResource, WorkspaceResource
from training.vae.config import VAETrainConfig
from training.vae.data import clips_from_tier_tables
from training.vae.run import data_fingerprint, run_vae_training
from training.vae.trainer import TrackingSettings


class VAETrainingConfig(dg.Config):
    """Run-time knobs of the `vae` asset (the profile's VAETrainConfig holds the rest)."""

    max_steps: int | None = None
    tier: str = "tier_256p"


class VAEEvalConfig(dg.Config):
    """Local benchmark folders (None: skipped) and the held-out size."""

    imagenet_dir: str | None = None
    mcl_jcv_dir: str | None = None
    limit: int | None = None
    tiled: bool = False


@dg.asset(
    deps=["tiers"],
    group_name="vae",
    kinds={"pytorch", "mlflow"},
    code_version=module_code_version(__name__),
    description="Causal 3D VAE trained on the 256p tier (video:image 4:1, curriculum, GAN, EMA); EMA weights exported.",
)
def vae(
    config: VAETrainingConfig,
    workspace: WorkspaceResource,
    tracking: TrackingResource,
    compute: ComputeResource,
) -> dg.MaterializeResult:
    ws = workspace.workspace
    train_config = VAETrainConfig.preset(workspace.profile)
    clips = clips_from_tier_tables(ws.tables, ws.raw, config.tier)
    evaluator = HeldoutEvaluator(
        train_config.heldout_image_size,
        train_config.heldout_frames,
        train_config.heldout_size,
        train_config.heldout_items,
    )
    outputs = run_vae_training(
        train_config,
        clips,
        ws.checkpoints / "vae",
        TrackingSettings(
            uri=tracking.tracking_uri,
            artifact_location=ws.mlflow_artifacts,
            experiment=f"{tracking.experiment}-vae",
            run_name=f"vae-{workspace.profile}",
            data_version=data_fingerprint(clips),
        ),
        evaluator,
        evaluator.samples,
        max_steps=config.max_steps,
        export_dir=ws.checkpoints / "vae_export",
        ray_address=compute.address,
    )
    result = outputs.result
    last = result.evals[-1] if result.evals else {}
    return dg.MaterializeResult(
        metadata={
            "clips": dg.MetadataValue.int(len(clips)),
            "steps": dg.MetadataValue.int(result.steps_done),
            "heldout_psnr_image": dg.MetadataValue.float(float(last.get("psnr_image", float("nan")))),
            "heldout_psnr_video": dg.MetadataValue.float(float(last.get("psnr_video", float("nan")))),
            "samples_per_second": dg.MetadataValue.float(float(result.samples_per_second)),
            "mlflow_run_id": dg.MetadataValue.text(str(result.run_id)),
            "checkpoint": dg.MetadataValue.path(str(result.checkpoint)),
            "export": dg.MetadataValue.path(str(outputs.export_dir)),
        },
        data_version=dg.DataVersion(f"{result.run_id}:{result.steps_done}"),
    )


@dg.asset(
    deps=["vae"],
    group_name="vae",
    kinds={"json"},
    code_version=module_code_version(__name__),
    description="Reconstruction PSNR/SSIM/perceptual: ImageNet 256², MCL-JCV 33×360×640 (when given), held-out set.",
)
def vae_eval(config: VAEEvalConfig, workspace: WorkspaceResource) -> dg.MaterializeResult:
    ws = workspace.workspace
    export = ws.checkpoints / "vae_export"
    size, frames = (256, 33) if workspace.profile == "paper" else (64, 9)
    model = load_vae(export).eval()
    report = evaluate_vae(
        model, str(export), imagenet=config.imagenet_dir, mcl_jcv=config.mcl_jcv_dir, limit=config.limit,
        heldout_size=size, heldout_frames=frames, tiled=config.tiled,
    )  # fmt: skip
    path = write_report(report, ws.reports / "vae_eval.json")
    metadata = {f"{name}_psnr": dg.MetadataValue.float(b["psnr"]) for name, b in report["benchmarks"].items()}
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "table1": dg.MetadataValue.md(report["table1_markdown"]),
            "report": dg.MetadataValue.path(str(path)),
        }
    )
