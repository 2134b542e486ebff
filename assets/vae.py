"""`vae` (the trained causal 3D VAE, EMA weights exported) and `vae_eval` (reconstruction report).

Thin: training is `orchestration.workspace_training.train_vae_in_workspace` (the 256p tier's clips,
held-out PSNR during training, export to `checkpoints/vae_export/`, where the DiT's `latents` asset
reads it), benchmarks are `evaluation.vae_benchmarks.evaluate_vae`.
"""

import dagster as dg

from assets.code_versions import module_code_version
from evaluation.config import EvaluationConfig
from evaluation.vae_baselines import VaeFloorConfig, vae_floor_verdict
from evaluation.vae_benchmarks import evaluate_vae, write_report
from evaluation.vae_grid import reconstruction_grid
from model.checkpoints import load_vae
from orchestration.metadata import image_metadata, train_result_metadata
from orchestration.resources import ComputeResource, TrackingResource, WorkspaceResource
from orchestration.workspace_training import train_vae_in_workspace, vae_export_dir
from training.vae.config import VAETrainConfig


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
    run = train_vae_in_workspace(
        workspace.workspace,
        workspace.config_for(VAETrainConfig),
        tracking.settings(),
        tier=config.tier,
        max_steps=config.max_steps,
        ray_address=compute.address,
    )
    return dg.MaterializeResult(
        metadata={
            "clips": dg.MetadataValue.int(run.media),
            "export": dg.MetadataValue.path(str(run.export_dir)),
            **train_result_metadata(run.result, tracking.tracking_uri),
        },
        data_version=dg.DataVersion(f"{run.result.run_id}:{run.result.steps_done}"),
    )


@dg.asset(
    deps=["vae"],
    group_name="vae",
    kinds={"json"},
    code_version=module_code_version(__name__),
    description="Reconstruction PSNR/SSIM/perceptual: ImageNet 256², MCL-JCV 33×360×640 (when given), held-out set; "
    "the held-out PSNR against its floor (mean-colour PSNR of the same items + a calibrated margin).",
)
def vae_eval(config: VAEEvalConfig, workspace: WorkspaceResource) -> dg.MaterializeResult:
    ws = workspace.workspace
    export = vae_export_dir(ws)
    evaluation = workspace.config_for(EvaluationConfig)
    model = load_vae(export).eval()
    report = evaluate_vae(
        model, str(export), imagenet=config.imagenet_dir, mcl_jcv=config.mcl_jcv_dir, limit=config.limit,
        heldout_size=evaluation.vae_heldout_size, heldout_frames=evaluation.vae_heldout_frames, tiled=config.tiled,
    )  # fmt: skip
    psnr = {name: b["psnr"] for name, b in report["benchmarks"].items()}
    report["floor"] = vae_floor_verdict(
        psnr, workspace.config_for(VaeFloorConfig), evaluation.vae_heldout_size, evaluation.vae_heldout_frames, config.limit
    )  # fmt: skip
    path = write_report(report, ws.reports / "vae_eval.json")
    metadata = {f"{name}_psnr": dg.MetadataValue.float(value) for name, value in psnr.items()}
    metadata |= {
        f"{name}_floor_db": dg.MetadataValue.float(row["floor_db"])
        for name, row in report["floor"]["benchmarks"].items()
    }
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "floor_passed": dg.MetadataValue.bool(report["floor"]["passed"]),
            "table1": dg.MetadataValue.md(report["table1_markdown"]),
            "reconstructions": image_metadata(
                reconstruction_grid(model, ws.reports / "vae_reconstructions.png")
            ),
            "report": dg.MetadataValue.path(str(path)),
        }
    )
