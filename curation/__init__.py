"""VideoFoundry `curation` package."""
