"""The one inference entry point: `generate(prompt, image=None, ...) -> Video`, over a cached pipeline.

The CLI, the Gradio demo and the evaluation generations all call `generate` (or `load_pipeline` and
`Pipeline.generate`). Loaded pipelines are cached by (weights identity, serving config), and only
the most recent one is kept, because a 13B pipeline fills a GPU. A registry alias is re-resolved on
every call (one registry query), so moving `champion` switches the demo to the new version on its
next request.
"""

from __future__ import annotations

import threading

from serving.config import ServingConfig
from serving.limits import validate_prompt, validate_size
from serving.pipeline import ImageInput, Pipeline, ProgressFn
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
) -> Pipeline:
    """The pipeline `model` names (see serving.references), loading it unless it is the cached one."""
    global _cached
    config = config or ServingConfig()
    source: ModelSource = resolve_reference(
        model, tracking_uri=tracking_uri, cache_dir=config.cache_dir, registered_model=registered_model
    )
    key = (source.key, config)
    with _lock:
        if _cached is not None and _cached[0] == key:
            return _cached[1]
        _cached = None  # drop the old pipeline before loading the next (one model in memory)
        pipeline = Pipeline.load(source, config)
        _cached = (key, pipeline)
        return pipeline


def generate(
    prompt: str,
    image: ImageInput | None = None,
    *,
    model: str | None = None,
    config: ServingConfig | None = None,
    tracking_uri: str | None = None,
    registered_model: str = DEFAULT_REGISTERED_MODEL,
    height: int = 64,
    width: int = 64,
    frames: int = 9,
    steps: int = 50,
    shift: float | None = None,
    guidance: float = 6.0,
    cfg_scale: float = 1.0,
    negative_prompt: str = "",
    seed: int | None = None,
    i2v_stability: bool = False,
    progress: ProgressFn | None = None,
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
        height, width: pixels, multiples of 16 within the profile's limits.
        frames: 4n + 1 within the profile's limits.
        steps: Euler steps; shift: schedule shift (None: 7 for ≥ 20 steps, else 17).
        guidance: embedded (distilled) guidance scale, fed as guidance·1000 to models that embed it.
        cfg_scale: real classifier-free guidance against `negative_prompt`; 1 = off (one DiT pass
            per step), > 1 doubles the DiT batch.
        seed: noise seed (CPU generator); same seed + same device + same settings = same video.
            None draws one and records it in the metadata.
        i2v_stability: the released I2V sampler's stability start (image latent mixed into the noise).
        progress: called as progress(step, steps) after each denoising step.

    Returns:
        Video with frames (F, H, W, 3) uint8, fps from the bundle, metadata incl. `model_version`.

    Raises:
        InvalidRequestError (bad size/steps/prompt/image), ModelReferenceError / NoChampionError,
        BundleError / CheckpointError (unreadable model files).
    """
    config = config or ServingConfig()
    # Reject bad sizes before a (possibly 13B) model is loaded.
    validate_size(height, width, frames, config.limits)
    validate_prompt(prompt, config.limits)
    pipeline = load_pipeline(
        model, config=config, tracking_uri=tracking_uri, registered_model=registered_model
    )
    return pipeline.generate(
        prompt, image, height=height, width=width, frames=frames, steps=steps, shift=shift, guidance=guidance,
        cfg_scale=cfg_scale, negative_prompt=negative_prompt, seed=seed, i2v_stability=i2v_stability,
        progress=progress,
    )  # fmt: skip
