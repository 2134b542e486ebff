"""`scaling_sweep_runs` (observed: the sweep's runs in MLflow or a CSV) → `scaling_laws` (the fits).

The sweep's runs are made outside Dagster (`videofoundry scaling-sweep`, MLflow), so they are an
observable source: observing it records a data version that changes when a run is added or
finishes, and that makes `scaling_laws` stale. `scaling_laws` fits each family (image, video) that
has runs. With no runs yet it still materializes, with a `<family>_status` saying so and how to
make them: it has no downstream, and a failure would stop a `videofoundry run` of the whole lineage
on a workspace that never ran a sweep.
"""

from typing import Any

import dagster as dg

from assets.code_versions import module_code_version, versioned_asset
from evaluation.scaling import FAMILIES, ScalingDataError, find_sweep_source, scaling_report
from orchestration.metadata import image_metadata
from orchestration.resources import TrackingResource, WorkspaceResource

SWEEP_RUNS = "scaling_sweep_runs"


def _sources(workspace: WorkspaceResource, tracking: TrackingResource) -> dict[str, Any]:
    csv_dir = workspace.workspace.home / "scaling"
    return {f: find_sweep_source(csv_dir, tracking.tracking_uri, tracking.experiment, f) for f in FAMILIES}


@dg.multi_observable_source_asset(
    specs=[
        dg.AssetSpec(
            SWEEP_RUNS,
            group_name="scaling",
            code_version=module_code_version(__name__),
            description="Runs of the image and video scaling sweeps: MLflow experiments "
            "<experiment>-scaling-<family>, or <home>/scaling/<family>_runs.csv.",
        )
    ]
)
def scaling_sweep_runs(workspace: WorkspaceResource, tracking: TrackingResource) -> dg.ObserveResult:
    sources = _sources(workspace, tracking)
    versions = {f: s.fingerprint() if s else "none" for f, s in sources.items()}
    return dg.ObserveResult(
        asset_key=SWEEP_RUNS,
        data_version=dg.DataVersion(";".join(f"{f}={v}" for f, v in versions.items())),
        metadata={f"{f}_source": (s.describe() if s else "none") for f, s in sources.items()},
    )


@versioned_asset(deps=[SWEEP_RUNS], group_name="scaling", kinds={"mlflow"})
def scaling_laws(
    context: dg.AssetExecutionContext, workspace: WorkspaceResource, tracking: TrackingResource
) -> dg.MaterializeResult:
    """N_opt(C), D_opt(C) and L(N, D) per family with bootstrap intervals, plots and a recommendation."""
    metadata: dict[str, Any] = {}
    for family, source in _sources(workspace, tracking).items():
        if source is None:
            metadata[f"{family}_status"] = (
                f"no sweep runs; run `videofoundry scaling-sweep --family {family}`"
            )
            continue
        try:
            report = scaling_report(source, workspace.workspace.reports / "scaling" / family)
        except ScalingDataError as error:
            context.log.warning(f"{family} scaling laws not fitted: {error}")
            metadata[f"{family}_status"] = f"not fitted: {error}"
            continue
        metadata[f"{family}_status"] = f"fitted {report.fit.runs} runs from {source.describe()}"
        metadata[f"{family}_b1"] = dg.MetadataValue.float(report.fit.n_opt.exponent)
        metadata[f"{family}_b2"] = dg.MetadataValue.float(report.fit.d_opt.exponent)
        metadata[f"{family}_laws"] = dg.MetadataValue.md(report.to_markdown())
        metadata[f"{family}_envelope"] = image_metadata(report.envelope_png, f"{family} loss envelope")
        metadata[f"{family}_allocation"] = image_metadata(report.allocation_png, f"{family} N_opt, D_opt")
        metadata[f"{family}_fit"] = dg.MetadataValue.path(str(report.json_path))
    return dg.MaterializeResult(metadata=metadata)
