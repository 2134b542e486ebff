"""VideoFoundry `training`: one trainer shape for the VAE and the DiT. Imports `media` and `model` only.

Shared pieces, one name each:

    training.backends          Backend (one process), DDPBackend, make_backend, OptimizerSettings,
                               refuse_partitioned_weights
    training.deepspeed_backend DeepSpeedBackend (ZeRO 0-3; engine config from training.deepspeed_config)
    training.fsdp_backend      FSDPBackend (FSDP2 zero2 / full sharding on a dp x sp mesh; DCP shards)
    training.memory_plan       plan_training: per-GPU memory of each sharding x SP x checkpointing layout
    training.checkpointing     CheckpointManager (atomic step_<k>/ folders), save_training_checkpoint /
                               load_training_checkpoint (weights + EMA + the backend's optimizer state)
    training.ema               EMA
    training.tracking          TrackingSettings (where a run logs), RunTracker (one MLflow run)
    training.results           TrainResult (what a run did; rebuilt from Ray Train's metrics)
    training.launch            launch(job, LaunchSettings): in this process or on N Ray Train workers

Each model has the same layout: `<model>/config.py` (typed config and presets), `<model>/trainer.py`
(the loop, written against `Backend`), `<model>/run.py` (the job the launcher runs and the one entry
function: `training.vae.run.train_vae`, `training.dit.run.train_dit_stage`).
training.parallel applies sequence parallelism to the DiT from outside the model.
"""
