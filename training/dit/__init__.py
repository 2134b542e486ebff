"""DiT training (SPEC.md §4): latent cache, buckets, flow matching, progressive stages, SFT, DeepSpeed.

Public API:
    DiTTrainConfig.preset("tiny" | "paper"), StageSpec, STAGE_ORDER        (training.dit.config)
    ClipRecord, LatentCache                                                 (training.dit.latent_cache)
    Bucket, BucketSampler, assign_bucket, micro_batch_sizes                 (training.dit.buckets)
    flow_matching_loss                                                      (training.dit.loss)
    zero_config, training_config                                           (training.dit.deepspeed_config)
    prepare_stage, train_stage, run_stage, StagePlan                        (training.dit.stages)
    DiTTrainer, StageTracking, StageResult                                  (training.dit.trainer)
    launch_stage (Ray Train TorchTrainer)                                   (training.dit.launcher)
    python -m training.dit.worker plan.json [--zero-stage 2]                (one rank / one process)
"""
