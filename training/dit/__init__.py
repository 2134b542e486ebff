"""DiT training (SPEC.md §4): latent cache, buckets, flow matching, progressive stages, SFT.

Public API:
    DiTTrainConfig.preset("tiny" | "paper"), StageSpec, STAGE_ORDER        (training.dit.config)
        STAGE_ORDER is the one list of stages; the CLI and the Dagster stage assets derive from it.
    ClipRecord, LatentCache                                                 (training.dit.latent_cache)
    load_clip_list, save_clip_list (JSON clip lists)                        (training.dit.records)
    Bucket, BucketSampler, assign_bucket, micro_batch_sizes                 (training.dit.buckets)
    flow_matching_loss                                                      (training.dit.loss)
    make_vae, make_text_encoder, text_encoder_config                        (training.dit.encoders)
    prepare_stage, train_stage, finished_stage, StagePlan, cache_latents    (training.dit.stages)
    DiTTrainer                                                              (training.dit.trainer)
    train_dit_stage (plan + launch), StageJob, records_fingerprint          (training.dit.run)
"""
