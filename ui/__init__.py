"""VideoFoundry `ui` package."""
