"""FP8 (e4m3) weights for inference: `quantize_fp8(model)` replaces the DiT blocks' linear layers.

Each weight is stored once as float8_e4m3fn with one float32 scale per output row (row absmax /
448, e4m3's largest finite value), half the bytes of bf16. On a GPU whose `torch._scaled_mm`
supports row-wise scales (Hopper, compute capability >= 9.0) the matmul runs in FP8 with a dynamic
per-token activation scale and a bf16 output; elsewhere (CPU, older GPUs) the weight is
dequantised to the activation's dtype for an ordinary matmul, so the numbers match the GPU path up
to the activation rounding.

Only the transformer blocks' linears are quantised (the embedders, the text refiner and the final
layer stay in the model dtype, as is usual for FP8 DiT inference); width multiples of 16 are
required by the FP8 kernels, and layers without them are left as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

E4M3_MAX = 448.0


def _scaled_mm_ok(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (9, 0)


def _quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (M, K) -> (float8 (M, K), float32 scales (M, 1)) with each row's absmax mapped to 448."""
    scale = x.abs().amax(dim=-1, keepdim=True).float().clamp(min=1e-12) / E4M3_MAX
    return (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn), scale


class Float8Linear(nn.Module):
    """A frozen linear layer with e4m3 weights and per-row scales (see the module docstring)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight, scale = _quantize_rows(linear.weight.detach())
        self.register_buffer("weight_fp8", weight)
        self.register_buffer("weight_scale", scale.reshape(1, -1))  # (1, out) for _scaled_mm
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())

    def dequantized(self, dtype: torch.dtype, columns: slice = slice(None)) -> torch.Tensor:
        """The weight (out, in[columns]) in `dtype`."""
        return (self.weight_fp8[:, columns].to(torch.float32) * self.weight_scale.T).to(dtype)

    def _matmul(self, x: torch.Tensor, columns: slice = slice(None)) -> torch.Tensor:
        if not _scaled_mm_ok(x.device):
            return F.linear(x, self.dequantized(x.dtype, columns))
        flat = x.reshape(-1, x.shape[-1])
        rows = flat.shape[0]
        if rows % 16:  # the FP8 kernels want every dimension a multiple of 16
            flat = F.pad(flat, (0, 0, 0, 16 - rows % 16))
        x_fp8, x_scale = _quantize_rows(flat)
        weight = self.weight_fp8[:, columns]
        out = torch._scaled_mm(
            x_fp8,
            (weight if weight.is_contiguous() else weight.contiguous()).t(),  # column-major operand
            scale_a=x_scale,
            scale_b=self.weight_scale,
            out_dtype=torch.bfloat16 if x.dtype == torch.float32 else x.dtype,
        )
        return out[:rows].to(x.dtype).reshape(*x.shape[:-1], self.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._matmul(x)
        return out if self.bias is None else out + self.bias.to(out.dtype)

    def forward_split(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """The layer on the concatenation of `parts` along the last dim, without building it."""
        start, out = 0, None
        for part in parts:
            width = part.shape[-1]
            piece = self._matmul(part, slice(start, start + width))
            out = piece if out is None else out + piece
            start += width
        if start != self.in_features or out is None:
            raise ValueError(f"parts of total width {start} do not fill in_features {self.in_features}")
        return out if self.bias is None else out + self.bias.to(out.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, e4m3 per-row scales"


def quantize_fp8(model: nn.Module) -> int:
    """Replace the linear layers inside `model`'s dual- and single-stream blocks by `Float8Linear`
    (in place, once, at load); returns how many were replaced."""
    blocks = [*getattr(model, "double_blocks", []), *getattr(model, "single_blocks", [])]
    if not blocks:
        raise ValueError("quantize_fp8 expects a HunyuanDiT (double_blocks / single_blocks)")
    replaced = 0
    for block in blocks:
        for name, child in list(block.named_modules()):
            if not isinstance(child, nn.Linear) or child.in_features % 16 or child.out_features % 16:
                continue
            parent_name, _, attr = name.rpartition(".")
            parent = block.get_submodule(parent_name) if parent_name else block
            setattr(parent, attr, Float8Linear(child))
            replaced += 1
    return replaced
