"""Causal 3D convolution and GroupNorm for the VAE, with a memory-lean inference path.

Shape legend: B batch, C channels, T frames, H/W height/width.

Training runs the plain ops. In inference (`torch.is_grad_enabled()` false) the VAE applies
norm -> SiLU -> pad -> conv a few frames at a time (`CausalConv3d.chunked`): the normalised,
padded copies then exist only for a chunk, so a block holds about two full activations instead of
five, and a tile can be twice as large in the same memory (fewer, larger tiles: less overlap work).
GroupNorm statistics still span the whole tensor (or each frame), computed in float32 chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

# Frames per chunk of the inference path; large enough that each conv call fills the GPU.
CHUNK_FRAMES = 8
Pre = Callable[[torch.Tensor, int, int], torch.Tensor]
_LEAN = {"enabled": True}


def lean_inference() -> bool:
    """True when the VAE should take the chunked path: no autograd and not switched off."""
    return _LEAN["enabled"] and not torch.is_grad_enabled()


def set_lean_inference(enabled: bool) -> None:
    """Switch the chunked inference path on (default) or off (plain ops, more memory)."""
    _LEAN["enabled"] = enabled


class GroupNorm5d(nn.GroupNorm):
    """GroupNorm whose statistics span the clip (official) or each frame (``per_frame``, causal)."""

    def __init__(self, groups: int, channels: int, per_frame: bool) -> None:
        super().__init__(groups, channels, eps=1e-6)
        self.per_frame = per_frame

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.per_frame or x.ndim != 5:
            return super().forward(x)
        mean, rstd = self.statistics(x)
        return self.apply_stats(x, mean, rstd, 0)

    def statistics(self, x: torch.Tensor, chunk: int = CHUNK_FRAMES) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-(B, group) mean and 1/std in float32: (B, G, 1, 1|T, 1, 1) each."""
        b, c, t, h, w = x.shape
        grouped = x.view(b, self.num_groups, c // self.num_groups, t, h, w)
        total = torch.zeros(b, self.num_groups, 1, t, 1, 1, device=x.device)
        squares = torch.zeros_like(total)
        for t0 in range(0, t, chunk):
            part = grouped[:, :, :, t0 : t0 + chunk].float()
            total[:, :, :, t0 : t0 + chunk] = part.sum(dim=(2, 4, 5), keepdim=True)
            squares[:, :, :, t0 : t0 + chunk] = part.square().sum(dim=(2, 4, 5), keepdim=True)
        count = (c // self.num_groups) * h * w
        if not self.per_frame:
            total, squares, count = total.sum(3, keepdim=True), squares.sum(3, keepdim=True), count * t
        mean = total / count
        var = (squares / count - mean.square()).clamp_min(0)
        return mean, torch.rsqrt(var + self.eps)

    def apply_stats(self, x: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor, t0: int) -> torch.Tensor:
        """Normalise frames [t0, t0 + x.shape[2]) of the tensor the statistics came from."""
        b, c, t, h, w = x.shape
        g = self.num_groups
        if mean.shape[3] > 1:
            mean, rstd = mean[:, :, :, t0 : t0 + t], rstd[:, :, :, t0 : t0 + t]
        # Fold the statistics and the affine into one per-channel scale and shift: one pass over x.
        scale = rstd * self.weight.float().view(1, g, c // g, 1, 1, 1)
        shift = self.bias.float().view(1, g, c // g, 1, 1, 1) - mean * scale
        grouped = x.view(b, g, c // g, t, h, w)
        return torch.addcmul(shift.to(x.dtype), grouped, scale.to(x.dtype)).view(b, c, t, h, w)

    def silu_pre(self, x: torch.Tensor) -> Pre:
        """A chunk function: frames [a, b) of x -> SiLU(GroupNorm(x))[a:b] with whole-tensor statistics."""
        mean, rstd = self.statistics(x)

        def pre(part: torch.Tensor, a: int, b: int) -> torch.Tensor:
            return F.silu(self.apply_stats(part, mean, rstd, a), inplace=True)

        return pre


class CausalConv3d(nn.Module):
    """Conv3d with replicate padding: k-1 frames in front (none behind), k//2 on each spatial side."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int | tuple[int, int, int] = 1) -> None:
        super().__init__()
        self.kernel = kernel
        self.pad = (kernel // 2, kernel // 2, kernel // 2, kernel // 2, kernel - 1, 0)
        self.conv = nn.Conv3d(cin, cout, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad, mode="replicate"))

    def chunked(self, x: torch.Tensor, pre: Pre | None = None, chunk: int = CHUNK_FRAMES) -> torch.Tensor:
        """Same result as forward(pre(x)) for temporal stride 1, computed `chunk` output frames at a time."""
        assert self.conv.stride[0] == 1, "chunked causal conv needs temporal stride 1"
        frames, back = x.shape[2], self.kernel - 1
        out: torch.Tensor | None = None
        for t0 in range(0, frames, chunk):
            t1 = min(frames, t0 + chunk)
            a = max(0, t0 - back)
            part = x[:, :, a:t1]
            if pre is not None:
                part = pre(part, a, t1)
            front = back - (t0 - a)  # replicated frames, only before the first frame
            side = self.kernel // 2
            y = self.conv(F.pad(part, (side, side, side, side, front, 0), mode="replicate"))
            if out is None:
                out = y.new_empty(y.shape[0], y.shape[1], frames, *y.shape[3:])
            out[:, :, t0:t1] = y
            del part, y
        assert out is not None
        return out
