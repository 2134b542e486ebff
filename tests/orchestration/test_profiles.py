"""The profile table (orchestration.profiles) and the preset API of every component config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from curation.camera_motion import CameraMotionConfig
from curation.captions.config import CaptionConfig
from curation.config import TIER_NAMES, CurationConfig
from curation.schemas import TIERS_SCHEMA
from evaluation.config import EvaluationConfig
from evaluation.human_eval.config import HumanEvalConfig
from evaluation.human_eval.prompts import BUILTIN_PROMPTS
from model.dit_config import DiTConfig
from model.presets import PresetConfig, PresetError
from model.text import TextEncoderConfig
from model.vae import VAEConfig
from model.vae_tiling import TilingConfig
from orchestration.config import PlatformConfig, load_config
from orchestration.profiles import (
    PROFILE_PRESETS,
    PROFILES,
    ProfileError,
    component_classes,
    config_path,
    preset_name,
    profile_config,
)
from orchestration.resources import WorkspaceResource
from serving.config import ServingConfig
from training.dit.config import DiTTrainConfig
from training.vae.config import VAETrainConfig
from ui.demo import DemoConfig

REPO = Path(__file__).resolve().parents[2]


def _all_subclasses(cls: type) -> set[type]:
    direct = set(cls.__subclasses__())
    return direct.union(*(_all_subclasses(sub) for sub in direct))


def test_the_table_covers_every_component_config_and_only_those() -> None:
    classes = component_classes()  # imports every package, so every PresetConfig class is defined
    assert {config_path(c) for c in _all_subclasses(PresetConfig)} == set(PROFILE_PRESETS)
    assert len(classes) == len(PROFILE_PRESETS) == 17


@pytest.mark.parametrize("config_cls", component_classes(), ids=lambda c: c.__name__)
def test_every_component_has_a_presets_table_with_both_profiles(config_cls: type[PresetConfig]) -> None:
    assert isinstance(config_cls.__dict__["PRESETS"], dict)
    for profile in PROFILES:
        name = preset_name(config_cls, profile)
        assert name in config_cls.PRESETS, (config_cls.__name__, profile, name)
        config = profile_config(config_cls, profile)
        assert type(config) is config_cls
        assert config == config_cls.PRESETS[name]


@pytest.mark.parametrize("config_cls", component_classes(), ids=lambda c: c.__name__)
def test_unknown_preset_names_the_known_ones(config_cls: type[PresetConfig]) -> None:
    known = ", ".join(config_cls.PRESETS)
    with pytest.raises(PresetError, match=re.escape(f"preset 'huge'; choose one of {known}")):
        config_cls.preset("huge")


def test_unknown_profile_and_unlisted_class_are_errors() -> None:
    with pytest.raises(ProfileError, match="unknown profile 'huge'; choose one of tiny, paper, demo"):
        profile_config(CurationConfig, "huge")
    with pytest.raises(ProfileError, match="has no row in orchestration.profiles.PROFILE_PRESETS"):
        preset_name(PresetConfig, "tiny")


@pytest.mark.parametrize("profile", PROFILES)
def test_nested_preset_names_agree_with_the_table(profile: str) -> None:
    def preset(config_cls: type[PresetConfig]) -> PresetConfig:
        return profile_config(config_cls, profile)

    def name(config_cls: type) -> str:
        return preset_name(config_cls, profile)

    dit_train, vae_train = preset(DiTTrainConfig), preset(VAETrainConfig)
    assert dit_train.dit_preset == name(DiTConfig)  # type: ignore[attr-defined]
    assert dit_train.vae_preset == vae_train.vae_preset == name(VAEConfig)  # type: ignore[attr-defined]
    assert dit_train.text_encoder == name(TextEncoderConfig)  # type: ignore[attr-defined]
    assert preset(ServingConfig).tiling == TilingConfig.preset(name(TilingConfig))  # type: ignore[attr-defined]
    assert preset(CaptionConfig).camera_preset == name(CameraMotionConfig)  # type: ignore[attr-defined]
    assert preset(DemoConfig).serving == preset(ServingConfig)  # type: ignore[attr-defined]
    assert preset(PlatformConfig).profile == profile  # type: ignore[attr-defined]


def test_tiny_presets_equal_the_old_tables() -> None:
    """Values the hand-written presets (curation, captions, training, serving, evaluation) had."""
    curation = CurationConfig.preset("tiny")
    assert curation.signals.motion_pairs == 6 and curation.dedup.n_clusters == 8
    assert curation.tiers["540p"].model_dump() == {
        "min_short_side": 540, "min_duration_s": 1.8, "min_motion": 0.25, "max_motion": 12.0,
        "min_sharpness": 60.0, "max_brisque": 60.0, "min_aesthetic": 3.5, "max_text_area": 0.01,
        "max_watermark": 0.7, "max_border_ratio": 0.05,
    }  # fmt: skip
    paper = CurationConfig.preset("paper")
    assert [paper.tiers[t].min_duration_s for t in TIER_NAMES] == [2.0, 3.0, 4.0, 5.0]
    assert paper.tiers["540p"].min_sharpness == 60.0 and paper.signals.analysis_height == 256
    assert (paper.scenes.min_clip_s, paper.scenes.max_clip_s, paper.execution.gpus_per_task) == (
        2.0,
        20.0,
        0.25,
    )
    caption = CaptionConfig.preset("tiny")
    assert (caption.backend, caption.n_keyframes, caption.camera_preset) == ("offline", 2, "tiny")
    camera = CameraMotionConfig.preset("tiny")
    assert (camera.analysis_height, camera.max_frames, camera.max_pairs) == (192, 96, 40)
    vae_train = VAETrainConfig.preset("tiny")
    assert [s.steps for s in vae_train.stages] == [150, 90, 60] and vae_train.stages[2].tile_size == 24
    assert (vae_train.lr, vae_train.disc_start_step, vae_train.cpu_threads, vae_train.heldout_size) == (
        2e-3,
        150,
        1,
        40,
    )
    demo_vae = VAETrainConfig.preset("demo")
    assert [s.steps for s in demo_vae.stages] == [650, 650] and demo_vae.lr_schedule == "cosine"
    assert (demo_vae.perceptual_weight, demo_vae.cpu_threads) == (0.0, None)
    assert profile_config(VAETrainConfig, "demo").vae_preset == preset_name(VAEConfig, "demo") == "demo"
    assert VAEConfig.preset("demo").spatial_ratio == 4
    dit_train = DiTTrainConfig.preset("tiny")
    assert [s.steps for s in dit_train.stages] == [6, 4, 4, 4, 4, 300]
    assert dit_train.stage("video_high_long").resolutions == (64,) and dit_train.vae_overrides == {
        "scaling_factor": 8.0
    }
    serving = ServingConfig.preset("tiny")
    assert (serving.dtype, serving.limits.max_side, serving.limits.max_frames) == ("float32", 256, 33)
    human = HumanEvalConfig.preset("tiny")
    assert (human.raters_per_pair, human.gold_fraction, human.bootstrap_samples) == (2, 0.2, 50)
    evaluation = EvaluationConfig.preset("tiny")
    assert len(evaluation.prompts()) == 4 and evaluation.seeds == (0,)
    assert (evaluation.vae_heldout_size, evaluation.vae_heldout_frames) == (64, 9)
    assert (evaluation.human_eval_min_judgments, evaluation.require_human_eval) == (20, False)
    assert DemoConfig.preset("tiny").defaults == {
        "height": 64,
        "width": 96,
        "frames": 9,
        "steps": 8,
        "guidance": 6.0,
    }


def test_paper_profile_constants_live_in_the_configs() -> None:
    evaluation = EvaluationConfig.preset("paper")
    assert evaluation.prompts() == BUILTIN_PROMPTS and evaluation.seeds == (0, 1, 2)
    assert (evaluation.vae_heldout_size, evaluation.vae_heldout_frames) == (256, 33)
    assert evaluation.human_eval_min_judgments == 300 and evaluation.require_human_eval
    assert (evaluation.generation.height, evaluation.generation.frames) == (720, 129)
    serving = ServingConfig.preset("paper")
    assert (serving.default_height, serving.default_width, serving.default_frames) == (544, 960, 129)
    assert not DiTTrainConfig.preset("paper").standin_vae and DiTTrainConfig.preset("tiny").standin_vae


def test_overrides_merge_into_sections_and_are_validated() -> None:
    paper = CurationConfig.preset("paper", signals={"ocr_frames": 3}, execution={"backend": "local"})
    assert paper.signals.ocr_frames == 3 and paper.signals.motion_pairs == 12  # the rest of the section stays
    assert paper.execution.backend == "local" and paper.execution.gpus_per_task == 0.25
    limits = ServingConfig.preset("paper", limits={"max_frames": 65}).limits
    assert (limits.max_frames, limits.max_side) == (65, 1280)
    with pytest.raises(ValidationError, match="motion_pairs"):
        CurationConfig.preset("tiny", signals={"motion_pairs": 0})
    with pytest.raises(PresetError, match=r"SignalConfig has no field \['motion_pair'\]"):
        CurationConfig.preset("tiny", signals={"motion_pair": 3})
    with pytest.raises(ValidationError, match="camera_preset 'huge' is not one of tiny, paper"):
        CaptionConfig.preset("tiny", camera_preset="huge")


def test_a_preset_is_a_fresh_copy_of_a_mutable_config() -> None:
    config = CurationConfig.preset("tiny")
    config.execution.backend = "local"
    config.tiers["256p"].min_motion = 9.0
    again = CurationConfig.preset("tiny")
    assert again.execution.backend == "ray" and again.tiers["256p"].min_motion == 0.15


def test_platform_and_workspace_resolve_components_through_their_profile(tmp_path: Path) -> None:
    platform = load_config("paper", environ={}, home=tmp_path)
    assert platform.config_for(DiTTrainConfig).dit_preset == "hunyuan-13b"
    assert platform.config_for(HumanEvalConfig, db_url="sqlite:///x.db").db_url == "sqlite:///x.db"
    assert (platform.compute.num_workers, platform.sft_auto_accept_unreviewed) == (8, False)
    workspace = WorkspaceResource(home=str(tmp_path), profile="tiny")
    assert workspace.config_for(EvaluationConfig) == EvaluationConfig.preset("tiny")
    assert workspace.config_for(CurationConfig, execution={"num_cpus": 1}).execution.num_cpus == 1


def test_tier_names_are_defined_once() -> None:
    tier_columns = [n for n in TIERS_SCHEMA.names if n.startswith("tier_")]
    assert tier_columns == [f"tier_{t}" for t in TIER_NAMES]
    assert [CurationConfig.preset("tiny").tiers[t].min_short_side for t in TIER_NAMES] == [256, 360, 540, 720]
    literal = re.compile(r'"256p",\s*"360p"')
    sources = [p for p in REPO.glob("*/**/*.py") if p.parts[len(REPO.parts)] not in ("tests", ".venv")]
    assert [str(p.relative_to(REPO)) for p in sources if literal.search(p.read_text())] == [
        "curation/config.py"
    ]


def test_no_code_outside_the_preset_tables_tests_the_profile_string() -> None:
    packages = ("assets", "orchestration", "serving", "ui", "evaluation", "training", "curation", "model")
    comparison = re.compile(
        r"""profile\s*(==|!=|\bin\b)|(==|!=)\s*["'](tiny|paper)["']|["']paper["']\s+if\b"""
    )
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for package in packages
        for path in (REPO / package).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if comparison.search(line)
    ]
    assert offenders == []
