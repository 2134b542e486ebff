"""Causal 3D VAE of HunyuanVideo (`884-16c-hy`): 4x time, 8x space compression, 16 latent channels.

Shape legend: B batch, C channels, F video frames (F = 4n + 1), T latent frames (n + 1), H/W pixels,
h/w latent height/width (H/8, W/8; H/4, W/4 for the 4x `demo` preset). Videos are in [-1, 1]. Parameter names equal diffusers'
`AutoencoderKLHunyuanVideo` (and the official release), so both load without renaming.

Causality: every temporal convolution pads only the past (k-1 replicated frames in front), the
first frame is encoded on its own, and mid-block attention lets a frame see only itself and earlier
frames. The released model's GroupNorms, however, pool statistics over all frames of the clip, so
strict causality (latent frame k depends on video frames 0 .. 4k only) holds with
`norm_stats="frame"`; the default `"clip"` reproduces the released weights' behaviour.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from model.causal_conv import (
    CausalConv3d,
    GroupNorm5d,
    Pad,
    inference_layout,
    lean_inference,
    padded_buffer,
    replicate_edges,
)
from model.presets import PresetConfig
from model.vae_tiling import TilingConfig, tiled_decode, tiled_encode


@dataclass(frozen=True)
class VAEConfig(PresetConfig):
    """Architecture of `CausalVAE3D`.

    Attributes:
        block_out_channels: channels of the four down (and, reversed, up) blocks.
        layers_per_block: resnets per down block (up blocks get one more).
        latent_channels: channels of the latent z.
        norm_groups: GroupNorm groups (must divide every channel count).
        scaling_factor: multiply z by this before the DiT (0.476986 for the released VAE).
        spatial_ratio / temporal_ratio: 8 and 4 (`884`); space may compress 2^(blocks-1) (`demo`: 4x).
        mid_attention: single-head, frame-causal attention in the mid blocks.
        norm_stats: ``clip`` (released model: GroupNorm statistics over all frames of the clip, so a
            later frame can shift earlier outputs through the statistics) or ``frame`` (statistics
            per frame: strictly causal, an image encodes exactly like a video's first frame).
    """

    in_channels: int = 3
    out_channels: int = 3
    latent_channels: int = 16
    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    norm_groups: int = 32
    scaling_factor: float = 0.476986
    spatial_ratio: int = 8
    temporal_ratio: int = 4
    mid_attention: bool = True
    norm_stats: str = "clip"

    def __post_init__(self) -> None:
        if self.norm_stats not in ("clip", "frame"):
            raise ValueError(f"norm_stats {self.norm_stats!r} must be 'clip' or 'frame'")
        if self.temporal_ratio != 4 or self.spatial_ratio != 2 ** (len(self.block_out_channels) - 1):
            raise ValueError("only temporal ratio 4 and spatial ratio 2^(blocks-1) are supported")
        if self.layers_per_block == 0 and len(set(self.block_out_channels)) > 1:
            raise ValueError(
                "layers_per_block=0 needs equal block_out_channels (no resnet changes the width)"
            )
        if any(c % self.norm_groups for c in self.block_out_channels):
            raise ValueError(f"norm_groups {self.norm_groups} must divide every channel count")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VAEConfig:
        values = dict(data)
        values["block_out_channels"] = tuple(values.get("block_out_channels", cls.block_out_channels))
        return cls(**values)


VAEConfig.PRESETS = {
    "tiny": VAEConfig(block_out_channels=(8, 16, 16, 16), layers_per_block=1, norm_groups=4),
    # The demo's VAE: 4x space (three blocks), one resnet per up block and none in the down blocks.
    # At 8x (`tiny`) a 64 px frame keeps an 8x8 latent; the 8x thumbnail alone scores 19.1 dB on
    # the held-out photos and the tiny VAE learns too slowly on 2 CPU cores to beat it. At 4x the
    # shallower net learns a local code in the demo's few hundred steps (training.vae.config `demo`).
    # Its latent means came out with std ≈ 1.4 on the demo clips, so 0.7 hands the DiT unit variance.
    "demo": VAEConfig(
        block_out_channels=(16, 16, 16),
        layers_per_block=0,
        norm_groups=4,
        spatial_ratio=4,
        scaling_factor=0.7,
    ),
    "small": VAEConfig(block_out_channels=(32, 64, 128, 128), layers_per_block=1, norm_groups=16),
    "884-16c-hy": VAEConfig(),
}


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int, per_frame: bool) -> None:
        super().__init__()
        self.norm1 = GroupNorm5d(groups, cin, per_frame)
        self.conv1 = CausalConv3d(cin, cout)
        self.norm2 = GroupNorm5d(groups, cout, per_frame)
        self.conv2 = CausalConv3d(cout, cout)
        self.conv_shortcut = CausalConv3d(cin, cout, kernel=1) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if lean_inference():
            return self._forward_lean(x)
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (x if self.conv_shortcut is None else self.conv_shortcut(x))

    def _forward_lean(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: chunked norm-SiLU-conv; conv2 writes over the hidden tensor and adds the residual
        as it goes, so the block holds two full activations (x and h) at most."""
        h = self.conv1.chunked(x, self.norm1.silu_pre(x))
        shortcut = self.conv_shortcut

        def residual(a: int, b: int) -> torch.Tensor:
            return x[:, :, a:b] if shortcut is None else shortcut(x[:, :, a:b])

        return self.conv2.chunked(h, self.norm2.silu_pre(h), out=h, residual=residual)


class FrameCausalAttention(nn.Module):
    """Single-head self-attention over (T·h·w) tokens; a frame attends to itself and earlier frames."""

    def __init__(self, channels: int, groups: int, per_frame: bool) -> None:
        super().__init__()
        self.group_norm = GroupNorm5d(groups, channels, per_frame)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames, height, width = x.shape[2:]
        tokens = rearrange(self.group_norm(x), "b c t h w -> b (t h w) c")
        q, k, v = (proj(tokens)[:, None] for proj in (self.to_q, self.to_k, self.to_v))  # (B, 1, S, C)
        per_frame = height * width
        # Block-causal attention without a dense mask: frame i's queries see keys of frames 0..i.
        out = torch.cat(
            [
                F.scaled_dot_product_attention(
                    q[:, :, i * per_frame : (i + 1) * per_frame],
                    k[:, :, : (i + 1) * per_frame],
                    v[:, :, : (i + 1) * per_frame],
                )
                for i in range(frames)
            ],
            dim=2,
        )
        out = self.to_out[0](out[:, 0])
        return x + rearrange(out, "b (t h w) c -> b c t h w", t=frames, h=height, w=width)


class MidBlock(nn.Module):
    def __init__(self, channels: int, groups: int, attention: bool, per_frame: bool) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock(channels, channels, groups, per_frame) for _ in range(2))
        self.attentions = (
            nn.ModuleList([FrameCausalAttention(channels, groups, per_frame)]) if attention else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        if self.attentions is not None:
            x = self.attentions[0](x)
        return self.resnets[1](x)


class Downsample(nn.Module):
    def __init__(self, channels: int, stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.conv = CausalConv3d(channels, channels, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest upsampling; the first frame is upsampled only in space (it stands for one frame)."""

    def __init__(self, channels: int, factor: tuple[int, int, int]) -> None:
        super().__init__()
        self.factor = factor
        self.conv = CausalConv3d(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if lean_inference():
            return self._forward_lean(x)
        first = F.interpolate(x[:, :, 0], scale_factor=self.factor[1:], mode="nearest")[:, :, None]
        if x.shape[2] > 1:
            rest = F.interpolate(x[:, :, 1:].contiguous(), scale_factor=self.factor, mode="nearest")
            x = torch.cat([first, rest], dim=2)
        else:
            x = first
        return self.conv(x)

    def _forward_lean(self, x: torch.Tensor) -> torch.Tensor:
        """The conv reads the upsampled tensor a chunk at a time; it never exists whole."""
        ft, fh, fw = self.factor
        frames = 1 + ft * (x.shape[2] - 1)

        def source_frame(u: int) -> int:  # upsampled frame u repeats input frame source_frame(u)
            return 0 if u == 0 else 1 + (u - 1) // ft

        def upsampled(a: int, b: int, pad: Pad) -> torch.Tensor:
            first = source_frame(a)
            index = torch.tensor([source_frame(u) - first for u in range(a, b)], device=x.device)
            part = x[:, :, first : source_frame(b - 1) + 1].index_select(2, index)  # (B, C, b-a, h, w)
            _, _, n, h, w = part.shape
            buffer, interior = padded_buffer(x, n, h * fh, w * fw, pad)
            # Nearest upsampling as a broadcast copy into the padded buffer: no full-size temporary.
            blocks = interior.unflatten(4, (w, fw)).unflatten(3, (h, fh))  # (B, C, n, h, fh, w, fw)
            blocks.copy_(part[:, :, :, :, None, :, None].expand(blocks.shape))
            return replicate_edges(buffer, pad)

        return self.conv.streamed(frames, upsampled)


class ResnetStage(nn.Module):
    """A down or up block: `layers` resnets (the first maps cin -> cout), then a resampler by
    `factor` (t, h, w) unless that is None.

    The resampler is kept in a one-element ModuleList under the released weights' name; subclasses
    say which name and which resampler.
    """

    resampler_key: str
    resampler_cls: type[Downsample | Upsample]

    def __init__(
        self,
        cin: int,
        cout: int,
        layers: int,
        groups: int,
        per_frame: bool,
        factor: tuple[int, int, int] | None,
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock(cin if i == 0 else cout, cout, groups, per_frame) for i in range(layers)
        )
        resampler = None if factor is None else nn.ModuleList([self.resampler_cls(cout, factor)])
        self.add_module(self.resampler_key, resampler)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        resampler = self._modules[self.resampler_key]
        return resampler[0](x) if isinstance(resampler, nn.ModuleList) else x


class DownBlock(ResnetStage):
    resampler_key, resampler_cls = "downsamplers", Downsample


class UpBlock(ResnetStage):
    resampler_key, resampler_cls = "upsamplers", Upsample


def _resampling(cfg: VAEConfig, i: int) -> tuple[int, int, int] | None:
    """Block i's (t, h, w) factor: space halves in the first log2(8) blocks, time in the two before the last."""
    blocks = len(cfg.block_out_channels)
    spatial = i < int(math.log2(cfg.spatial_ratio))
    temporal = blocks - 1 - int(math.log2(cfg.temporal_ratio)) <= i < blocks - 1
    if not (spatial or temporal):
        return None
    return (2 if temporal else 1, 2 if spatial else 1, 2 if spatial else 1)


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        ch, g, pf = cfg.block_out_channels, cfg.norm_groups, cfg.norm_stats == "frame"
        self.conv_in = CausalConv3d(cfg.in_channels, ch[0])
        self.down_blocks = nn.ModuleList(
            DownBlock(ch[max(i - 1, 0)], ch[i], cfg.layers_per_block, g, pf, _resampling(cfg, i))
            for i in range(len(ch))
        )
        self.mid_block = MidBlock(ch[-1], g, cfg.mid_attention, pf)
        self.conv_norm_out = GroupNorm5d(g, ch[-1], pf)
        self.conv_out = CausalConv3d(ch[-1], 2 * cfg.latent_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lean = lean_inference()
        x = self.conv_in.chunked(inference_layout(x)) if lean else self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        x = self.mid_block(x)
        if lean:
            return self.conv_out.chunked(x, self.conv_norm_out.silu_pre(x)).contiguous()
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        ch, g, pf = tuple(reversed(cfg.block_out_channels)), cfg.norm_groups, cfg.norm_stats == "frame"
        self.conv_in = CausalConv3d(cfg.latent_channels, ch[0])
        self.mid_block = MidBlock(ch[0], g, cfg.mid_attention, pf)
        self.up_blocks = nn.ModuleList(
            UpBlock(ch[max(i - 1, 0)], ch[i], cfg.layers_per_block + 1, g, pf, _resampling(cfg, i))
            for i in range(len(ch))
        )
        self.conv_norm_out = GroupNorm5d(g, ch[-1], pf)
        self.conv_out = CausalConv3d(ch[-1], cfg.out_channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lean = lean_inference()
        x = self.mid_block(self.conv_in.chunked(inference_layout(z)) if lean else self.conv_in(z))
        for block in self.up_blocks:
            x = block(x)
        if lean:
            return self.conv_out.chunked(x, self.conv_norm_out.silu_pre(x)).contiguous()
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class DiagonalGaussian:
    """Posterior N(mean, exp(logvar)) over latents; `params` (B, 2C, T, h, w) = [mean | logvar]."""

    def __init__(self, params: torch.Tensor) -> None:
        self.mean, logvar = params.chunk(2, dim=1)
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A draw z = mean + std·ε with ε from `generator` (on the mean's device)."""
        noise = torch.randn(
            self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        return self.mean + self.std * noise

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) summed over all latent elements: (B,) float32."""
        mean, logvar = self.mean.float(), self.logvar.float()
        return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


class CausalVAE3D(nn.Module):
    """Encoder, decoder and the 1x1x1 quant convs. Latents z are unscaled: the DiT sees z·scaling_factor."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quant_conv = nn.Conv3d(2 * config.latent_channels, 2 * config.latent_channels, 1)
        self.post_quant_conv = nn.Conv3d(config.latent_channels, config.latent_channels, 1)
        self.tiling = TilingConfig()

    @property
    def scaling_factor(self) -> float:
        return self.config.scaling_factor

    def _check_video(self, video: torch.Tensor) -> None:
        if video.ndim != 5 or video.shape[1] != self.config.in_channels:
            raise ValueError(
                f"video must be (B, {self.config.in_channels}, F, H, W); got {tuple(video.shape)}"
            )
        frames, height, width = video.shape[2:]
        s = self.config.spatial_ratio
        if (frames - 1) % self.config.temporal_ratio or height % s or width % s:
            raise ValueError(
                f"video of {frames}x{height}x{width} needs F = 4n+1 frames and H, W divisible by {s}"
            )

    def encode_params(self, video: torch.Tensor) -> torch.Tensor:
        """Untiled: video (B, 3, F, H, W) -> posterior parameters (B, 2C, T, h, w)."""
        return self.quant_conv(self.encoder(video))

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Untiled: z (B, C, T, h, w) -> video (B, 3, 4(T-1)+1, 8h, 8w)."""
        return self.decoder(self.post_quant_conv(z))

    def encode(self, video: torch.Tensor, tiled: bool = False) -> DiagonalGaussian:
        """video (B, 3, 4n+1, H, W) in [-1, 1] -> posterior over z (B, 16, n+1, H/8, W/8)."""
        self._check_video(video)
        if tiled:
            return DiagonalGaussian(tiled_encode(self, video, self.tiling))
        return DiagonalGaussian(self.encode_params(video))

    def decode(self, z: torch.Tensor, tiled: bool = False) -> torch.Tensor:
        """z (B, 16, T, h, w) (unscaled) -> video (B, 3, 4(T-1)+1, 8h, 8w), roughly in [-1, 1]."""
        if z.ndim != 5 or z.shape[1] != self.config.latent_channels:
            raise ValueError(
                f"latents must be (B, {self.config.latent_channels}, T, h, w); got {tuple(z.shape)}"
            )
        if tiled:
            return tiled_decode(self, z, self.tiling)
        return self.decode_latents(z)

    def tiled_encode(self, video: torch.Tensor, tiling: TilingConfig | None = None) -> DiagonalGaussian:
        self._check_video(video)
        return DiagonalGaussian(tiled_encode(self, video, tiling or self.tiling))

    def tiled_decode(self, z: torch.Tensor, tiling: TilingConfig | None = None) -> torch.Tensor:
        return tiled_decode(self, z, tiling or self.tiling)

    def forward(
        self, video: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, DiagonalGaussian]:
        """Reconstruction through a posterior sample: returns (video_hat, posterior)."""
        posterior = self.encode(video)
        return self.decode(posterior.sample(generator)), posterior
