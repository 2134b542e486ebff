"""L10: a resumed DiT stage reports every model version its run registered, the earlier ones too."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from safetensors.torch import load_file

from tests.training.dit.fixtures import plan_first_stage, write_clips
from training.dit.config import DiTTrainConfig
from training.dit.registry import REGISTERED_MODEL
from training.dit.trainer import DiTTrainer
from training.tracking import TrackingSettings


class _Crash(Exception):
    pass


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_resumed_stage_result_keeps_the_versions_registered_before_the_crash(tmp_path: Path) -> None:
    tiny = DiTTrainConfig.preset("tiny", checkpoint_every=2, sample_prompts=())
    stages = tuple(
        s.model_copy(update={"steps": 6, "warmup_steps": 1}) if s.name == "image_256" else s
        for s in tiny.stages
    )
    config = tiny.model_copy(update={"stages": stages})
    plan = plan_first_stage(config, write_clips(tmp_path / "clips", count=2), tmp_path, "ckpt")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = TrackingSettings(uri=uri, artifact_location=tmp_path / "artifacts", experiment="l10")

    def trainer(hook=None) -> DiTTrainer:
        return DiTTrainer(
            plan.config,
            plan.stage,
            plan.samples,
            load_file(str(plan.empty_prompt_path)),
            plan.checkpoint_dir,
            tracking=tracking,
            sample_posterior=plan.sample_posterior,
            step_hook=hook,
        )

    def crash(step: int) -> None:
        if step == 3:
            raise _Crash

    first = trainer(crash)
    with pytest.raises(_Crash):
        first.train(resume=False)
    assert first.model_versions == ["1"]  # the checkpoint at step 2
    result = trainer().train(resume=True)
    assert result.resumed_from == 2 and result.steps_done == 6
    assert result.run_id == first.run_id
    assert result.model_versions == ("1", "2", "3") and result.model_version == "3"
    registered = MlflowClient(tracking_uri=uri).search_model_versions(f"name='{REGISTERED_MODEL}'")
    assert sorted(int(v.version) for v in registered) == [1, 2, 3]
