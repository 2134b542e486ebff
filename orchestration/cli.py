"""Entry point of the `videofoundry` command: imports every module of `orchestration.commands`.

Exit codes and error lines are the app's (orchestration.cli_app), so `python -m orchestration.cli`,
the `videofoundry` script and an in-process `CliRunner` behave the same.
"""

from __future__ import annotations

import importlib
import pkgutil

from model.cuda_allocator import prefer_expandable_segments
from orchestration import commands
from orchestration.cli_app import app
from orchestration.interrupted import exit_on_sigterm

for _module in pkgutil.iter_modules(commands.__path__):
    importlib.import_module(f"{commands.__name__}.{_module.name}")


def main() -> None:
    """Run the CLI on `sys.argv`; exits with 0 ok, 1 runtime failure, 2 bad input or usage."""
    exit_on_sigterm()  # a SIGTERM unwinds: interrupted runs are marked failed, locks released
    prefer_expandable_segments()  # before any CUDA allocation: low-memory paths fragment less
    app(prog_name="videofoundry")


if __name__ == "__main__":
    main()

__all__ = ["app", "main"]
