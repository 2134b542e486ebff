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

`save_training_checkpoint` / `load_training_checkpoint` are what both trainers call: the weights
of every wrapped model and the EMA as safetensors, the optimizer state as the backend keeps it
(plain state dicts in `trainer_state.pt`, or the backend's own sharded files in a sub-folder named
by `Backend.sharded_state_dir`, e.g. `deepspeed/`), and the trainer's extra state. They know the
backend interface and nothing about either trainer.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from media.processes import process_alive
from training.backends import Backend, SteppedModel
from training.ema import EMA

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


# Names of a writer's temporaries, each naming its writer as `<pid>@<host>` (see `_WRITER`); names
# of older writers end in the pid alone.
_OWNER = r"(\d+(?:@[^/@]+?)?)"
_TEMPORARY = re.compile(
    rf"\.(?:tmp-{_PREFIX}\d+-{_OWNER}|{LATEST}\.{_OWNER}\.tmp|stale-{_PREFIX}\d+-{_OWNER})"
)
_log = logging.getLogger(__name__)


def _writer() -> str:
    """This process as a temporary's owner: `<pid>@<host>` (checkpoint folders may be shared by hosts)."""
    return f"{os.getpid()}@{socket.gethostname()}"


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
        self.remove_stale_temporaries()

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete temporaries a killed writer left (`.tmp-<step>-<pid>@<host>`,
        `.latest.<pid>@<host>.tmp`, `.stale-<step>-<pid>@<host>`) whose writer is a process of this
        host that is gone; returns what was removed.

        Runs when a manager is made, i.e. on every start. A live pid's files are kept: another
        process may be writing them right now. So are another host's (the root may be shared
        storage; its pid means nothing here) and those whose name gives no host (written before
        names had one): each is logged as left alone.
        """
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        for path in self.root.iterdir():
            match = _TEMPORARY.fullmatch(path.name)
            if match is None:
                continue
            pid, _, host = next(g for g in match.groups() if g).partition("@")
            if host != socket.gethostname():
                whose = f"host {host}'s" if host else "a writer of unknown host's"
                _log.info("checkpoint temporary %s is %s, not this host's: left alone", path, whose)
                continue
            if process_alive(int(pid)):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
        return removed

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
        tmp = self.root / f".tmp-{step_dir_name(step)}-{_writer()}"
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
            stale = self.root / f".stale-{final.name}-{_writer()}"
            os.rename(final, stale)
            shutil.rmtree(stale)
        os.rename(tmp, final)
        self._write_latest(final.name)
        _fsync_dir(self.root)
        self.prune()
        return final

    def _write_latest(self, name: str) -> None:
        tmp = self.root / f".{LATEST}.{_writer()}.tmp"
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
        """Delete all but the newest `keep_last` checkpoints and temporaries of dead writers."""
        complete = self.checkpoints()
        for old in complete[: -self.keep_last]:
            shutil.rmtree(old, ignore_errors=True)
        self.remove_stale_temporaries()

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


def read_meta(directory: str | Path) -> dict[str, Any]:
    """`meta.json` of a checkpoint directory ({"step", "files", "metadata"}) without loading tensors."""
    path = Path(directory) / META
    if not path.is_file():
        raise CheckpointError(f"{directory} is not a complete checkpoint (no {META})")
    return json.loads(path.read_text())


def save_training_checkpoint(
    manager: CheckpointManager,
    backend: Backend,
    step: int,
    models: dict[str, SteppedModel],
    ema: EMA,
    trainer_state: dict[str, Any],
    metadata: dict[str, Any],
    extra_writer: Any = None,
    ema_full: dict[str, torch.Tensor] | None = None,
) -> Path | None:
    """Collective: every rank writes its backend-owned shards, rank 0 publishes `step_<k>/`.

    Tensors: `<name>.safetensors` per model and `ema.safetensors`, whole (gathered from every rank
    when the backend shards parameters; `ema_full` passes an EMA already gathered); `trainer_state`
    gains `optim` (per-model optimizer state dicts, empty or scheduler-only when sharded) and
    `ema_updates`. A partitioning backend also writes the models, their optimizer state and the EMA
    shards through its `save_sharded` (torch.distributed.checkpoint for FSDP): what a resume reads,
    on any world size (in the background while the whole weights are gathered, where the backend
    can: `Backend.begin_save_sharded`). The shards are written into a staging folder and moved into
    the checkpoint before it is published, so a kill at any point leaves `latest` on the previous checkpoint.
    `extra_writer(tmp)` adds files before publication. Returns the directory on rank 0, None elsewhere.
    """
    staging = manager.root / f".staging-{step:09d}"
    if backend.is_main and staging.exists():  # left by a save that was killed
        shutil.rmtree(staging)
    backend.barrier()
    extra = {"ema": ema.state_dict()} if backend.partitions_parameters else None
    finish_shards = backend.begin_save_sharded(models, staging, extra)  # may write in the background
    tensors = {name: backend.full_state_dict(model.module.state_dict()) for name, model in models.items()}
    tensors["ema"] = ema_full if ema_full is not None else backend.full_state_dict(ema.state_dict())
    sharded = finish_shards()  # every rank's shards are on disk before anything is published
    path = None
    if backend.is_main:
        state = {
            **trainer_state,
            "optim": {name: model.state_dict() for name, model in models.items()},
            "ema_updates": ema.updates,
            "sharded_state_dir": backend.sharded_state_dir,
        }

        def write_extras(tmp: Path) -> None:
            if sharded:
                assert backend.sharded_state_dir is not None
                staging.rename(tmp / backend.sharded_state_dir)
            if extra_writer is not None:
                extra_writer(tmp)

        path = manager.save(step, tensors, state, metadata, extra_writer=write_extras)
    backend.barrier()
    return path


def load_training_checkpoint(
    manager: CheckpointManager,
    backend: Backend,
    models: dict[str, SteppedModel],
    ema: EMA,
    directory: Path | None = None,
) -> Checkpoint | None:
    """Restore weights, EMA and optimizer state from `directory` (default: the latest); None if none.

    A partitioning backend reads weights, optimizer state and EMA from its shards (resharded to
    this run's world size); the others load the whole safetensors weights.

    Raises CheckpointError when the optimizer state was written by another kind of backend
    (DeepSpeed or FSDP shards resumed without them, or the reverse).
    """
    target = directory or manager.latest()
    if target is None:
        return None
    checkpoint = manager.load(target, map_location="cpu")
    written_by = checkpoint.trainer_state.get("sharded_state_dir")
    if written_by != backend.sharded_state_dir:
        raise CheckpointError(
            f"{target} holds optimizer state as {written_by or 'plain state dicts'} but this run's "
            f"{type(backend).__name__} keeps it as {backend.sharded_state_dir or 'plain state dicts'}; "
            "resume with the backend (zero_stage / sharding) that wrote it"
        )
    updates = int(checkpoint.trainer_state["ema_updates"])
    if backend.partitions_parameters:
        assert backend.sharded_state_dir is not None
        backend.load_sharded(models, target / backend.sharded_state_dir, {"ema": ema.state_dict()})
        ema.updates = updates
    else:
        for name, model in models.items():
            model.module.load_state_dict(checkpoint.tensors[name])
        ema.load_state_dict(checkpoint.tensors["ema"], updates)
        if backend.sharded_state_dir:
            backend.load_sharded(models, target / backend.sharded_state_dir)
    for name, model in models.items():
        model.load_state_dict(checkpoint.trainer_state["optim"][name])
    return checkpoint


def load_state_dict(directory: str | Path, name: str, map_location: str = "cpu") -> dict[str, torch.Tensor]:
    """Just one state dict (e.g. `ema`) of a checkpoint directory, without the trainer state."""
    path = Path(directory) / f"{name}.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{directory} holds no '{name}' weights ({path.name} missing)")
    return load_file(str(path), device=map_location)
