"""VideoFoundry `assets` package."""
