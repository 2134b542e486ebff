"""VideoFoundry `orchestration` package."""
