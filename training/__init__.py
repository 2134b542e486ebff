"""VideoFoundry `training` package."""
