"""Raw video ingest: files under `raw/<batch>/` fingerprinted by content hash.

A batch is a sub-folder of the workspace's `raw/` (one ingest drop). The `raw_videos` table has one
row per file; the SHA-256 of the content is the stable identity, so the same file dropped twice (or
renamed) is recognised downstream.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".m4v", ".ts"})

RAW_VIDEOS_SCHEMA = pa.schema(
    [
        pa.field("batch", pa.string(), nullable=False),
        pa.field("path", pa.string(), nullable=False),
        pa.field("relative_path", pa.string(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("size_bytes", pa.int64(), nullable=False),
        pa.field("mtime", pa.float64(), nullable=False),
    ]
)


class IngestError(ValueError):
    """An ingest batch folder is missing or holds no videos."""


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


def scan_batch(raw_dir: Path, batch: str, progress: bool = True) -> pa.Table:
    """Fingerprint every video-extension file of `raw_dir/batch` (recursively).

    Files are listed, not judged: a broken file gets a row here and is quarantined by the `clips`
    stage with its reason.
    """
    batch_dir = raw_dir / batch
    if not batch_dir.is_dir():
        raise IngestError(f"ingest batch {batch_dir} does not exist")
    files = sorted(p for p in batch_dir.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    rows: dict[str, list] = {name: [] for name in RAW_VIDEOS_SCHEMA.names}
    for path in tqdm(files, desc=f"hash {batch}", unit="file", disable=not progress):
        stat = path.stat()
        rows["batch"].append(batch)
        rows["path"].append(str(path))
        rows["relative_path"].append(str(path.relative_to(batch_dir)))
        rows["sha256"].append(sha256_of(path))
        rows["size_bytes"].append(stat.st_size)
        rows["mtime"].append(stat.st_mtime)
    return pa.table(rows, schema=RAW_VIDEOS_SCHEMA)
