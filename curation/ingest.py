"""Raw video ingest: every entry under `raw/<batch>/` listed, videos fingerprinted by content hash.

A batch is a sub-folder of the workspace's `raw/` (one ingest drop). The `raw_videos` table has one
row per entry of the batch folder (recursively; plain sub-folders are walked, not listed):

- a readable regular file with a video extension gets its SHA-256, size and mtime, and `skip_reason`
  null. The hash is the stable identity, so the same file dropped twice (or renamed) is recognised
  downstream, and the `clips` stage judges its content (quarantining it with its reason);
- anything else gets `skip_reason` saying why it is not curated — a dangling symlink, a folder
  named like a video, a FIFO or device, a file that cannot be read (permission denied), a file
  whose extension is not a video's — and goes to the quarantine table at stage `ingest`.

So no entry vanishes silently, and one unreadable file never aborts the batch.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".m4v", ".ts"})

RAW_VIDEOS_SCHEMA = pa.schema(
    [
        pa.field("batch", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("relative_path", pa.string(), nullable=False),
        pa.field("sha256", pa.string()),  # null for a skipped entry
        pa.field("size_bytes", pa.int64()),  # null where the entry cannot be stat'ed
        pa.field("mtime", pa.float64()),
        pa.field("skip_reason", pa.string()),  # why the entry is not curated; null for a video to curate
    ]
)


class IngestError(ValueError):
    """An ingest batch folder is missing or is not a folder."""


def sha256_of(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def list_batches(raw_dir: Path) -> list[str]:
    """Names of the ingest batches (sub-folders of `raw_dir`), sorted."""
    if not raw_dir.is_dir():
        return []
    return sorted(p.name for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


@dataclass(frozen=True)
class _Entry:
    """One entry of a batch folder: a candidate video (`reason` None) or a skipped one."""

    path: Path
    reason: str | None
    stat: os.stat_result | None


def _file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _judge(path: Path) -> _Entry:
    """Whether `path` (not a plain folder) is a candidate video, from its metadata only (no read)."""
    try:
        info = path.stat()  # follows symlinks
    except FileNotFoundError:
        target = os.readlink(path) if path.is_symlink() else "?"
        return _Entry(path, f"dangling symlink (to {target})", None)
    except OSError as error:
        return _Entry(path, f"unreadable: cannot stat ({error.strerror or error})", None)
    if stat.S_ISDIR(info.st_mode):
        return _Entry(path, "a folder named like a video file, not a video", info)
    if not stat.S_ISREG(info.st_mode):
        # Never opened: reading a FIFO blocks until a writer comes.
        return _Entry(path, f"not a media file: {_file_kind(info.st_mode)}", info)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        return _Entry(path, f"not a media file (extension {path.suffix or 'none'!r} is not a video's)", info)
    return _Entry(path, None, info)


def _entries(batch_dir: Path) -> list[_Entry]:
    """Every entry under `batch_dir`, sorted by path; folders (linked ones too) are walked once each."""
    entries: list[_Entry] = []
    seen_dirs: set[str] = {os.path.realpath(batch_dir)}

    def walk_error(error: OSError) -> None:
        entries.append(_Entry(Path(error.filename), f"unreadable folder ({error.strerror or error})", None))

    for folder, dirs, files in os.walk(batch_dir, followlinks=True, onerror=walk_error):
        kept_dirs = []
        for name in sorted(dirs):
            path = Path(folder) / name
            real = os.path.realpath(path)
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                entries.append(_judge(path))  # listed as skipped; its content is walked too
            if real in seen_dirs:
                if path.is_symlink():
                    entries.append(_Entry(path, f"symlink to a folder already listed ({real})", None))
                continue
            seen_dirs.add(real)
            kept_dirs.append(name)
        dirs[:] = kept_dirs
        entries += [_judge(Path(folder) / name) for name in files]
    return sorted(entries, key=lambda e: str(e.path))


def scan_batch(raw_dir: Path, batch: str, progress: bool = True) -> pa.Table:
    """One `RAW_VIDEOS_SCHEMA` row per entry of `raw_dir/batch` (see the module docstring).

    Video files are listed, not judged by content: a broken one gets a row here and is
    quarantined by the `clips` stage with its reason. A file that cannot be read (permission
    denied, an I/O error) gets a skip row instead of raising.
    """
    batch_dir = raw_dir / batch
    if not batch_dir.is_dir():
        raise IngestError(f"ingest batch {batch_dir} does not exist or is not a folder")
    rows: dict[str, list] = {name: [] for name in RAW_VIDEOS_SCHEMA.names}
    for entry in tqdm(_entries(batch_dir), desc=f"hash {batch}", unit="file", disable=not progress):
        digest, reason = None, entry.reason
        if reason is None:
            try:
                digest = sha256_of(entry.path)
            except OSError as error:
                reason = f"unreadable: {error.strerror or error}"
        rows["batch"].append(batch)
        rows["path"].append(str(entry.path))
        rows["relative_path"].append(str(entry.path.relative_to(batch_dir)))
        rows["sha256"].append(digest)
        rows["size_bytes"].append(entry.stat.st_size if entry.stat else None)
        rows["mtime"].append(entry.stat.st_mtime if entry.stat else None)
        rows["skip_reason"].append(reason)
    return pa.table(rows, schema=RAW_VIDEOS_SCHEMA)


def videos_to_curate(raw_videos: pa.Table) -> int:
    """How many rows of a `raw_videos` table are video files to curate (not skipped)."""
    return raw_videos.column("skip_reason").null_count if raw_videos.num_rows else 0
