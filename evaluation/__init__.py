"""VideoFoundry `evaluation` package."""
