"""Benchmark readers on fixtures in the real layouts (ImageNet val folders, MCL-JCV yuv/mp4)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.metrics import psnr
from evaluation.vae_datasets import (
    DatasetLayoutError,
    imagenet_val_images,
    mcl_jcv_sequences,
    yuv420_to_rgb_bt709,
)
from media.video import write_video


def test_imagenet_layout_resize_and_centre_crop(tmp_path: Path) -> None:
    root = tmp_path / "imagenet" / "val"
    (root / "n01440764").mkdir(parents=True)
    (root / "n01443537").mkdir(parents=True)
    wide = np.zeros((256, 512, 3), np.uint8)
    wide[:, :128] = (255, 0, 0)
    wide[:, 128:384] = (0, 255, 0)
    wide[:, 384:] = (0, 0, 255)
    Image.fromarray(wide).save(root / "n01440764" / "ILSVRC2012_val_00000002.png")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (375, 500), dtype=np.uint8)).save(
        root / "n01443537" / "ILSVRC2012_val_00000001.JPEG"
    )
    items = list(imagenet_val_images(tmp_path / "imagenet"))
    assert [name for name, _ in items] == [
        "n01440764/ILSVRC2012_val_00000002.png",
        "n01443537/ILSVRC2012_val_00000001.JPEG",
    ]
    assert all(img.shape == (256, 256, 3) and img.dtype == np.uint8 for _, img in items)
    # The centre crop of the wide image keeps only its green middle half.
    assert (items[0][1][:, 8:-8] == (0, 255, 0)).all()
    assert len(list(imagenet_val_images(tmp_path / "imagenet", limit=1))) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="no .JPEG"):
        list(imagenet_val_images(tmp_path / "empty"))
    with pytest.raises(DatasetLayoutError, match="not a directory"):
        list(imagenet_val_images(tmp_path / "missing"))


def _smooth_video(frames: int, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    video = []
    for t in range(frames):
        r = 128 + 100 * np.sin((xx + 3 * t) / 25.0)
        g = 128 + 90 * np.cos((yy - 2 * t) / 19.0)
        b = 128 + 80 * np.sin((xx + yy + t) / 31.0)
        video.append(np.stack([r, g, b], axis=-1))
    return np.clip(np.rint(np.stack(video)), 0, 255).astype(np.uint8)


def _ffmpeg(rgb: np.ndarray, out: Path, *codec: str) -> None:
    t, h, w, _ = rgb.shape
    command = [
        "ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
        "-r", "30", "-i", "-", "-vf", "scale=out_color_matrix=bt709:out_range=tv:flags=bilinear",
        "-pix_fmt", "yuv420p", *codec, str(out),
    ]  # fmt: skip
    subprocess.run(command, input=rgb.tobytes(), check=True)


def test_mcl_jcv_yuv_and_mp4_layouts(tmp_path: Path) -> None:
    # Small frames keep the fixture light; the reader takes the size from the file name as for 1920x1080.
    rgb = _smooth_video(35, 216, 384)
    _ffmpeg(rgb, tmp_path / "videoSRC01_384x216_30.yuv", "-f", "rawvideo")
    # The same I420 planes, encoded losslessly (crf 0) as H.264.
    planes = np.fromfile(tmp_path / "videoSRC01_384x216_30.yuv", dtype=np.uint8).reshape(
        35, 216 * 3 // 2, 384
    )
    write_video(tmp_path / "videoSRC02_384x216_30.mp4", planes, 30, crf=0, input_format="yuv420p")
    sequences = dict(mcl_jcv_sequences(tmp_path))
    assert sorted(sequences) == ["videoSRC01", "videoSRC02"]
    raw, mp4 = sequences["videoSRC01"], sequences["videoSRC02"]
    assert raw.shape == mp4.shape == (33, 360, 640, 3)
    # Lossless H.264 of the same yuv420p planes decodes to the same RGB through our BT.709 path.
    assert np.array_equal(raw, mp4)
    # ffmpeg's BT.709 RGB→YUV and our YUV→RGB invert each other up to 4:2:0 chroma loss.
    from evaluation.vae_datasets import read_yuv420_raw

    direct = read_yuv420_raw(tmp_path / "videoSRC01_384x216_30.yuv", 384, 216, 33)
    assert psnr(direct, rgb[:33]) > 38.0
    with pytest.raises(DatasetLayoutError, match="need 40"):
        read_yuv420_raw(tmp_path / "videoSRC01_384x216_30.yuv", 384, 216, 40)


def test_bt709_reference_colours() -> None:
    # Limited-range BT.709 white, black and pure red (Y=63, Cb=102, Cr=240).
    def one(y: int, u: int, v: int) -> list[int]:
        planes = np.full((2, 2), y, np.uint8), np.full((1, 1), u, np.uint8), np.full((1, 1), v, np.uint8)
        return yuv420_to_rgb_bt709(*planes)[0, 0].tolist()

    assert one(235, 128, 128) == [255, 255, 255]
    assert one(16, 128, 128) == [0, 0, 0]
    red = one(63, 102, 240)
    assert red[0] >= 253 and red[1] <= 2 and red[2] <= 2
