"""CausalVAE3D on CPU (tiny preset): shapes, causality, posterior maths, tiling."""

from __future__ import annotations

import pytest
import torch

import model.causal_conv as causal_conv
from model.vae import CausalVAE3D, DiagonalGaussian, VAEConfig
from model.vae_tiling import TilingConfig, tile_starts
from tests.model.builders import randomize_, rel_err


@pytest.fixture(scope="module")
def vae() -> CausalVAE3D:
    torch.manual_seed(0)
    return randomize_(CausalVAE3D(VAEConfig.preset("tiny")), std=0.1).eval()


def _video(frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, frames, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_shapes_follow_884(vae: CausalVAE3D) -> None:
    with torch.no_grad():
        posterior = vae.encode(_video(17, 32, 48))
        assert posterior.mean.shape == (1, 16, 5, 4, 6)
        assert vae.decode(posterior.mean).shape == (1, 3, 17, 32, 48)
    assert vae.scaling_factor == pytest.approx(0.476986)


@pytest.fixture(scope="module")
def causal_vae(vae: CausalVAE3D) -> CausalVAE3D:
    """The same weights with per-frame GroupNorm statistics (strictly causal)."""
    model = CausalVAE3D(VAEConfig.preset("tiny", norm_stats="frame")).eval()
    model.load_state_dict(vae.state_dict())
    return model


def test_changing_frame_k_never_changes_earlier_latents(causal_vae: CausalVAE3D) -> None:
    video = _video(17, 16, 16)
    with torch.no_grad():
        base = causal_vae.encode(video).mean
        for frame in (1, 5, 9, 16):
            edited = video.clone()
            edited[:, :, frame] = -edited[:, :, frame]
            latents = causal_vae.encode(edited).mean
            first_affected = (frame + 3) // 4  # latent k covers frames 4k-3 .. 4k
            assert (latents[:, :, :first_affected] - base[:, :, :first_affected]).abs().max() < 1e-6, frame
            assert (latents[:, :, first_affected] - base[:, :, first_affected]).abs().max() > 1e-4, frame


def test_an_image_encodes_like_the_first_frame_of_a_video(causal_vae: CausalVAE3D) -> None:
    video = _video(9, 16, 24)
    with torch.no_grad():
        image_latent = causal_vae.encode(video[:, :, :1]).mean
        video_latent = causal_vae.encode(video).mean
    assert (image_latent[:, :, 0] - video_latent[:, :, 0]).abs().max() < 1e-6


def test_decoder_is_causal_too(causal_vae: CausalVAE3D) -> None:
    z = torch.randn(1, 16, 4, 2, 2)
    edited = z.clone()
    edited[:, :, 2] += 1
    with torch.no_grad():
        a, b = causal_vae.decode(z), causal_vae.decode(edited)
    assert (a[:, :, :5] - b[:, :, :5]).abs().max() < 1e-6  # frames of latents 0 and 1
    assert (a[:, :, 5:9] - b[:, :, 5:9]).abs().max() > 1e-4


def test_clip_statistics_leak_only_through_normalisation(vae: CausalVAE3D, causal_vae: CausalVAE3D) -> None:
    """The released layout's GroupNorm spans the clip: earlier latents move, but far less than later ones."""
    video = _video(17, 16, 16)
    edited = video.clone()
    edited[:, :, 16] = -edited[:, :, 16]
    with torch.no_grad():
        base, moved = vae.encode(video).mean, vae.encode(edited).mean
    early = rel_err(moved[:, :, :4], base[:, :, :4])
    late = rel_err(moved[:, :, 4], base[:, :, 4])
    assert 0 < early < late


def test_diagonal_gaussian_maths() -> None:
    params = torch.cat([torch.zeros(2, 4, 1, 2, 2), torch.zeros(2, 4, 1, 2, 2)], dim=1)
    standard = DiagonalGaussian(params)
    assert torch.allclose(standard.kl(), torch.zeros(2))
    shifted = DiagonalGaussian(torch.cat([torch.ones(2, 4, 1, 2, 2), torch.zeros(2, 4, 1, 2, 2)], dim=1))
    assert torch.allclose(shifted.kl(), torch.full((2,), 0.5 * 16))
    a = standard.sample(torch.Generator().manual_seed(5))
    b = standard.sample(torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.std() > 0.5


def test_bad_video_shape_is_rejected(vae: CausalVAE3D) -> None:
    with pytest.raises(ValueError, match="4n\\+1"):
        vae.encode(_video(8, 16, 16))


def test_tile_ranges_cover_with_overlap() -> None:
    assert tile_starts(10, 16, 4) == [(0, 10)]
    ranges = tile_starts(90, 32, 8)
    assert ranges[0][0] == 0 and ranges[-1][1] == 90 and len(ranges) == 4
    assert all(b - a == ranges[0][1] <= 32 for a, b in ranges)
    assert all(b[0] <= a[1] - 8 for a, b in zip(ranges, ranges[1:], strict=False))


@pytest.mark.parametrize(("chunk", "channels_last"), [(8, False), (3, False), (1, False), (3, True)])
def test_inference_path_matches_the_training_path(
    vae: CausalVAE3D,
    causal_vae: CausalVAE3D,
    chunk: int,
    channels_last: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chunked, in-place, streamed-upsampling inference (no grad) computes the autograd path's function,
    whatever the chunk length (chunks run last to first and overwrite their input) and the layout."""
    monkeypatch.setattr("model.causal_conv.CHUNK_FRAMES", chunk)
    monkeypatch.setitem(causal_conv._CHANNELS_LAST, "enabled", channels_last)
    video = _video(21, 16, 24, seed=4)
    z = torch.randn(1, 16, 6, 2, 3)
    for model in (vae, causal_vae):
        with torch.no_grad():
            lean_enc, lean_dec = model.encode(video).mean, model.decode(z)
        with torch.enable_grad():
            plain_enc, plain_dec = model.encode(video).mean, model.decode(z)
        assert rel_err(lean_enc, plain_enc.detach()) < 1e-5
        assert rel_err(lean_dec, plain_dec.detach()) < 1e-5


def test_tiles_larger_than_the_input_reproduce_untiled(vae: CausalVAE3D) -> None:
    z = torch.randn(1, 16, 4, 3, 5)
    video = _video(13, 24, 40)
    big = TilingConfig(tile_size=512, tile_frames=64)
    with torch.no_grad():
        assert rel_err(vae.tiled_decode(z, big), vae.decode(z)) < 1e-6
        assert rel_err(vae.tiled_encode(video, big).mean, vae.encode(video).mean) < 1e-6


def test_blending_is_exact_for_a_pointwise_model() -> None:
    """With the networks replaced by pointwise maps, tiling must reproduce the untiled map exactly."""

    class Pointwise(CausalVAE3D):
        def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
            frames = torch.cat([z[:, :3, :1], z[:, :3, 1:].repeat_interleave(4, dim=2)], dim=2)
            return frames.repeat_interleave(8, dim=3).repeat_interleave(8, dim=4)

        def encode_params(self, video: torch.Tensor) -> torch.Tensor:
            picked = torch.cat([video[:, :, :1], video[:, :, 4::4]], dim=2)[:, :, :, ::8, ::8]
            return picked.repeat(1, 32 // 3 + 1, 1, 1, 1)[:, :32]

    model = Pointwise(VAEConfig.preset("tiny"))
    tiling = TilingConfig(tile_size=32, tile_frames=8, overlap=0.25)
    z = torch.randn(1, 16, 7, 9, 11)
    assert rel_err(model.tiled_decode(z, tiling), model.decode_latents(z)) < 1e-6
    video = _video(25, 72, 88)
    assert rel_err(model.tiled_encode(video, tiling).mean, model.encode_params(video)[:, :16]) < 1e-6
