"""The CLI's one logging setup: stdlib `logging` to stderr, at a level chosen by -v / -q.

Levels (our packages / everything else):
- default: INFO / WARNING. Our progress notes ("stage sft: resumed at step 40") show; library
  chatter does not.
- `-v`: DEBUG / INFO, records carry time and logger name, and failures print their traceback.
- `-q`: WARNING / ERROR, and tqdm progress bars are off (`TQDM_DISABLE`).

Code logs through `logging.getLogger(__name__)`; nothing but this module configures handlers.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from enum import IntEnum

OUR_PACKAGES = (
    "assets",
    "curation",
    "evaluation",
    "media",
    "model",
    "orchestration",
    "serving",
    "training",
    "ui",
)


class Verbosity(IntEnum):
    QUIET = -1
    NORMAL = 0
    VERBOSE = 1


_LEVELS = {
    Verbosity.QUIET: (logging.WARNING, logging.ERROR),
    Verbosity.NORMAL: (logging.INFO, logging.WARNING),
    Verbosity.VERBOSE: (logging.DEBUG, logging.INFO),
}


@dataclass
class _Installed:
    """What the current command installed (one command at a time per process)."""

    verbosity: Verbosity = Verbosity.NORMAL
    handler: logging.Handler | None = None
    levels_before: dict[str, int] = field(default_factory=dict)  # logger name ("" = root) → level


_state = _Installed()


class _PlainFormatter(logging.Formatter):
    """INFO as the bare message; WARNING and above prefixed with their level, lower case."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno <= logging.INFO else f"{record.levelname.lower()}: {text}"


def configure_logging(verbosity: Verbosity) -> None:
    """Install the CLI's stderr handler on the root logger (replacing one installed before)."""
    ours, others = _LEVELS[verbosity]
    root = logging.getLogger()
    if _state.handler is not None:
        root.removeHandler(_state.handler)
    else:
        _state.levels_before = {name: logging.getLogger(name).level for name in ("", *OUR_PACKAGES)}
    handler = logging.StreamHandler(sys.stderr)
    if verbosity is Verbosity.VERBOSE:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    else:
        handler.setFormatter(_PlainFormatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(others)
    for package in OUR_PACKAGES:
        logging.getLogger(package).setLevel(ours)
    if verbosity is Verbosity.QUIET:
        os.environ["TQDM_DISABLE"] = "1"
    elif _state.verbosity is Verbosity.QUIET:  # a later in-process command is not quiet
        os.environ.pop("TQDM_DISABLE", None)
    _state.verbosity, _state.handler = verbosity, handler


def release_logging() -> None:
    """Undo `configure_logging` once a command is over (an in-process run leaves no handler behind)."""
    if _state.handler is not None:
        logging.getLogger().removeHandler(_state.handler)
    for name, level in _state.levels_before.items():
        logging.getLogger(name).setLevel(level)
    if _state.verbosity is Verbosity.QUIET:
        os.environ.pop("TQDM_DISABLE", None)
    _state.verbosity, _state.handler, _state.levels_before = Verbosity.NORMAL, None, {}


def verbosity() -> Verbosity:
    """The verbosity the current command was started with."""
    return _state.verbosity
