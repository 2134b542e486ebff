"""`vae` and `vae_eval` materialize through Dagster on tier tables pointing at real clips."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assets.vae import vae, vae_eval
from orchestration.config import load_config
from orchestration.resources import build_resources
from training.vae.standin_corpus import write_standin_corpus


@pytest.mark.slow
def test_vae_assets_materialize(tmp_path: Path) -> None:
    home = tmp_path / "home"
    videos = write_standin_corpus(home / "raw" / "batch0", clips=3, frames=24, size=48)
    tables = home / "tables"
    (tables / "clips").mkdir(parents=True)
    ids = [f"clip{i}" for i in range(len(videos))]
    pq.write_table(
        pa.table(
            {
                "clip_id": ids,
                "source_path": [str(v) for v in videos],
                "start_frame": [0, 2, 4],
                "end_frame": [24, 20, 24],
                "start_frame_sharpest": [1, 2, 4],
            }
        ),
        tables / "clips" / "batch0.parquet",
    )
    pq.write_table(pa.table({"clip_id": ids, "tier_256p": [True, True, False]}), tables / "tiers.parquet")
    config = load_config("tiny", home=home)
    result = dg.materialize(
        [vae, vae_eval],
        resources=build_resources(config),
        run_config={"ops": {"vae": {"config": {"max_steps": 2}}}},
        selection=["vae", "vae_eval"],
    )
    assert result.success
    trained = result.asset_materializations_for_node("vae")[0].metadata
    assert trained["clips"].value == 2 and trained["steps"].value == 2
    assert (home / "checkpoints" / "vae_export" / "model.safetensors").is_file()
    # MLflow run: sample grid (an image keyed by step), short mp4 and the checkpoint logged as
    # artifacts; the export as the registered VAE's logged model.
    artifacts = {
        p.relative_to(home).as_posix().split("/artifacts/", 1)[1]
        for p in home.rglob("artifacts/**/*")
        if p.is_file()
    }
    assert "samples/step_0000002_recon_clip.mp4" in artifacts
    assert any(a.startswith("images/recon_images+step+2+") and a.endswith(".png") for a in artifacts)
    assert "checkpoints/step_000000002/vae.safetensors" in artifacts
    assert "bundle/model.safetensors" in artifacts  # videofoundry-vae@current
    evaluated = result.asset_materializations_for_node("vae_eval")[0].metadata
    assert 0 < evaluated["heldout_images_psnr"].value < 60
    # The floor is the mean-colour PSNR of the same 64-px held-out photos (12.90 dB) + 3.1 dB; two
    # training steps are nowhere near it.
    assert evaluated["heldout_images_floor_db"].value == pytest.approx(16.0, abs=0.02)
    assert evaluated["floor_passed"].value is False
    assert "data:image/png;base64," in str(evaluated["reconstructions"].value)  # photo | recon | diff grid
    assert (home / "reports" / "vae_reconstructions.png").is_file()
    assert (home / "reports" / "vae_eval.md").read_text().startswith("| Model |")
