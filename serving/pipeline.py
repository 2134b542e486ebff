"""The T2V / I2V pipeline: text encoder → DiT (Euler flow sampling) → causal VAE decode → `Video`.

Shape legend: B batch (1, or 2 with real CFG), C latent channels (16), T = (F - 1)/4 + 1 latent frames,
h/w = H/8, W/8 latent height/width, F frames, H/W pixels, L text tokens.

Sampling follows the released recipe: noise (B, C, T, h, w) from a CPU generator seeded by `seed`
(so the same seed gives the same noise on any device), Euler steps over the shifted sigma schedule
(model.flow), the DiT fed `1000·sigma`, the embedded guidance as `guidance·1000`, and optionally
real classifier-free guidance against a negative prompt (pred = uncond + cfg·(cond − uncond)).
I2V (`token_replace`): the image's clean latent is pinned as latent frame 0 at every step and its
tokens are modulated with t = 0 inside the DiT; the "stability" start mixes the image latent
into the starting noise (x = 0.999·noise + 0.001·image latent on every frame), as the released I2V
sampler does with `i2v_stability`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from PIL import Image
from torch import nn

from model.block_swap import BlockSwap
from model.bundle import BundleError, BundleSpec, is_bundle, read_spec
from model.checkpoints import load_transformer, load_vae
from model.dit import HunyuanDiT, compile_blocks
from model.dit_config import DiTConfig
from model.flow import euler_sample
from model.fp8 import quantize_blocks_fp8
from model.prompt_fit import PromptFit, fit_prompt
from model.step_cache import StepCache, read_calibration
from model.text import TextEncoder, TextEncoding, build_text_encoder
from model.tile_attention import TileWindow, enable_tile_attention
from model.vae import CausalVAE3D, VAEConfig
from serving.config import ServingConfig, fit_memory
from serving.limits import GenerationSettings, InvalidRequestError
from serving.lora import LoRAMode, apply_loras
from serving.references import ModelSource
from serving.video import Video

ImageInput = Image.Image | np.ndarray | str | Path
ProgressFn = Callable[[int, int], None]
TINY_RANDOM_SEED = 0
# Stability start of the released I2V sampler: the starting point sits at t = 0.999 on the path
# from the (repeated) image latent to noise.
STABILITY_NOISE = 0.999


def build_tiny_random(seed: int = TINY_RANDOM_SEED) -> tuple[HunyuanDiT, CausalVAE3D, BundleSpec]:
    """The built-in `tiny-random` model: DiT `tiny` (token_replace I2V) + VAE `tiny`, weights from `seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = HunyuanDiT(DiTConfig.preset("tiny", image_condition="token_replace"))
        vae = CausalVAE3D(VAEConfig.preset("tiny"))
    spec = BundleSpec(text_encoder="tiny-random", fps=8.0, defaults={"steps": 8, "shift": 7.0})
    return transformer.eval(), vae.eval(), spec


def load_parts(source: ModelSource) -> tuple[HunyuanDiT, CausalVAE3D, BundleSpec]:
    """The DiT, VAE and bundle spec a resolved reference points at, on the CPU in float32."""
    if source.local_path is None:
        return build_tiny_random()
    path = source.local_path
    if not is_bundle(path):
        raise BundleError(
            f"{path}: not a pipeline bundle (expected transformer/ and vae/ inside; see serving docs)"
        )
    transformer = load_transformer(path / "transformer")
    vae = load_vae(path / "vae")
    widths = (transformer.config.text_states_dim, transformer.config.text_pooled_dim)
    return transformer, vae, read_spec(path, widths)


def load_image(image: ImageInput, height: int, width: int) -> torch.Tensor:
    """An RGB image resized to cover (height, width) and centre-cropped: (1, 3, 1, H, W) in [-1, 1].

    Accepts a PIL image, an (H, W, 3) uint8 array or a file path.
    """
    pil: Image.Image
    if isinstance(image, str | Path):
        path = Path(image)
        if not path.is_file():
            raise InvalidRequestError(f"image {path} does not exist")
        try:
            pil = Image.open(path)
            pil.load()
        except OSError as err:
            raise InvalidRequestError(f"image {path} cannot be read as an image ({err})") from err
    elif isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[-1] not in (3, 4):
            raise InvalidRequestError(f"image array must be (H, W, 3) uint8, got shape {image.shape}")
        pil = Image.fromarray(image.astype(np.uint8))
    elif isinstance(image, Image.Image):
        pil = image
    else:
        raise InvalidRequestError(
            f"image must be a path, a PIL image or an array, got {type(image).__name__}"
        )
    pil = pil.convert("RGB")
    scale = max(height / pil.height, width / pil.width)
    resized = pil.resize(
        (max(width, round(pil.width * scale)), max(height, round(pil.height * scale))),
        Image.Resampling.LANCZOS,
    )
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    pixels = np.asarray(resized.crop((left, top, left + width, top + height)), dtype=np.float32)
    tensor = torch.from_numpy(pixels / 127.5 - 1.0)
    return rearrange(tensor, "h w c -> 1 c 1 h w")


def frames_to_uint8(video: torch.Tensor) -> np.ndarray:
    """(1, 3, F, H, W) in [-1, 1] -> (F, H, W, 3) uint8."""
    pixels = ((video[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rearrange(pixels, "c f h w -> f h w c").cpu().numpy()


def _has_weights(module: nn.Module) -> bool:
    """Whether `module` has parameters; a weightless one (the tiny-random text encoder, whose lookup
    table is a CPU buffer and whose token ids are built on the CPU) stays on the CPU."""
    return any(True for _ in module.parameters())


class Pipeline:
    """A loaded model (text encoder + DiT + VAE) placed per a `ServingConfig`; `generate` makes videos."""

    def __init__(
        self,
        transformer: HunyuanDiT,
        vae: CausalVAE3D,
        text_encoder: TextEncoder,
        source: ModelSource,
        spec: BundleSpec,
        config: ServingConfig,
    ) -> None:
        self.transformer, self.vae, self.text_encoder = transformer, vae, text_encoder
        if config.max_vram_gb is not None:
            config = fit_memory(config, transformer)
        self.source, self.spec, self.config = source, spec, config
        self.device, self.dtype = config.torch_device, config.torch_dtype
        # LoRAs applied (file, scale) and how; merged ones changed the base weights for good.
        self.lora_state: tuple[tuple[tuple[Path, float], ...], LoRAMode] = ((), "adapter")
        self.lora_merged = False
        self.lora_info: list[dict[str, Any]] = []
        if config.cpu_threads is not None:
            torch.set_num_threads(config.cpu_threads)
        if self.transformer.config.text_states_dim != text_encoder.states_dim:
            raise BundleError(
                f"{source.reference}: DiT reads text states of width {self.transformer.config.text_states_dim}, "
                f"the text encoder gives {text_encoder.states_dim}"
            )
        self.transformer.set_attention_backend(config.attention_backend)
        self.transformer.to(dtype=self.dtype)
        if config.fp8:
            quantize_blocks_fp8(self.transformer)
        self.transformer.set_ffn_chunk_tokens(config.ffn_chunk_tokens)
        self.tile_attention = (
            enable_tile_attention(self.transformer, TileWindow(config.sta_tile, config.sta_window))
            if config.sta_window is not None
            else None
        )
        if config.step_cache is not None:
            rescale = (
                read_calibration(config.step_cache_calibration)
                if config.step_cache_calibration
                else (1.0, 0.0)
            )
            self.transformer.step_cache = StepCache(config.step_cache, rescale)
        self.vae.to(dtype=self.dtype)
        self.vae.tiling = config.tiling
        if config.compile_blocks:
            compile_blocks(self.transformer)
        if self.device.type == "cuda" and _has_weights(self.text_encoder):
            # An 8B LLM in float32 would take 32 GB of the GPU during text encoding.
            self.text_encoder.to(dtype=self.dtype)
        self.block_offload: BlockSwap | None = None
        for module in (self.transformer, self.vae, self.text_encoder):
            module.eval().requires_grad_(False)
            if config.block_offload and module is self.transformer and self.device.type == "cuda":
                self.block_offload = BlockSwap(module, self.device)  # every block streamed
            elif not config.cpu_offload and _has_weights(module):
                module.to(self.device)

    @classmethod
    def load(cls, source: ModelSource, config: ServingConfig | None = None) -> Pipeline:
        """Build the pipeline a resolved reference points at (see serving.references)."""
        transformer, vae, spec = load_parts(source)
        return cls(
            transformer, vae, build_text_encoder(spec.text_encoder), source, spec, config or ServingConfig()
        )

    def set_loras(self, files: list[tuple[Path, float]], mode: LoRAMode = "adapter") -> None:
        """Apply these LoRAs (file, scale) instead of the current ones (serving.lora); after a merge
        the base weights changed, so a different set needs a freshly loaded pipeline."""
        if self.lora_merged:
            raise RuntimeError(
                "this pipeline has LoRAs merged into its weights; load it again to change them"
            )
        self.lora_info = apply_loras(self.transformer, files, mode)
        self.transformer.requires_grad_(False)
        self.lora_state = (tuple(files), mode)
        self.lora_merged = mode == "merge" and any(scale != 0.0 for _, scale in files)

    @property
    def model_version(self) -> str:
        return self.source.version

    @property
    def image_condition(self) -> str | None:
        return self.transformer.config.image_condition

    @property
    def fps(self) -> float:
        return float(self.spec.fps or self.config.default_fps)

    @contextmanager
    def _stage(self, module: nn.Module) -> Iterator[None]:
        """With CPU offload, `module` lives on the device only inside this block."""
        streamed = module is self.transformer and self.block_offload is not None
        if not self.config.cpu_offload or self.device.type == "cpu" or not _has_weights(module) or streamed:
            yield
            return
        module.to(self.device)
        try:
            yield
        finally:
            module.to("cpu")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def _speed_switches(self) -> dict[str, Any]:
        """The output-changing speed switches in use and what the step cache did (video metadata)."""
        out: dict[str, Any] = {"fp8": self.config.fp8, "block_offload": self.block_offload is not None}
        if self.config.ffn_chunk_tokens is not None:
            out["ffn_chunk_tokens"] = self.config.ffn_chunk_tokens
        if self.tile_attention is not None:
            out["sta_window"] = list(self.tile_attention.window.window)
            out["sta_tile"] = list(self.tile_attention.window.tile)
            out["sta_dense_steps"] = self.config.sta_dense_steps
        if (cache := self.transformer.step_cache) is not None:
            out |= {"step_cache": cache.threshold, "steps_computed": cache.stats.computed}
            out["steps_skipped"] = cache.stats.skipped
        return out

    def fit_prompt(self, prompt: str) -> PromptFit:
        """The prompt as the text encoder will read it (cut at a word boundary if too long)."""
        return fit_prompt(self.text_encoder, prompt)

    def encode_text(self, prompts: list[str]) -> TextEncoding:
        """Prompts -> TextEncoding on the device: states (B, L, D_t) and pooled (B, D_p) in the model dtype."""
        with self._stage(self.text_encoder):
            enc = self.text_encoder.encode(prompts)
        return TextEncoding(
            enc.states.to(self.device, self.dtype),
            enc.mask.to(self.device),
            enc.pooled.to(self.device, self.dtype),
        )

    def _image_latent(self, image: ImageInput, height: int, width: int) -> torch.Tensor:
        """Scaled clean latent of the conditioning image: (1, C, 1, h, w)."""
        pixels = load_image(image, height, width).to(self.device, self.dtype)
        with self._stage(self.vae), torch.no_grad():
            latent = self.vae.encode(pixels).mode()
        return latent * self.vae.scaling_factor

    def vae_tiled(self, height: int, width: int, frames: int) -> bool:
        """Whether the VAE runs tiled on a video of this size (the config's `vae_tiling`)."""
        if self.config.vae_tiling != "auto":
            return self.config.vae_tiling == "always"
        return max(height, width) > self.config.vae_tile_size or frames > self.config.vae_tile_frames

    @torch.no_grad()
    def sample_latents(
        self,
        text: TextEncoding,
        *,
        height: int,
        width: int,
        frames: int,
        steps: int,
        shift: float,
        guidance: float,
        cfg_scale: float,
        seed: int,
        image_latent: torch.Tensor | None = None,
        i2v_stability: bool = False,
        callback: Callable[[int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Denoised scaled latents (1, C, T, h, w). `text` holds 1 row, or 2 (cond, uncond) with CFG."""
        ratio = self.vae.config.spatial_ratio
        channels = self.transformer.config.out_channels
        shape = (1, channels, (frames - 1) // 4 + 1, height // ratio, width // ratio)
        noise = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)
        if image_latent is not None and i2v_stability:
            repeated = image_latent.float().cpu().expand(-1, -1, shape[2], -1, -1)
            noise = STABILITY_NOISE * noise + (1 - STABILITY_NOISE) * repeated
        noise = noise.to(self.device, self.dtype)
        use_cfg = cfg_scale > 1.0
        rows = 2 if use_cfg else 1
        guidance_in = (
            torch.full((rows,), guidance * 1000.0, device=self.device)
            if self.transformer.config.guidance_embed
            else None
        )
        first = image_latent.to(self.device, self.dtype) if image_latent is not None else None
        first_in = first.expand(rows, -1, -1, -1, -1) if first is not None else None

        def model_fn(x: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
            x_in = x.expand(rows, -1, -1, -1, -1)
            pred = self.transformer(
                x_in,
                timestep.expand(rows),
                text.states,
                text.mask,
                text.pooled,
                guidance=guidance_in,
                first_frame_clean=first_in,
            )
            if not use_cfg:
                return pred
            cond, uncond = pred.float().chunk(2)
            return (uncond + cfg_scale * (cond - uncond)).to(x.dtype)

        pin = first if self.image_condition == "token_replace" else None
        sta, dense_steps = self.tile_attention, self.config.sta_dense_steps
        if self.transformer.step_cache is not None:
            self.transformer.step_cache.start(steps)
        if sta is not None:
            sta.active = dense_steps == 0

        def on_step(i: int, x: torch.Tensor) -> None:
            if sta is not None:
                sta.active = i + 1 >= dense_steps  # dense for the first `dense_steps` steps
            if callback is not None:
                callback(i, x)

        with self._stage(self.transformer):
            return euler_sample(model_fn, noise, steps, shift=shift, first_frame_clean=pin, callback=on_step)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents (1, C, T, h, w) -> video (1, 3, F, H, W) in [-1, 1] (tiled per the config)."""
        _, _, t, h, w = latents.shape
        ratio = self.vae.config.spatial_ratio
        tiled = self.vae_tiled(h * ratio, w * ratio, 4 * (t - 1) + 1)
        with self._stage(self.vae):
            return self.vae.decode(
                (latents / self.vae.scaling_factor).to(self.device, self.dtype), tiled=tiled
            )

    def generate(
        self,
        prompt: str,
        settings: GenerationSettings,
        image: ImageInput | None = None,
        progress: ProgressFn | None = None,
    ) -> Video:
        """One video for `prompt` (T2V) or `prompt` + `image` (I2V).

        `prompt` and `settings` come checked from `serving.generate` (`validate_prompt`,
        `GenerationSettings.checked`); see it for the contract. Only what needs the model is
        checked here: an image for a text-to-video-only model.
        """
        if image is not None and self.image_condition is None:
            raise InvalidRequestError(
                f"model {self.model_version} is text-to-video only (no image conditioning); drop the image"
            )
        assert settings.shift is not None, "settings must come from GenerationSettings.checked"
        fit = self.fit_prompt(prompt)
        negative_fit = (
            fit_prompt(self.text_encoder, settings.negative_prompt) if settings.negative_prompt else None
        )
        seed = (
            int(settings.seed) if settings.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item())
        )
        timings: dict[str, float] = {}

        start = time.perf_counter()
        prompts = [fit.text] + (
            [negative_fit.text if negative_fit else ""] if settings.cfg_scale > 1.0 else []
        )
        text = self.encode_text(prompts)
        image_latent = (
            self._image_latent(image, settings.height, settings.width) if image is not None else None
        )
        timings["encode_s"] = time.perf_counter() - start

        def on_step(i: int, _x: torch.Tensor) -> None:
            if progress is not None:
                progress(i + 1, settings.steps)

        start = time.perf_counter()
        latents = self.sample_latents(
            text, height=settings.height, width=settings.width, frames=settings.frames, steps=settings.steps, shift=settings.shift,
            guidance=settings.guidance, cfg_scale=settings.cfg_scale, seed=seed, image_latent=image_latent,
            i2v_stability=settings.i2v_stability, callback=on_step,
        )  # fmt: skip
        timings["denoise_s"] = time.perf_counter() - start
        start = time.perf_counter()
        pixels = frames_to_uint8(self.decode(latents))
        timings["decode_s"] = time.perf_counter() - start
        metadata: dict[str, Any] = {
            "model_version": self.model_version,
            "model_reference": self.source.reference,
            **{k: v for k, v in self.source.details.items() if v is not None},
            "mode": "i2v" if image is not None else "t2v",
            "loras": [{**info, "mode": self.lora_state[1]} for info in self.lora_info],
            "prompt": fit.text,
            "prompt_truncated": fit.truncated,
            "negative_prompt": settings.negative_prompt,
            "seed": seed,
            "height": settings.height,
            "width": settings.width,
            "frames": settings.frames,
            "steps": settings.steps,
            "shift": settings.shift,
            # None when the model has no guidance embedding (the value was not used).
            "guidance": settings.guidance if self.transformer.config.guidance_embed else None,
            "cfg_scale": settings.cfg_scale,
            "i2v_stability": bool(settings.i2v_stability and image is not None),
            "device": str(self.device),
            "dtype": self.config.dtype,
            "vae_tiled": self.vae_tiled(settings.height, settings.width, settings.frames),
            **{k: round(v, 4) for k, v in timings.items()},
            **self._speed_switches(),
        }
        if fit.truncated:
            metadata["prompt_notice"] = fit.notice()
        return Video(frames=pixels, fps=self.fps, metadata=metadata)
