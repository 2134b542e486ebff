"""Causal 3D convolution and GroupNorm for the VAE, with a memory-lean inference path.

Shape legend: B batch, C channels, T frames, H/W height/width.

Training runs the plain ops. In inference (`torch.is_grad_enabled()` false) the VAE applies
norm -> SiLU -> pad -> conv a few frames at a time (`CausalConv3d.chunked`): the normalised,
padded copies then exist only for a chunk. A conv whose input is produced on the fly (`streamed`:
nearest upsampling, say) never holds that input whole, and a conv whose output has the input's
shape can write over its input (`out=`), adding the residual on the way. A resnet block then holds
two full activations (input and hidden) instead of five, so a decode tile can be several times
larger in the same memory: fewer tiles, less overlap work. GroupNorm statistics still span the
whole tensor (or each frame): each frame's mean and variance come from one stable (Welford)
reduction per chunk, accumulated in float32 (float64 for float64 input) without float32 copies, and
the clip's are pooled from the frames'. Never E[x²] − E[x]², which cancels where |mean| ≫ std.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

# Frames per chunk of the inference path; large enough that each conv call fills the GPU.
CHUNK_FRAMES = 8
Pad = tuple[int, int, int, int, int, int]
# pre(part, a, b, pad): input frames [a, b) of a tensor -> what the conv reads there (normalised,
# activated), replicate-padded by `pad` (F.pad order: w, h, t).
Pre = Callable[[torch.Tensor, int, int, Pad], torch.Tensor]
# source(a, b, pad): frames [a, b) of a conv input that need not exist whole, padded likewise.
Source = Callable[[int, int, Pad], torch.Tensor]
# frames(a, b): frames [a, b) of some tensor (a residual added to a conv's output).
Frames = Callable[[int, int], torch.Tensor]
_LEAN = {"enabled": True}
# Layout of the inference path's activations: None = channels-last-3d on CUDA, NCDHW elsewhere.
_CHANNELS_LAST: dict[str, bool | None] = {"enabled": None}


def lean_inference() -> bool:
    """True when the VAE should take the chunked path: no autograd and not switched off."""
    return _LEAN["enabled"] and not torch.is_grad_enabled()


def set_lean_inference(enabled: bool) -> None:
    """Switch the chunked inference path on (default) or off (plain ops, more memory)."""
    _LEAN["enabled"] = enabled


def set_channels_last(enabled: bool | None) -> None:
    """Keep the inference path's activations channels-last-3d (True), NCDHW (False), or choose by
    device (None, default: channels-last on CUDA, where cuDNN's 3x3x3 kernels run 1.2-1.5x faster
    in that layout; see benchmarks/kernels_gpu.py)."""
    _CHANNELS_LAST["enabled"] = enabled


def inference_layout(x: torch.Tensor) -> torch.Tensor:
    """x in the inference path's layout (a no-op when it already is)."""
    enabled = _CHANNELS_LAST["enabled"]
    if enabled if enabled is not None else x.is_cuda:
        return x.contiguous(memory_format=torch.channels_last_3d)
    return x.contiguous()


def _channels_last(x: torch.Tensor) -> bool:
    return x.shape[1] > 1 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d)


def empty_like_layout(x: torch.Tensor, shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """An uninitialised tensor of `shape` with x's dtype, device and layout (NCDHW or channels-last)."""
    layout = torch.channels_last_3d if _channels_last(x) else torch.contiguous_format
    return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=layout)


def padded_buffer(
    like: torch.Tensor, frames: int, height: int, width: int, pad: Pad
) -> tuple[torch.Tensor, torch.Tensor]:
    """(buffer, interior): a (B, C, front + frames, H + 2p, W + 2p) tensor in `like`'s layout and
    the view of it where frames x height x width of content go; see `replicate_edges`."""
    left, right, top, bottom, front, back = pad
    b, c = like.shape[:2]
    buffer = empty_like_layout(
        like, (b, c, front + frames + back, top + height + bottom, left + width + right)
    )
    interior = buffer[:, :, front : front + frames, top : top + height, left : left + width]
    return buffer, interior


def replicate_edges(buffer: torch.Tensor, pad: Pad) -> torch.Tensor:
    """Fill a `padded_buffer`'s margins by replicating its interior's edges (F.pad "replicate")."""
    left, right, top, bottom, front, back = pad
    w_end, h_end, t_end = buffer.shape[4] - right, buffer.shape[3] - bottom, buffer.shape[2] - back
    for i in range(left):
        buffer[:, :, front:t_end, top:h_end, i] = buffer[:, :, front:t_end, top:h_end, left]
    for i in range(right):
        buffer[:, :, front:t_end, top:h_end, w_end + i] = buffer[:, :, front:t_end, top:h_end, w_end - 1]
    for i in range(top):
        buffer[:, :, front:t_end, i] = buffer[:, :, front:t_end, top]
    for i in range(bottom):
        buffer[:, :, front:t_end, h_end + i] = buffer[:, :, front:t_end, h_end - 1]
    for i in range(front):
        buffer[:, :, i] = buffer[:, :, front]
    for i in range(back):
        buffer[:, :, t_end + i] = buffer[:, :, t_end - 1]
    return buffer


def pad_replicate(x: torch.Tensor, pad: Pad) -> torch.Tensor:
    """F.pad(x, pad, mode="replicate") that keeps x's layout."""
    frames, height, width = x.shape[2:]
    buffer, interior = padded_buffer(x, frames, height, width, pad)
    interior.copy_(x)
    return replicate_edges(buffer, pad)


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

    def statistics(self, x: torch.Tensor, chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-(B, group) mean and 1/std: (B, G, 1, 1|T, 1, 1) each, float32 (float64 for float64 x).

        A chunk of frames at a time, one `std_mean` per chunk gives each frame's mean and spread about
        that mean; the clip's variance pools them: mean over frames of (var_t + (mean_t − mean)²).
        Both steps stay accurate where |mean| ≫ std, where E[x²] − E[x]² loses every digit.
        """
        b, c, t, h, w = x.shape
        chunk = chunk or CHUNK_FRAMES
        dtype = torch.promote_types(x.dtype, torch.float32)
        grouped = x.view(b, self.num_groups, c // self.num_groups, t, h, w)
        mean = torch.empty(b, self.num_groups, 1, t, 1, 1, device=x.device, dtype=dtype)
        var = torch.empty_like(mean)
        dims, count = (2, 4, 5), (c // self.num_groups) * h * w  # elements per (B, group, frame)
        for t0 in range(0, t, chunk):
            part = grouped[:, :, :, t0 : t0 + chunk]
            # One read, accumulated by Welford's update in float32 (float64 for float64 x): no copy of
            # the chunk, no cancellation. For half x both come back rounded to half. The std keeps its
            # relative precision (as does the scale applied later; a float16 variance could overflow),
            # but a rounded mean would shift the whole frame by |mean| * 2^-9 (bfloat16), so half
            # chunks take their mean from a float32-accumulated sum: a second read.
            std, part_mean = torch.std_mean(part, dim=dims, correction=0, keepdim=True)
            if part_mean.dtype != dtype:
                part_mean = part.sum(dim=dims, keepdim=True, dtype=dtype) / count
            mean[:, :, :, t0 : t0 + chunk] = part_mean
            var[:, :, :, t0 : t0 + chunk] = std.to(dtype).square()
        if not self.per_frame:  # every frame holds the same number of elements
            frame_mean = mean
            mean = frame_mean.mean(3, keepdim=True)
            var = (var + (frame_mean - mean).square()).mean(3, keepdim=True)
        return mean, torch.rsqrt(var + self.eps)

    def scale_shift(
        self, mean: torch.Tensor, rstd: torch.Tensor, t0: int, t: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Statistics and affine folded into (B, C, 1|t, 1, 1) factors for frames [t0, t0 + t), in the
        statistics' dtype."""
        b, g = mean.shape[:2]
        if mean.shape[3] > 1:
            mean, rstd = mean[:, :, :, t0 : t0 + t], rstd[:, :, :, t0 : t0 + t]
        cpg = self.num_channels // g
        scale = rstd * self.weight.to(mean.dtype).view(1, g, cpg, 1, 1, 1)
        shift = self.bias.to(mean.dtype).view(1, g, cpg, 1, 1, 1) - mean * scale
        return scale.reshape(b, g * cpg, -1, 1, 1), shift.reshape(b, g * cpg, -1, 1, 1)

    def apply_stats(self, x: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor, t0: int) -> torch.Tensor:
        """Normalise frames [t0, t0 + x.shape[2]) of the tensor the statistics came from."""
        scale, shift = self.scale_shift(mean, rstd, t0, x.shape[2])
        return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))

    def silu_pre(self, x: torch.Tensor) -> Pre:
        """A chunk function: frames [a, b) of x -> pad(SiLU(GroupNorm(x))[a:b]), whole-tensor statistics."""
        mean, rstd = self.statistics(x)

        def pre(part: torch.Tensor, a: int, b: int, pad: Pad) -> torch.Tensor:
            # Normalised and activated straight into the padded buffer the conv reads.
            frames, height, width = part.shape[2:]
            buffer, interior = padded_buffer(part, frames, height, width, pad)
            scale, shift = self.scale_shift(mean, rstd, a, b - a)
            torch.addcmul(shift.to(part.dtype), part, scale.to(part.dtype), out=interior)
            F.silu(interior, inplace=True)
            return replicate_edges(buffer, pad)

        return pre


class CausalConv3d(nn.Module):
    """Conv3d with replicate padding: k-1 frames in front (none behind), k//2 on each spatial side."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int | tuple[int, int, int] = 1) -> None:
        super().__init__()
        self.kernel = kernel
        self.pad = (kernel // 2, kernel // 2, kernel // 2, kernel // 2, kernel - 1, 0)
        self.conv = nn.Conv3d(cin, cout, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = pad_replicate(x, self.pad) if lean_inference() else F.pad(x, self.pad, mode="replicate")
        return self.conv(padded)

    def chunked(
        self,
        x: torch.Tensor,
        pre: Pre | None = None,
        chunk: int | None = None,
        out: torch.Tensor | None = None,
        residual: Frames | None = None,
    ) -> torch.Tensor:
        """Same result as forward(pre(x)) (+ residual) for temporal stride 1, a chunk at a time.

        `out` may be `x` itself when the conv keeps the shape: see `streamed`.
        """

        def source(a: int, b: int, pad: Pad) -> torch.Tensor:
            if pre is None:
                return pad_replicate(x[:, :, a:b], pad)
            return pre(x[:, :, a:b], a, b, pad)

        return self.streamed(x.shape[2], source, chunk, out, residual)

    def streamed(
        self,
        frames: int,
        source: Source,
        chunk: int | None = None,
        out: torch.Tensor | None = None,
        residual: Frames | None = None,
    ) -> torch.Tensor:
        """Causal conv over an input of `frames` frames that `source(a, b, pad)` yields a few at a time.

        Chunks run last to first. Output frames [t0, t1) read input frames [t0 - k + 1, t1) only, so
        `out` may be the very tensor `source` reads from: a chunk overwrites frames that no later
        (earlier-in-time) chunk reads. `residual(a, b)` is added to output frames [a, b).
        """
        assert self.conv.stride[0] == 1, "chunked causal conv needs temporal stride 1"
        chunk = chunk or CHUNK_FRAMES
        back, side = self.kernel - 1, self.kernel // 2
        for t0 in reversed(range(0, frames, chunk)):
            t1 = min(frames, t0 + chunk)
            a = max(0, t0 - back)
            front = back - (t0 - a)  # replicated frames, only before the first frame
            y = self.conv(source(a, t1, (side, side, side, side, front, 0)))
            if residual is not None:
                y += residual(t0, t1)
            if out is None:
                out = empty_like_layout(y, (y.shape[0], y.shape[1], frames, *y.shape[3:]))
            out[:, :, t0:t1] = y
            del y
        assert out is not None
        return out
