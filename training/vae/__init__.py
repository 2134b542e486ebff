"""Training of the causal 3D VAE (loss, discriminator, curriculum, tiling fine-tune)."""
