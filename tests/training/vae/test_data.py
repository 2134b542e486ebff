"""Media lists resolve from every accepted form; batches are reproducible and respect clip ranges."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from training.vae.data import MediaItem, MediaSampler, TrainingDataError, resolve_media_paths


def test_resolve_forms(tmp_path: Path, clip_paths: list[Path]) -> None:
    folder = clip_paths[0].parent
    listed = tmp_path / "list.txt"
    listed.write_text("\n".join(str(p) for p in clip_paths[:3]) + "\n")
    table = tmp_path / "clips.parquet"
    pq.write_table(pa.table({"clip_path": [str(p) for p in clip_paths[:2]]}), table)
    assert resolve_media_paths(folder) == sorted(clip_paths)
    assert resolve_media_paths(listed) == clip_paths[:3]
    assert resolve_media_paths(table) == clip_paths[:2]
    with pytest.raises(TrainingDataError, match="files missing"):
        resolve_media_paths([tmp_path / "gone.mp4"])


def test_batches_reproducible_and_ranged(clip_paths: list[Path]) -> None:
    sampler = MediaSampler(clip_paths, seed=3)
    a = sampler.video_batch(7, 2, 5, 16, 16)
    b = MediaSampler(clip_paths, seed=3).video_batch(7, 2, 5, 16, 16)
    assert a.shape == (2, 3, 5, 16, 16) and torch.equal(a, b)
    assert not torch.equal(a, sampler.video_batch(8, 2, 5, 16, 16))
    assert float(a.min()) >= -1.0 and float(a.max()) <= 1.0
    images = sampler.image_batch(4, 3, 24, 16)
    assert images.shape == (3, 3, 1, 24, 16)
    # A 3-frame clip range: a 5-frame sample holds its last frame rather than leaving the range.
    ranged = MediaSampler([MediaItem(clip_paths[0], 10, 13)], frame_stride_max=1)
    clip = ranged.video_batch(0, 1, 5, 16, 16)
    assert torch.equal(clip[:, :, 3], clip[:, :, 4])
    assert ranged._media(ranged.videos[0], 20).shape[0] == 3
