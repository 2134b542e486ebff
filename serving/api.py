"""The one inference entry point: `generate(prompt, image=None, ...) -> Video`, over a cached pipeline.

The CLI, the Gradio demo and the evaluation generations all call `generate` (or `load_pipeline` and
`Pipeline.generate`). Loaded pipelines are cached by (weights identity, serving config), and only
the most recent one is kept, because a 13B pipeline fills a GPU. A registry alias is re-resolved on
every call (one registry query), so moving `champion` switches the demo to the new version on its
next request.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from serving.config import ServingConfig
from serving.limits import GenerationSettings, validate_prompt
from serving.lora import LoRAMode, LoRASpec, resolve_lora
from serving.pipeline import ImageInput, Pipeline, ProgressFn
from serving.prompt_rewrite import rewrite_prompt
from serving.references import DEFAULT_REGISTERED_MODEL, ModelSource, resolve_reference
from serving.video import Video

_lock = threading.Lock()
_cached: tuple[tuple[str, ServingConfig], Pipeline] | None = None


def load_pipeline(
    model: str | None = None,
    *,
    config: ServingConfig | None = None,
    tracking_uri: str | None = None,
    registered_model: str = DEFAULT_REGISTERED_MODEL,
    loras: Sequence[LoRASpec] = (),
    lora_mode: LoRAMode = "adapter",
) -> Pipeline:
    """The pipeline `model` names (see serving.references), loading it unless it is the cached one,
    with `loras` applied in `lora_mode` (serving.lora; adapters are swapped on the cached pipeline)."""
    global _cached
    config = config or ServingConfig()
    source: ModelSource = resolve_reference(
        model, tracking_uri=tracking_uri, cache_dir=config.cache_dir, registered_model=registered_model
    )
    files = tuple((resolve_lora(s.reference, tracking_uri, config.cache_dir), s.scale) for s in loras)
    key = (source.key, config)
    with _lock:
        pipeline = _cached[1] if _cached is not None and _cached[0] == key else None
        if pipeline is not None and pipeline.lora_merged and pipeline.lora_state != (files, lora_mode):
            pipeline = None  # merged LoRAs changed its weights: load the base again
        if pipeline is None:
            _cached = None  # drop the old pipeline before loading the next (one model in memory)
            pipeline = Pipeline.load(source, config)
            _cached = (key, pipeline)
        if pipeline.lora_state != (files, lora_mode):
            pipeline.set_loras(list(files), lora_mode)
        return pipeline


def generate(
    prompt: str,
    image: ImageInput | None = None,
    *,
    model: str | None = None,
    config: ServingConfig | None = None,
    tracking_uri: str | None = None,
    registered_model: str = DEFAULT_REGISTERED_MODEL,
    progress: ProgressFn | None = None,
    loras: Sequence[LoRASpec] = (),
    lora_mode: LoRAMode = "adapter",
    rewrite: str | None = None,
    **settings: Any,
) -> Video:
    """Generate one video.

    Args:
        prompt: what to show; cut at a word boundary to the text encoder's token budget (the
            returned metadata says so: `prompt_truncated`, `prompt_notice`).
        image: for I2V, a path / PIL image / (H, W, 3) uint8 array; resized to cover (height, width)
            and centre-cropped; it becomes the first frame (token_replace models only).
        model: a reference (`tiny-random`, `models:/name@alias`, `models:/name/3`, `runs:/…`, a path);
            None = the registry's champion of `registered_model`, else `NoChampionError`.
        config: device, dtype, CPU offload, VAE tile size and request limits (ServingConfig).
        tracking_uri: the MLflow registry (e.g. ``sqlite:///<home>/mlflow.db``).
        progress: called as progress(step, steps) after each denoising step.
        loras: LoRAs (file or models:/videofoundry-lora-… reference, scale) to apply; `lora_mode`
            ``adapter`` or ``merge`` (serving.lora). Scale 0 gives exactly the base output.
        rewrite: ``normal`` or ``master`` rewrites the prompt first with `config.rewrite`'s LLM
            (serving.prompt_rewrite); the metadata keeps `prompt_original` and `prompt_rewrite`
            (the mode). None: the prompt is used as given.
        **settings: the fields of `serving.limits.GenerationSettings` (height, width, frames,
            steps, shift, guidance, cfg_scale, negative_prompt, seed, i2v_stability), or their
            diffusers names: num_frames, num_inference_steps, guidance_scale, true_cfg_scale and
            generator (a torch.Generator the noise seed is drawn from).

    Returns:
        Video with frames (F, H, W, 3) uint8, fps from the bundle, metadata incl. `model_version`.

    Raises:
        InvalidRequestError (bad size/steps/prompt/image, an unknown setting or rewrite mode),
        PromptRewriteError (the rewrite LLM is unreachable or answered with nothing usable),
        ModelReferenceError / NoChampionError, BundleError / CheckpointError (unreadable model files).
    """
    config = config or ServingConfig()
    # Every rule is checked here, once, before a (possibly 13B) model is loaded.
    text = validate_prompt(prompt, config.limits)
    checked = GenerationSettings.from_keywords(settings).checked(config.limits)
    original = text
    if rewrite is not None:
        cap = min(config.rewrite.max_chars, config.limits.max_prompt_chars)
        text = rewrite_prompt(text, rewrite, config.rewrite, max_chars=cap)
    pipeline = load_pipeline(
        model, config=config, tracking_uri=tracking_uri, registered_model=registered_model, loras=loras,
        lora_mode=lora_mode,
    )  # fmt: skip
    video = pipeline.generate(text, checked, image, progress)
    if rewrite is not None:
        video.metadata.update(prompt_original=original, prompt_rewrite=rewrite)
    return video
