"""VideoFoundry `model` package."""
