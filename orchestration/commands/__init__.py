"""CLI command modules; each adds commands to `orchestration.cli_app.app`."""
