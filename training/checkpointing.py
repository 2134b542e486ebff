"""Atomic training checkpoints: state dicts as safetensors, everything else torch.save'd.

One checkpoint is one directory under `root`:

    root/
      step_000001200/
        <name>.safetensors   one per entry of `tensors` (model, ema, discriminator, …)
        trainer_state.pt     optimizer / grad-scaler / scheduler state, data position, RNG states …
        meta.json            {"step": 1200, "files": [...], "metadata": {...}}
      latest                 text file holding the newest complete directory name

Why this shape: a checkpoint becomes visible only through `os.rename` of a finished temporary
directory and the `latest` pointer only through `os.replace`, so a process killed at any instant
(kill -9 included) leaves either the previous checkpoint or the new one, never a torn one.
Weights in safetensors load without unpickling (safe to share, mmap-able); the trainer state needs
pickling (optimizer state is nested Python) and stays beside it. `keep_last` bounds disk use.

Used by the VAE and DiT trainers; knows nothing about either.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

LATEST = "latest"
TRAINER_STATE = "trainer_state.pt"
META = "meta.json"
_PREFIX = "step_"


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, incomplete or does not hold what was asked for."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: `tensors[name]` is a state dict, `trainer_state` the pickled extras."""

    path: Path
    step: int
    tensors: dict[str, dict[str, torch.Tensor]]
    trainer_state: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _safetensors_ready(state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """CPU, contiguous, no shared storage (safetensors refuses aliases: tied weights are cloned)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"checkpoint '{name}': entry {key!r} is {type(value).__name__}, not a tensor"
            )
        tensor = value.detach().cpu().contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen:
            tensor = tensor.clone()
        seen.add(pointer)
        out[key] = tensor
    return out


def step_dir_name(step: int) -> str:
    return f"{_PREFIX}{step:09d}"


class CheckpointManager:
    """Writes, finds, loads and prunes checkpoints under `root` (see module docstring)."""

    def __init__(self, root: str | Path, keep_last: int = 3) -> None:
        if keep_last < 1:
            raise ValueError(f"CheckpointManager: keep_last must be ≥ 1, got {keep_last}")
        self.root = Path(root)
        self.keep_last = keep_last

    def save(
        self,
        step: int,
        tensors: dict[str, dict[str, torch.Tensor]],
        trainer_state: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        extra_writer: Any = None,
    ) -> Path:
        """Write checkpoint `step` atomically and point `latest` at it; returns its directory.

        `extra_writer(tmp_dir)`, if given, writes more files into the directory before it is
        published (used for DeepSpeed's sharded optimizer state).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / step_dir_name(step)
        tmp = self.root / f".tmp-{step_dir_name(step)}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        files = []
        for name, state in tensors.items():
            path = tmp / f"{name}.safetensors"
            save_file(_safetensors_ready(state, name), str(path), metadata={"step": str(step)})
            _fsync_file(path)
            files.append(path.name)
        torch.save(trainer_state, tmp / TRAINER_STATE)
        _fsync_file(tmp / TRAINER_STATE)
        if extra_writer is not None:
            extra_writer(tmp)
        meta = {"step": step, "files": files, "metadata": metadata or {}}
        (tmp / META).write_text(json.dumps(meta, indent=2, default=str))
        _fsync_file(tmp / META)
        _fsync_dir(tmp)
        if final.exists():  # re-saving a step (e.g. after a resume): replace the old copy
            stale = self.root / f".stale-{final.name}-{os.getpid()}"
            os.rename(final, stale)
            shutil.rmtree(stale)
        os.rename(tmp, final)
        self._write_latest(final.name)
        _fsync_dir(self.root)
        self.prune()
        return final

    def _write_latest(self, name: str) -> None:
        tmp = self.root / f".{LATEST}.{os.getpid()}.tmp"
        tmp.write_text(name + "\n")
        _fsync_file(tmp)
        os.replace(tmp, self.root / LATEST)

    def checkpoints(self) -> list[Path]:
        """Complete checkpoint directories, oldest first (temporary directories are ignored)."""
        if not self.root.is_dir():
            return []
        found = [
            p
            for p in self.root.iterdir()
            if p.is_dir() and p.name.startswith(_PREFIX) and (p / META).is_file()
        ]
        return sorted(found, key=lambda p: int(p.name.removeprefix(_PREFIX)))

    def latest(self) -> Path | None:
        """The directory `latest` names, or the newest complete one if the pointer is missing/stale."""
        pointer = self.root / LATEST
        if pointer.is_file():
            candidate = self.root / pointer.read_text().strip()
            if (candidate / META).is_file():
                return candidate
        complete = self.checkpoints()
        return complete[-1] if complete else None

    def prune(self) -> None:
        """Delete all but the newest `keep_last` checkpoints and leftover temporary directories."""
        complete = self.checkpoints()
        for old in complete[: -self.keep_last]:
            shutil.rmtree(old, ignore_errors=True)
        for leftover in self.root.glob(".tmp-*"):
            if not leftover.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(leftover, ignore_errors=True)

    def load(self, path: str | Path | None = None, map_location: str | torch.device = "cpu") -> Checkpoint:
        """Load `path` (a checkpoint directory) or, by default, the latest one under `root`."""
        directory = Path(path) if path is not None else self.latest()
        if directory is None:
            raise CheckpointError(f"no checkpoint under {self.root}")
        return load_checkpoint(directory, map_location)


def load_checkpoint(directory: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load one checkpoint directory written by `CheckpointManager.save`."""
    directory = Path(directory)
    meta_path = directory / META
    if not meta_path.is_file():
        raise CheckpointError(f"{directory} is not a complete checkpoint (no {META})")
    meta = json.loads(meta_path.read_text())
    device = str(map_location)
    tensors = {Path(f).stem: load_file(str(directory / f), device=device) for f in meta["files"]}
    trainer_state = torch.load(directory / TRAINER_STATE, map_location=map_location, weights_only=False)
    return Checkpoint(directory, int(meta["step"]), tensors, trainer_state, meta.get("metadata", {}))


def load_state_dict(directory: str | Path, name: str, map_location: str = "cpu") -> dict[str, torch.Tensor]:
    """Just one state dict (e.g. `ema`) of a checkpoint directory, without the trainer state."""
    path = Path(directory) / f"{name}.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{directory} holds no '{name}' weights ({path.name} missing)")
    return load_file(str(path), device=map_location)
