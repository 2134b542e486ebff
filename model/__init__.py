"""VideoFoundry `model`: single-device PyTorch for HunyuanVideo (SPEC.md §3). Imports nothing of ours.

Public API (stable; other packages build on exactly this):

model.presets
    Every component config of the repository (here and in the other packages) is a `PresetConfig`:
    Config.preset(name, **overrides) -> a fresh config from the table Config.PRESETS (name -> config);
    config.replace(**changes) -> a copy (a mapping for a nested-config field updates only its keys);
    PresetError (a ValueError) names the known presets / fields.

model.vae
    VAEConfig(...); VAEConfig.preset("tiny" | "small" | "884-16c-hy", **overrides)
        norm_stats="clip" (released: GroupNorm over the clip) | "frame" (strictly causal)
    CausalVAE3D(config)
        .encode(video, tiled=False) -> DiagonalGaussian   video (B, 3, 4n+1, H, W) in [-1, 1], H, W % 8 == 0
        .decode(z, tiled=False) -> video                  z (B, 16, n+1, H/8, W/8), unscaled
        .tiled_encode(video, tiling=None) / .tiled_decode(z, tiling=None)
        .tiling: TilingConfig(tile_size=256 px, tile_frames=64, overlap=0.25)   (model.vae_tiling)
            TilingConfig.preset("official" | "low-memory" | "balanced" | "fast"); in model.causal_conv
            set_lean_inference(False) turns off the chunked no-grad path (more memory, slower on
            H100) and set_channels_last(True | False | None) picks its layout (None: channels-last on CUDA)
        .scaling_factor (0.476986): the DiT works on z * scaling_factor
    DiagonalGaussian: .mean, .std, .logvar, .sample(generator), .mode(), .kl() -> (B,)

model.dit
    DiTConfig(...); DiTConfig.preset("tiny" | "small" | "base" | "bench-4x8" | "hunyuan-13b", **overrides)
        (model.dit_config; image_condition=None | "token_replace" | "latent_concat")
    HunyuanDiT(config)
        .forward(x, t, text_states, text_mask, text_pooled, guidance=None, first_frame_clean=None)
            x (B, 16, T, H, W); t (B,) in [0, 1000] (1000 = noise); text_states (B, L, D_t);
            text_mask (B, L) bool, right-padded; text_pooled (B, D_p); guidance (B,) = scale*1000
            -> (B, 16, T, H, W) = d x / d sigma (see model.flow)
        .gradient_checkpointing = True  (per block, during training)
        .attention_fn (per block) / .token_sharding: hooks for sequence parallelism (training.parallel)
        .set_attention_backend("sdpa" | "flash" | "reference")
    compile_blocks(model)  regional torch.compile of each block (H100: train step 1.19x, 13B step 1.08x)

model.text
    build_text_encoder("tiny-random" | "offline-default" | TextEncoderConfig) -> TextEncoder
    TextEncoder.encode(prompts) -> TextEncoding(states, mask, pooled)   (a NamedTuple)
    TextEncoderConfig.preset("tiny-random") (D_t 32, D_p 16 = DiT "tiny"), "offline-default" (576 / 384 =
    DiT "small", "base"), "official" with llm_path=, pooled_path= (4096 / 768 = "hunyuan-13b")
    The GGUF LLM is dequantised once into a cache (TextEncoderConfig.cache_dir, default
    $XDG_CACHE_HOME or ~/.cache /videofoundry/gguf, ~0.5 GB); later loads take seconds.

model.flow
    interpolate(noise, data, t), velocity_target(noise, data)       paper convention, t = 1 is data
    model_timestep(t) = 1000 (1 - t), model_target(noise, data) = noise - data   released DiT convention
    sample_timesteps(batch, mean, std, shift, generator), shift_timesteps(sigma, shift), sigma_schedule
    euler_sample(model_fn, noise, num_steps, shift=7.0, first_frame_clean=None, callback=None)

model.checkpoints
    load_transformer(path, config=None, dtype=None, device=None) -> HunyuanDiT
    load_vae(path, config=None, dtype=None, device=None) -> CausalVAE3D
        path: our directory | official .pt ("module" key) / .safetensors | diffusers directory
    save_model(model, directory, max_shard_bytes=5 GiB)  our format: model.safetensors (official key
        names; sharded + model.safetensors.index.json above the limit) + config.json
    write_safetensors / read_safetensors(directory, stem)   one file or HF-style shards + index
    CheckpointError

model.diffusers_export
    save_diffusers_transformer / save_diffusers_vae / save_scheduler_config: the folders diffusers'
        from_pretrained loads; save_pipeline(..., layout="diffusers") writes a whole bundle that way
        (no model_index.json: our text encoders have no diffusers class)

model.bundle
    save_pipeline(directory, dit, vae, text_encoder, fps=, defaults=, info=, replace=True,
                  layout="videofoundry" | "diffusers", max_shard_bytes=)
    read_spec(path, dit_text_widths) -> BundleSpec; is_bundle(path); BundleError
        the pipeline bundle (pipeline.json + transformer/ + vae/) training writes and serving reads

model.attention
    attention(q, k, v, seq_lens=None, backend="sdpa")  (B, S, H, Dh); per-sample real prefixes, no masks

Also here (other owners): model.mobilenet, model.perceptual.
"""
