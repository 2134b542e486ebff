"""VideoFoundry `serving` package."""
