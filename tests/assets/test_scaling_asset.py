"""`scaling_laws` with real Dagster on a workspace: no sweep → a status and a fresh rerun; a CSV
observed → refit with plots in the metadata."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from evaluation.scaling import write_runs_csv
from orchestration.config import load_config
from orchestration.definitions import build_definitions
from orchestration.runner import dagster_instance, run_lineage
from orchestration.workspace import Workspace
from tests.evaluation.scaling.builders import PAPER_IMAGE_LIKE, isoflop_runs


def _metadata(instance: dg.DagsterInstance) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey("scaling_laws"))
    assert event is not None and event.asset_materialization is not None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_scaling_laws_without_a_sweep_then_from_a_csv(tmp_path: Path):
    config = load_config(home=tmp_path / "home", environ={})
    workspace = Workspace.at(config.home).ensure()
    defs = build_definitions(config)
    instance = dagster_instance(workspace)

    first = run_lineage(defs, config, select="key:scaling_laws")
    assert first.runs == [("scaling_laws", None, "ok")]
    metadata = _metadata(instance)
    assert metadata == {
        "image_status": "no sweep runs; run `videofoundry scaling-sweep --family image`",
        "video_status": "no sweep runs; run `videofoundry scaling-sweep --family video`",
    }
    assert run_lineage(defs, config, select="key:scaling_laws").runs == [("scaling_laws", None, "fresh")]

    runs = isoflop_runs(PAPER_IMAGE_LIKE, budgets=(1e18, 1e19, 1e20), sizes=7)
    write_runs_csv(runs, workspace.home / "scaling" / "image_runs.csv")
    observed = dg.materialize(
        list(defs.assets or []), selection=["scaling_sweep_runs"], instance=instance, resources=defs.resources
    )
    assert observed.success
    assert run_lineage(defs, config, select="key:scaling_laws").runs == [("scaling_laws", None, "ok")]

    metadata = _metadata(instance)
    assert metadata["image_status"] == f"fitted 21 runs from {workspace.home / 'scaling' / 'image_runs.csv'}"
    assert abs(metadata["image_b1"] - 0.5634) < 0.03
    assert abs(metadata["image_b1"] + metadata["image_b2"] - 1) < 0.01  # C = 6·N·D: the two split C
    assert "| N_opt exponent b1 |" in metadata["image_laws"]
    assert metadata["image_envelope"].startswith("![image loss envelope](data:image/png;base64,")
    assert metadata["image_allocation"].startswith("![image N_opt, D_opt](data:image/png;base64,")
    assert Path(metadata["image_fit"]).is_file()
    assert metadata["video_status"].startswith("no sweep runs")
