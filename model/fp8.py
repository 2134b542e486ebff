"""FP8 (e4m3) base weights with per-output-channel scales for the frozen DiT under a LoRA.

`FP8Linear` holds W ≈ weight_fp8 · scale (one float32 scale per output row, amax / 448), half the
bytes of bf16. Forward on CUDA: the input is quantised per token (row-wise amax) and multiplied by
`torch._scaled_mm` (row-wise scales, bf16 out); elsewhere, or for shapes `_scaled_mm` refuses
(K or N not a multiple of 16), the weight is dequantised to the input dtype. The weight is frozen:
backward gives the input gradient only, through the dequantised weight (no weight gradient is ever
formed, which is what LoRA training needs).

`quantize_blocks_fp8(model)` swaps every `nn.Linear` of the double/single blocks; embeddings, the
token refiner and the final layer stay in their dtype (they are < 2 % of the weights).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from model.dit import HunyuanDiT

log = logging.getLogger(__name__)
E4M3 = torch.float8_e4m3fn
E4M3_MAX = 448.0
SCALED_MM_FAILURES = 0  # > 0 once the fast path failed in this process (benchmarks report it)


def _quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, K) -> fp8 (M, K) and float32 scales (M, 1) with x ≈ q · scale. A bf16/fp16 input is
    scaled in its own dtype (its 8+ mantissa bits exceed e4m3's 3), so no float32 copy of a large
    activation is made."""
    # vector_norm(inf) reduces |x| without writing an |x| copy of the activation.
    amax = torch.linalg.vector_norm(x.detach(), float("inf"), dim=-1, keepdim=True).float().clamp(min=1e-12)
    scale = amax / E4M3_MAX
    wide = x if x.dtype in (torch.bfloat16, torch.float16) else x.float()
    return torch.div(wide, scale.to(wide.dtype)).clamp_(-E4M3_MAX, E4M3_MAX).to(E4M3), scale


def _output_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype an `nn.Linear` would give `x`: autocast's where it is on, else the input's.

    Under CUDA autocast a LayerNorm returns float32, so a modulated norm reaches the linear in
    float32; following the input there made the block's output, hence the whole residual stream,
    float32 (twice the activation memory on the card and in block swap's host copies)."""
    device = x.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype


class _ScaledMM(torch.autograd.Function):
    """y = x Wᵀ + b with W in fp8 (row scales); grad for x only (W frozen). y has the dtype an
    `nn.Linear` would give x (`_output_dtype`)."""

    @staticmethod
    def forward(ctx, x, weight, scale, bias):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(weight, scale)
        ctx.x_dtype = x.dtype
        out_dtype = _output_dtype(x)
        # Every dtype below is explicit; autocast would also refuse to promote across fp8 (cat).
        with torch.autocast(x.device.type, enabled=False):
            rows = x.reshape(-1, x.shape[-1])
            count = rows.shape[0]
            q, x_scale = _quantize_rows(rows)
            if count % 16:  # the FP8 kernels want every dimension a multiple of 16: pad the 1-byte copy
                pad = 16 - count % 16
                q = torch.cat([q, q.new_zeros(pad, q.shape[1])])
                x_scale = torch.cat([x_scale, x_scale.new_ones(pad, 1)])
            operand = weight if weight.is_contiguous() else weight.contiguous()  # column-major after .t()
            out = torch._scaled_mm(
                q, operand.t(), scale_a=x_scale, scale_b=scale.reshape(1, -1), out_dtype=torch.bfloat16
            )[:count]
            if bias is not None:
                out = out + bias
        return out.reshape(*x.shape[:-1], weight.shape[0]).to(out_dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        weight, scale = ctx.saved_tensors
        dense = weight.to(grad.dtype).mul_(scale.to(grad.dtype))  # transient; one copy, not two
        return (grad @ dense).to(ctx.x_dtype), None, None, None


class FP8Linear(nn.Module):
    """A frozen linear stored as e4m3 + per-row scales (see module docstring)."""

    weight: torch.Tensor
    weight_scale: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        with torch.no_grad():
            weight, scale = _quantize_rows(linear.weight.float())
        self.register_buffer("weight", weight)
        self.register_buffer("weight_scale", scale)
        bias = None if linear.bias is None else linear.bias.detach().to(torch.bfloat16)
        self.register_buffer("bias", bias)

    def dequantized(
        self, dtype: torch.dtype, columns: slice = slice(None), rows: slice = slice(None)
    ) -> torch.Tensor:
        """(out[rows], in[columns]) weight in `dtype` (a transient copy: only the e4m3 bytes are kept)."""
        return self.weight[rows, columns].to(dtype).mul_(self.weight_scale[rows].to(dtype))

    def _fast(self, x: torch.Tensor) -> bool:
        return x.is_cuda and self.in_features % 16 == 0 and self.out_features % 16 == 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        global SCALED_MM_FAILURES
        if self._fast(x) and SCALED_MM_FAILURES == 0:
            try:
                return _ScaledMM.apply(x, self.weight, self.weight_scale, self.bias)
            except RuntimeError as err:  # a GPU/driver without row-wise FP8 matmul: dequantise from now on
                SCALED_MM_FAILURES += 1
                log.warning(
                    "torch._scaled_mm failed (%s); FP8 weights are dequantised per matmul instead", err
                )
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.dequantized(x.dtype), bias)

    def forward_rows(self, x: torch.Tensor, rows: slice) -> torch.Tensor:
        """Output features `rows` (a contiguous slice) only: the single-stream block's linear1 in
        the sequence-chunked mode computes its q|k|v and MLP rows at different times."""
        weight, scale = self.weight[rows], self.weight_scale[rows]
        bias = None if self.bias is None else self.bias[rows]
        if self._fast(x) and SCALED_MM_FAILURES == 0 and weight.shape[0] % 16 == 0:
            return _ScaledMM.apply(x, weight, scale, bias)
        return F.linear(x, self.dequantized(x.dtype, rows=rows), None if bias is None else bias.to(x.dtype))

    def forward_split(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """The layer on the concatenation of `parts` along the last dim, without building it (the
        single-stream block's linear2 over [attention | MLP], as its bf16 path does)."""
        start, out = 0, None
        for part in parts:
            columns = slice(start, start + part.shape[-1])
            if self._fast(part) and SCALED_MM_FAILURES == 0 and part.shape[-1] % 16 == 0:
                piece = _ScaledMM.apply(part, self.weight[:, columns], self.weight_scale, None)
            else:
                piece = F.linear(part, self.dequantized(part.dtype, columns))
            out = piece if out is None else out + piece
            start = columns.stop
        if out is None or start != self.in_features:
            raise ValueError(f"parts of total width {start} do not fill in_features {self.in_features}")
        return out if self.bias is None else out + self.bias.to(out.dtype)


def quantize_blocks_fp8(model: HunyuanDiT) -> int:
    """Replace each nn.Linear inside `model.double_blocks` / `model.single_blocks` by an FP8Linear
    (in place; call before adding LoRA adapters). Returns how many were replaced."""
    count = 0
    for blocks in (model.double_blocks, model.single_blocks):
        for block in blocks:
            for name, module in list(block.named_modules()):
                if type(module) is nn.Linear:
                    parent_name, _, child = name.rpartition(".")
                    parent = block.get_submodule(parent_name) if parent_name else block
                    setattr(parent, child, FP8Linear(module))
                    count += 1
    return count
