"""Training of the causal 3D VAE (loss, discriminator, curriculum, tiling fine-tune).

VAETrainConfig.preset("tiny" | "paper"), CurriculumStage                 (training.vae.config)
MediaSampler, clips_from_tier_tables, resolve_media_paths                (training.vae.data)
VAETrainer, load_trained_vae                                             (training.vae.trainer)
train_vae (launch + EMA export), VAEJob, data_fingerprint                (training.vae.run)
"""
