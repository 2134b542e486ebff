"""HunyuanVideo diffusion transformer: dual-stream -> single-stream blocks over [video; text] tokens.

Shape legend: B batch, C latent channels, T/H/W latent frames/height/width, (pt, ph, pw) patch,
N = (T/pt)(H/ph)(W/pw) video tokens, L text tokens (L_max = longest real prompt in the batch),
S = N + L, D width, Hd heads, Dh head dim.

Text padding: `text_mask` must be right-padded (each row's True entries form a prefix). The model
trims the batch to its longest real prompt and tells attention each sample's real length, so padded
tokens never act as keys and never influence real tokens; no dense mask is built.

Hooks for parallelism applied from outside (this file stays single-device; training.parallel sets
them): each dual/single-stream block calls `self.attention_fn` (default `model.attention.attention`),
and `HunyuanDiT.token_sharding` (default None) may keep a slice of the video tokens after patch
embedding and gather the per-token outputs before unpatchify (see `TokenSharding`);
`HunyuanDiT.block_runner` (default None) may run each block instead (`model.block_swap`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from model.attention import attention
from model.dit_config import DiTConfig
from model.dit_layers import (
    MLPEmbedder,
    ModulationLinear,
    RefinerBlock,
    RefinerMLP,
    RMSNorm,
    TimestepEmbedder,
    TokenRefiner,
    apply_rope,
    gated_residual,
    modulate,
    rope_tables,
)
from model.recompute import checkpoint_kwargs
from model.seq_chunks import (
    first_count,
    gather_chunks,
    linear_rows,
    norm_rope_chunked,
    run_chunk,
    token_spans,
)

if TYPE_CHECKING:
    from model.step_cache import StepCache

Rope = tuple[torch.Tensor, torch.Tensor]
# Token-replace context: the t=0 conditioning vector and the number of first-frame tokens.
TokenReplace = tuple[torch.Tensor, int] | None
# attention(q, k, v, seq_lens, backend) with model.attention.attention's contract.
AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Sequence[int] | None, str], torch.Tensor]


class TokenSharding(Protocol):
    """Splits the video tokens across devices (sequence parallelism); `HunyuanDiT.token_sharding`."""

    def shard(
        self, img: torch.Tensor, rope: Rope, grid: tuple[int, int, int], n_first: int
    ) -> tuple[torch.Tensor, Rope, int]:
        """img (B, N, D), RoPE tables (N + L, Dh), token grid (T, h, w), first-frame token count
        -> this device's tokens (B, n, D), their tables (n + L, Dh), its first-frame token count."""
        ...

    def gather(self, out: torch.Tensor) -> torch.Tensor:
        """Final-layer outputs of this device's tokens (B, n, F) -> all video tokens (B, N, F)."""
        ...


def _layer_norm(x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)


class DoubleStreamBlock(nn.Module):
    """Separate weights for video and text, joint attention over [video; text]."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        d, dh = cfg.hidden_size, cfg.head_dim
        self.num_heads, self.backend = cfg.num_heads, cfg.attention_backend
        self.img_mod, self.txt_mod = ModulationLinear(d, 6), ModulationLinear(d, 6)
        self.img_attn_qkv, self.txt_attn_qkv = nn.Linear(d, 3 * d), nn.Linear(d, 3 * d)
        self.img_attn_q_norm, self.img_attn_k_norm = RMSNorm(dh), RMSNorm(dh)
        self.txt_attn_q_norm, self.txt_attn_k_norm = RMSNorm(dh), RMSNorm(dh)
        self.img_attn_proj, self.txt_attn_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.img_mlp = RefinerMLP(d, cfg.mlp_hidden, act="gelu_tanh")
        self.txt_mlp = RefinerMLP(d, cfg.mlp_hidden, act="gelu_tanh")
        self.attention_fn: AttentionFn = attention
        self.ffn_chunk_tokens: int | None = None  # HunyuanDiT.set_ffn_chunk_tokens

    def _qkv(
        self, x: torch.Tensor, proj: nn.Linear, q_norm: RMSNorm, k_norm: RMSNorm
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = rearrange(proj(x), "b s (three h d) -> three b s h d", three=3, h=self.num_heads)
        return q_norm(q), k_norm(k), v

    def forward(
        self,
        img: torch.Tensor,
        txt: torch.Tensor,
        vec: torch.Tensor,
        rope: Rope,
        lens: Sequence[int],
        token_replace: TokenReplace = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """img (B, N, D), txt (B, L, D), vec (B, D), rope tables (N, Dh) -> updated (img, txt)."""
        if self.ffn_chunk_tokens is not None:
            return self._forward_chunked(img, txt, vec, rope, lens, token_replace, self.ffn_chunk_tokens)
        n_img = img.shape[1]
        i_shift1, i_scale1, i_gate1, i_shift2, i_scale2, i_gate2 = self.img_mod(vec)
        t_shift1, t_scale1, t_gate1, t_shift2, t_scale2, t_gate2 = self.txt_mod(vec)
        first: list[torch.Tensor | None] = [None] * 6
        n_first = 0
        if token_replace is not None:
            first, n_first = list(self.img_mod(token_replace[0])), token_replace[1]

        def pair(a: torch.Tensor | None, b: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor] | None:
            return None if a is None or b is None else (a, b)

        h = modulate(_layer_norm(img), i_shift1, i_scale1, pair(first[0], first[1]), n_first)
        q_i, k_i, v_i = self._qkv(h, self.img_attn_qkv, self.img_attn_q_norm, self.img_attn_k_norm)
        q_i, k_i = apply_rope(q_i, *rope), apply_rope(k_i, *rope)
        q_t, k_t, v_t = self._qkv(
            modulate(_layer_norm(txt), t_shift1, t_scale1),
            self.txt_attn_qkv,
            self.txt_attn_q_norm,
            self.txt_attn_k_norm,
        )
        out = self.attention_fn(
            torch.cat([q_i, q_t], dim=1),
            torch.cat([k_i, k_t], dim=1),
            torch.cat([v_i, v_t], dim=1),
            lens,
            self.backend,
        ).flatten(2)
        a_img, a_txt = out[:, :n_img], out[:, n_img:]

        img = gated_residual(img, self.img_attn_proj(a_img), i_gate1, first[2], n_first)
        h = modulate(_layer_norm(img), i_shift2, i_scale2, pair(first[3], first[4]), n_first)
        img = gated_residual(img, self.img_mlp(h), i_gate2, first[5], n_first)
        return img, self._txt_update(txt, a_txt, t_gate1, t_shift2, t_scale2, t_gate2)

    def _txt_update(
        self, txt: torch.Tensor, a_txt: torch.Tensor, gate1: torch.Tensor, shift2: torch.Tensor,
        scale2: torch.Tensor, gate2: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        txt = torch.addcmul(txt, self.txt_attn_proj(a_txt), gate1[:, None])
        h = modulate(_layer_norm(txt), shift2, scale2)
        return torch.addcmul(txt, self.txt_mlp(h), gate2[:, None])

    # ---- the low-memory path: per-token work over token slices (model.seq_chunks) ---------------
    def _forward_chunked(
        self, img: torch.Tensor, txt: torch.Tensor, vec: torch.Tensor, rope: Rope, lens: Sequence[int],
        token_replace: TokenReplace, chunk: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        i_mod = self.img_mod(vec)
        t_shift1, t_scale1, t_gate1, t_shift2, t_scale2, t_gate2 = self.txt_mod(vec)
        f_mod = self.img_mod(token_replace[0]) if token_replace is not None else None
        n_first = token_replace[1] if token_replace is not None else 0
        out = self._joint_attention(img, txt, i_mod, f_mod, n_first, (t_shift1, t_scale1), rope, lens, chunk)
        n_img = img.shape[1]

        def pieces() -> Iterator[tuple[int, int, torch.Tensor]]:
            # split, not slicing: its backward gathers the pieces' gradients in one tensor
            spans, attn = token_spans(n_img, chunk), out[:, :n_img]
            for (start, stop), x, a in zip(spans, img.split(chunk, 1), attn.split(chunk, 1), strict=True):
                k = first_count(n_first, start, stop)
                yield start, stop, run_chunk(self._img_update, x, a, i_mod, f_mod if k else None, k)

        new_img = gather_chunks(pieces(), n_img, concatenate=torch.is_grad_enabled())
        return new_img, self._txt_update(txt, out[:, n_img:], t_gate1, t_shift2, t_scale2, t_gate2)

    def _joint_attention(
        self, img: torch.Tensor, txt: torch.Tensor, i_mod: list[torch.Tensor], f_mod: list[torch.Tensor] | None,
        n_first: int, t_mod: tuple[torch.Tensor, torch.Tensor], rope: Rope, lens: Sequence[int], chunk: int,
    ) -> torch.Tensor:  # fmt: skip
        """Attention output (B, N + L, D): q|k|v written per token slice into one joint buffer (no
        concatenation copies), QK norm + RoPE per slice, in place when no gradient is recorded."""
        n_img = img.shape[1]

        def pieces() -> Iterator[tuple[int, int, torch.Tensor]]:
            for (start, stop), x in zip(token_spans(n_img, chunk), img.split(chunk, 1), strict=True):
                k = first_count(n_first, start, stop)
                first = (f_mod[0], f_mod[1]) if k and f_mod is not None else None
                h = modulate(_layer_norm(x), i_mod[0], i_mod[1], first, k)
                yield start, stop, self.img_attn_qkv(h)
            text = self.txt_attn_qkv(modulate(_layer_norm(txt), *t_mod))
            yield n_img, n_img + txt.shape[1], text

        qkv = gather_chunks(pieces(), n_img + txt.shape[1])
        q, k, v = rearrange(qkv, "b s (three h d) -> three b s h d", three=3, h=self.num_heads)
        q_out, k_out = (q, k) if not torch.is_grad_enabled() else (torch.empty_like(q), torch.empty_like(k))
        for x, out, norms in ((q, q_out, (self.img_attn_q_norm, self.txt_attn_q_norm)),
                              (k, k_out, (self.img_attn_k_norm, self.txt_attn_k_norm))):  # fmt: skip
            norm_rope_chunked(x[:, :n_img], norms[0], rope, chunk, out[:, :n_img])
            norm_rope_chunked(x[:, n_img:], norms[1], None, chunk, out[:, n_img:])
        return self.attention_fn(q_out, k_out, v, lens, self.backend).flatten(2)

    def _img_update(
        self, img: torch.Tensor, attn: torch.Tensor, mod: list[torch.Tensor], first: list[torch.Tensor] | None,
        n_first: int,
    ) -> torch.Tensor:  # fmt: skip
        """Attention projection + MLP residuals of a token slice (its first `n_first` tokens take `first`)."""
        shift1, scale1, gate1, shift2, scale2, gate2 = mod
        f: list[torch.Tensor | None] = list(first) if first is not None else [None] * 6
        x = gated_residual(img, self.img_attn_proj(attn), gate1, f[2], n_first)
        pair = None if first is None else (first[3], first[4])
        h = modulate(_layer_norm(x), shift2, scale2, pair, n_first)
        return gated_residual(x, self.img_mlp(h), gate2, f[5], n_first)


class SingleStreamBlock(nn.Module):
    """One fused linear1 (QKV + MLP-in) and a parallel linear2 over the joint sequence."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        d, dh = cfg.hidden_size, cfg.head_dim
        self.hidden, self.mlp_hidden = d, cfg.mlp_hidden
        self.num_heads, self.backend = cfg.num_heads, cfg.attention_backend
        self.linear1 = nn.Linear(d, 3 * d + cfg.mlp_hidden)
        self.linear2 = nn.Linear(d + cfg.mlp_hidden, d)
        self.q_norm = RMSNorm(dh)
        self.k_norm = RMSNorm(dh)
        self.modulation = ModulationLinear(d, 3)
        self.attention_fn: AttentionFn = attention
        self.ffn_chunk_tokens: int | None = None  # HunyuanDiT.set_ffn_chunk_tokens

    def forward(
        self,
        x: torch.Tensor,
        vec: torch.Tensor,
        rope: Rope,
        lens: Sequence[int],
        token_replace: TokenReplace = None,
    ) -> torch.Tensor:
        """x (B, S, D) joint tokens, vec (B, D), rope tables (S, Dh; identity on text) -> (B, S, D)."""
        if self.ffn_chunk_tokens is not None:
            return self._forward_chunked(x, vec, rope, lens, token_replace, self.ffn_chunk_tokens)
        shift, scale, gate = self.modulation(vec)
        first_mod, first_gate, n_first = None, None, 0
        if token_replace is not None:
            f_shift, f_scale, first_gate = self.modulation(token_replace[0])
            first_mod, n_first = (f_shift, f_scale), token_replace[1]
        h = self.linear1(modulate(_layer_norm(x), shift, scale, first_mod, n_first))
        qkv, mlp = h.split([3 * self.hidden, self.mlp_hidden], dim=-1)
        q, k, v = rearrange(qkv, "b s (three h d) -> three b s h d", three=3, h=self.num_heads)
        q, k = apply_rope(self.q_norm(q), *rope), apply_rope(self.k_norm(k), *rope)
        attn = self.attention_fn(q, k, v, lens, self.backend).flatten(2)
        act = F.gelu(mlp, approximate="tanh")
        return gated_residual(x, self._linear2(attn, act), gate, first_gate, n_first)

    def _linear2(self, attn: torch.Tensor, act: torch.Tensor, split_lora: bool = False) -> torch.Tensor:
        """linear2 over [attn | act] (B, S, D + mlp) -> (B, S, D), without building the concatenation
        for the base weight. LoRA adapters take the concatenation, or with `split_lora` the two
        parts as column blocks of their input (the chunked path: under autograd a concatenation's
        gradient would keep every chunk's (D + mlp)-wide gradient alive until the last chunk)."""
        adapters = getattr(self.linear2, "lora", None)  # model.lora adapters of linear2, if any
        if isinstance(self.linear2, nn.Linear):
            weight = self.linear2.weight
            out = F.linear(attn, weight[:, : self.hidden], self.linear2.bias)
            out += F.linear(act, weight[:, self.hidden :])
        elif split := getattr(self.linear2, "forward_split", None):
            out = split([attn, act])  # a quantised linear (model.fp8), the same split
        else:  # another module: one call on the concatenation, so its hooks run
            return cast(torch.Tensor, self.linear2(torch.cat([attn, act], dim=-1)))
        if adapters is None:
            return out
        # what its forward hook would add on a module call
        return adapters.delta([attn, act] if split_lora else torch.cat([attn, act], dim=-1), out)

    # ---- the low-memory path: per-token work over token slices (model.seq_chunks) ---------------
    def _forward_chunked(
        self, x: torch.Tensor, vec: torch.Tensor, rope: Rope, lens: Sequence[int], token_replace: TokenReplace,
        chunk: int,
    ) -> torch.Tensor:  # fmt: skip
        mod = self.modulation(vec)
        first = self.modulation(token_replace[0]) if token_replace is not None else None
        n_first = token_replace[1] if token_replace is not None else 0
        attn = self._attention_chunked(x, mod, first, n_first, rope, lens, chunk)

        def pieces() -> Iterator[tuple[int, int, torch.Tensor]]:
            # split, not slicing: its backward gathers the pieces' gradients in one tensor
            spans = token_spans(x.shape[1], chunk)
            for (start, stop), piece, a in zip(spans, x.split(chunk, 1), attn.split(chunk, 1), strict=True):
                k = first_count(n_first, start, stop)
                yield start, stop, run_chunk(self._ffn_update, piece, a, mod, first if k else None, k)

        return gather_chunks(pieces(), x.shape[1], concatenate=torch.is_grad_enabled())

    def _attention_chunked(
        self, x: torch.Tensor, mod: list[torch.Tensor], first: list[torch.Tensor] | None, n_first: int,
        rope: Rope, lens: Sequence[int], chunk: int,
    ) -> torch.Tensor:  # fmt: skip
        """Attention output (B, S, D): linear1's q|k|v rows per token slice (its MLP rows are left
        to `_ffn_update`), QK norm + RoPE per slice, in place when no gradient is recorded."""
        qkv_rows = slice(0, 3 * self.hidden)

        def pieces() -> Iterator[tuple[int, int, torch.Tensor]]:
            for (start, stop), piece in zip(token_spans(x.shape[1], chunk), x.split(chunk, 1), strict=True):
                k = first_count(n_first, start, stop)
                pair = (first[0], first[1]) if k and first is not None else None
                h = modulate(_layer_norm(piece), mod[0], mod[1], pair, k)
                yield start, stop, linear_rows(self.linear1, h, qkv_rows)

        qkv = gather_chunks(pieces(), x.shape[1])
        q, k, v = rearrange(qkv, "b s (three h d) -> three b s h d", three=3, h=self.num_heads)
        q_out, k_out = (q, k) if not torch.is_grad_enabled() else (torch.empty_like(q), torch.empty_like(k))
        norm_rope_chunked(q, self.q_norm, rope, chunk, q_out)
        norm_rope_chunked(k, self.k_norm, rope, chunk, k_out)
        return self.attention_fn(q_out, k_out, v, lens, self.backend).flatten(2)

    def _ffn_update(
        self, x: torch.Tensor, attn: torch.Tensor, mod: list[torch.Tensor], first: list[torch.Tensor] | None,
        n_first: int,
    ) -> torch.Tensor:  # fmt: skip
        """x + gate · linear2([attn | gelu(linear1's MLP rows)]) of a token slice."""
        shift, scale, gate = mod
        pair = None if first is None else (first[0], first[1])
        h = modulate(_layer_norm(x), shift, scale, pair, n_first)
        mlp_rows = slice(3 * self.hidden, 3 * self.hidden + self.mlp_hidden)
        act = F.gelu(linear_rows(self.linear1, h, mlp_rows), approximate="tanh")
        out = self._linear2(attn, act, split_lora=True)
        return gated_residual(x, out, gate, None if first is None else first[2], n_first)


class FinalLayer(nn.Module):
    """adaLN (official order: shift, scale) then a linear to patch pixels: (B, N, D) -> (B, N, pt·ph·pw·C)."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.linear = nn.Linear(
            d, cfg.patch_size[0] * cfg.patch_size[1] * cfg.patch_size[2] * cfg.out_channels
        )
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))

    def forward(self, x: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(vec).chunk(2, dim=-1)
        return self.linear(modulate(_layer_norm(x), shift, scale))


class PatchEmbed(nn.Module):
    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv3d(
            cfg.in_channels, cfg.hidden_size, kernel_size=cfg.patch_size, stride=cfg.patch_size
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(self.proj(x), "b d t h w -> b (t h w) d")


class HunyuanDiT(nn.Module):
    """The HYVideo-T/2 transformer. Parameter names equal the official checkpoint's."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = cfg = config
        d = cfg.hidden_size
        self.gradient_checkpointing = False
        # What a checkpointed block keeps for backward (model.recompute.POLICIES).
        self.checkpoint_policy = "full"
        self.token_sharding: TokenSharding | None = None
        # Sampling only: skips the blocks on steps whose input barely changed (model.step_cache).
        self.step_cache: StepCache | None = None
        self.block_runner: Callable[..., Any] | None = None
        self.img_in = PatchEmbed(cfg)
        self.txt_in = TokenRefiner(
            cfg.text_states_dim, d, cfg.num_heads, cfg.depth_refiner, cfg.attention_backend
        )
        self.time_in = TimestepEmbedder(d)
        self.vector_in = MLPEmbedder(cfg.text_pooled_dim, d)
        self.guidance_in = TimestepEmbedder(d) if cfg.guidance_embed else None
        self.double_blocks = nn.ModuleList(DoubleStreamBlock(cfg) for _ in range(cfg.depth_double))
        self.single_blocks = nn.ModuleList(SingleStreamBlock(cfg) for _ in range(cfg.depth_single))
        self.final_layer = FinalLayer(cfg)

    def set_attention_backend(self, backend: str) -> None:
        """Switch every attention call to `backend` (``sdpa`` | ``flash`` | ``reference``)."""
        for module in self.modules():
            if isinstance(module, (DoubleStreamBlock, SingleStreamBlock, RefinerBlock)):
                module.backend = backend

    def set_ffn_chunk_tokens(self, tokens: int | None) -> None:
        """Run every block's per-token work (linears, MLP, QK norm + RoPE, residuals) over slices of
        at most `tokens` tokens (None: the whole sequence at once). Bounds a block's activation
        memory by the slice instead of the sequence (model.seq_chunks); the output is the same up
        to matmul rounding. The low-memory modes use it."""
        if tokens is not None and tokens < 1:
            raise ValueError(f"ffn_chunk_tokens must be >= 1 or None, got {tokens}")
        for block in [*self.double_blocks, *self.single_blocks]:
            block.ffn_chunk_tokens = tokens

    def _text_lengths(self, text_mask: torch.Tensor, length: int) -> list[int]:
        if text_mask.dtype != torch.bool:
            text_mask = text_mask.bool()
        lens = text_mask.sum(1)
        prefix = torch.arange(length, device=text_mask.device)[None] < lens[:, None]
        if not torch.equal(prefix, text_mask):
            raise ValueError("text_mask must be right-padded: each row's True entries must form a prefix")
        out = [int(n) for n in lens.tolist()]
        if min(out) < 1:
            raise ValueError("text_mask has a row with no real token; every prompt needs at least one token")
        return out

    def _prepare_latents(self, x: torch.Tensor, first_frame_clean: torch.Tensor | None) -> torch.Tensor:
        cfg = self.config
        if cfg.image_condition == "token_replace" and first_frame_clean is not None:
            return torch.cat([first_frame_clean.to(x.dtype), x[:, :, 1:]], dim=2)
        if cfg.image_condition == "latent_concat" and x.shape[1] == cfg.out_channels:
            image = torch.zeros_like(x)
            mask = torch.zeros_like(x[:, :1])
            if first_frame_clean is not None:
                image[:, :, :1] = first_frame_clean.to(x.dtype)
                mask[:, :, :1] = 1
            return torch.cat([x, image, mask], dim=1)
        return x

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        text_states: torch.Tensor,
        text_mask: torch.Tensor,
        text_pooled: torch.Tensor,
        guidance: torch.Tensor | None = None,
        first_frame_clean: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the flow (released convention, see model.flow) for noisy latents.

        Args:
            x: (B, C, T, H, W) noisy latents; T, H, W divisible by the patch. C = in_channels, or
                out_channels for ``latent_concat`` (the image/mask channels are then built here).
            t: (B,) diffusion time in [0, 1000], 1000 = pure noise.
            text_states: (B, L, text_states_dim) LLM hidden states; text_mask (B, L) right-padded.
            text_pooled: (B, text_pooled_dim) pooled text vector.
            guidance: (B,) embedded guidance scale already × 1000; required when guidance_embed.
            first_frame_clean: (B, C_out, 1, H, W) clean image latent for I2V; replaces x's first
                frame (``token_replace``) or fills the image channels (``latent_concat``). None
                with ``token_replace``: text-to-video, no frame is taken as clean.

        Returns:
            (B, out_channels, T, H, W).
        """
        cfg = self.config
        x = self._prepare_latents(x, first_frame_clean)
        batch, channels, frames, height, width = x.shape
        pt, ph, pw = cfg.patch_size
        if channels != cfg.in_channels or frames % pt or height % ph or width % pw:
            raise ValueError(
                f"latents of shape {tuple(x.shape)} do not fit in_channels {cfg.in_channels} and patch {cfg.patch_size}"
            )
        if text_states.shape[:2] != text_mask.shape or text_states.shape[-1] != cfg.text_states_dim:
            raise ValueError(
                f"text_states {tuple(text_states.shape)} / text_mask {tuple(text_mask.shape)} do not match "
                f"(B, L, {cfg.text_states_dim}) / (B, L)"
            )
        if cfg.guidance_embed and guidance is None:
            raise ValueError("this model embeds the guidance scale: pass guidance (B,) = scale × 1000")
        grid = (frames // pt, height // ph, width // pw)
        text_lens = self._text_lengths(text_mask, text_states.shape[1])
        longest = max(text_lens)
        text_states, text_mask = text_states[:, :longest], text_mask[:, :longest]

        t = t.to(x.device).float().expand(batch)
        vec = self.time_in(t) + self.vector_in(text_pooled)
        token_replace: TokenReplace = None
        if cfg.image_condition == "token_replace" and first_frame_clean is not None:
            # The clean first frame is modulated as if t = 0 (and without the guidance term, as in
            # the released I2V model). Without an image the model runs as T2V: every frame is noisy.
            token_replace = (
                self.time_in(torch.zeros_like(t)) + self.vector_in(text_pooled),
                grid[1] * grid[2],
            )
        if self.guidance_in is not None and guidance is not None:
            vec = vec + self.guidance_in(guidance.to(x.device).float().expand(batch))

        img = self.img_in(x)
        txt = self.txt_in(text_states, t, text_mask, text_lens)
        cos, sin = rope_tables(grid, cfg.rope_dims, cfg.rope_theta, longest, x.device)
        if self.token_sharding is not None:
            # Sequence parallelism: from here on this device holds only its slice of the video tokens.
            first = token_replace[1] if token_replace is not None else 0
            img, (cos, sin), first = self.token_sharding.shard(img, (cos, sin), grid, first)
            token_replace = (token_replace[0], first) if token_replace is not None else None
        n_img = img.shape[1]
        lens = [n_img + n for n in text_lens]
        img_rope = (cos[:n_img], sin[:n_img])

        cache = self.step_cache
        if cache is not None and not cache.should_compute(self._cache_indicator(img, vec)):
            assert cache.residual is not None
            video = img + cache.residual  # a skipped step: the last computed step's residual
        else:
            video_in = img if cache is not None else None  # else released after the first block
            for block in self.double_blocks:
                img, txt = self._run(block, img, txt, vec, img_rope, lens, token_replace)
            joint = torch.cat([img, txt], dim=1)
            del img, txt  # the joint copy replaces them
            for block in self.single_blocks:
                joint = self._run(block, joint, vec, (cos, sin), lens, token_replace)
            video = joint[:, :n_img]
            if cache is not None:
                assert video_in is not None
                cache.store(video_in, video)

        out = self.final_layer(video, vec)
        if self.token_sharding is not None:
            out = self.token_sharding.gather(out)
        return rearrange(
            out,
            "b (t h w) (c pt ph pw) -> b c (t pt) (h ph) (w pw)",
            t=grid[0],
            h=grid[1],
            w=grid[2],
            pt=pt,
            ph=ph,
            pw=pw,
        )

    def _cache_indicator(self, img: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
        """The step cache's indicator: the first block's modulated video input (model.step_cache)."""
        if len(self.double_blocks):
            first: DoubleStreamBlock = self.double_blocks[0]  # type: ignore[assignment]
            shift, scale = first.img_mod(vec)[:2]
        else:
            single: SingleStreamBlock = self.single_blocks[0]  # type: ignore[assignment]
            shift, scale = single.modulation(vec)[:2]
        return modulate(_layer_norm(img), shift, scale)

    def _run(self, block: nn.Module, *args: Any) -> Any:
        if self.block_runner is not None:
            return self.block_runner(block, *args)
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(block, *args, **checkpoint_kwargs(self.checkpoint_policy))
        return block(*args)


def compile_blocks(model: HunyuanDiT, **compile_kwargs: object) -> HunyuanDiT:
    """Compile each transformer block in place with `torch.compile` (regional compilation)."""
    for block in [*model.double_blocks, *model.single_blocks]:
        block.compile(**compile_kwargs)
    return model
