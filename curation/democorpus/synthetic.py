"""Renderers for synthetic shots with known ground truth, drawn over real photos.

A shot is a sequence of perspective warps of one photo: for frame t a homography M_t maps an
output pixel (x, y) to a source-photo pixel, `M_t = A · G_t`, where G_t is the camera move in
output-pixel units (see `camera_motion_classes` for the operational definitions) and A places the
union of all views inside the photo. Overlays (burnt-in text, a corner logo) are composited on
the content; black bars (letterbox / pillarbox) are added around it last.

Units: sizes in pixels; `motion_px_per_frame_256p` is the mean displacement of a pixel between
consecutive frames, measured at a frame height of 256 px (so it does not depend on resolution).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from curation.camera_motion_classes import CameraMotion

FONT_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")

_WORDS = [
    "river",
    "mountain",
    "morning",
    "coffee",
    "summer",
    "garden",
    "window",
    "city",
    "market",
    "yellow",
    "orange",
    "green",
    "people",
    "travel",
    "winter",
    "station",
    "museum",
    "bridge",
    "harbor",
    "forest",
    "island",
    "planet",
    "evening",
    "music",
    "festival",
    "kitchen",
    "flower",
    "number",
    "letter",
    "paper",
    "story",
    "night",
    "light",
    "ocean",
    "desert",
    "valley",
]


def _translate(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def _about_center(matrix: np.ndarray, cx: float, cy: float) -> np.ndarray:
    return _translate(cx, cy) @ matrix @ _translate(-cx, -cy)


def _rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _camera_path_at(
    motion: CameraMotion, n_frames: int, width: int, height: int, amplitude: float, shake: np.ndarray
) -> np.ndarray:
    """Homographies G_t (T, 3, 3), output px → reference px, at a given motion `amplitude`.

    `camera_path` searches the amplitude that hits a target pixel speed, so its unit is
    arbitrary per class; the direction conventions are the contract. `shake` (3, T) is the
    handheld translation x, y and roll signal for unit amplitude.
    """
    cx, cy = width / 2.0, height / 2.0
    focal = 0.9 * width  # ≈ 58° horizontal field of view
    intrinsics = np.array([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])
    inv_intrinsics = np.linalg.inv(intrinsics)
    t = amplitude * np.arange(n_frames, dtype=np.float64)
    paths = []
    for i in range(n_frames):
        if motion == "static shot":
            g = np.eye(3)
        elif motion.startswith("pan"):
            # The window moves with the camera; content flows the opposite way.
            dx = {"pan left": -1.0, "pan right": 1.0}.get(motion, 0.0)
            dy = {"pan up": -1.0, "pan down": 1.0}.get(motion, 0.0)
            g = _translate(dx * t[i], dy * t[i])
        elif motion.startswith("tilt"):
            angle = 1e-3 * t[i]
            if motion in ("tilt left", "tilt right"):
                rotation = _rotation_y(angle if motion == "tilt right" else -angle)
            else:
                # R_x(+a) maps the optical axis to (0, -sin a, cos a): it pitches up (image y
                # points down), so the content moves down, as "tilt up" is defined.
                rotation = _rotation_x(angle if motion == "tilt up" else -angle)
            g = intrinsics @ rotation @ inv_intrinsics
        elif motion.startswith("zoom"):
            progress = t[i] if motion == "zoom in" else (t[-1] - t[i])
            scale = np.exp(-1e-3 * progress)  # reference px per output px shrinks as we zoom in
            g = _about_center(np.diag([scale, scale, 1.0]), cx, cy)
        elif motion.startswith("around"):
            # Orbit of radius `depth` about the plane centre (the subject), symmetric about the
            # fronto-parallel reference view so the obliquity stays within ±ORBIT_MAX_ANGLE_DEG:
            # the camera centre moves on the circle and its optical axis (third row of the
            # world → camera rotation) keeps pointing at the plane centre, so the frame centre
            # stays put while the side the camera moves towards grows.
            phi = 1e-3 * (t[i] - t[-1] / 2.0) * (1.0 if motion == "around right" else -1.0)
            depth = focal
            center = np.array([depth * np.sin(phi), 0.0, depth - depth * np.cos(phi)])
            rotation = _rotation_y(phi)  # world → camera; its third row is (-sin φ, 0, cos φ)
            plane_to_orbit = intrinsics @ np.column_stack(
                [rotation[:, 0], rotation[:, 1], rotation @ (np.array([0.0, 0.0, depth]) - center)]
            )
            plane_to_reference = intrinsics @ np.column_stack(
                [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, depth]]
            )
            g = plane_to_reference @ np.linalg.inv(plane_to_orbit)
        elif motion == "handheld shot":
            roll = 0.002 * amplitude * shake[2, i]
            c, s = np.cos(roll), np.sin(roll)
            rotation_2d = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
            g = _translate(amplitude * shake[0, i], amplitude * shake[1, i]) @ _about_center(
                rotation_2d, cx, cy
            )
        else:
            raise ValueError(f"unknown camera motion {motion!r}")
        paths.append(g / g[2, 2])
    return np.stack(paths)


def mean_displacement(paths: np.ndarray, width: int, height: int) -> float:
    """Mean |Δ position| (output px / frame) of a 16×9 grid of scene points between frames.

    A scene point seen at output pixel p in frame t is seen at G_{t+1}^-1 G_t p in frame t+1.
    """
    if len(paths) < 2:
        return 0.0
    xs, ys = np.meshgrid(np.linspace(0.05, 0.95, 16) * width, np.linspace(0.05, 0.95, 9) * height)
    points = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])  # (3, N)
    total = 0.0
    for g_now, g_next in zip(paths[:-1], paths[1:], strict=True):
        moved = np.linalg.inv(g_next) @ (g_now @ points)
        moved = moved[:2] / moved[2:]
        total += float(np.linalg.norm(moved - points[:2], axis=0).mean())
    return total / (len(paths) - 1)


def camera_path(
    motion: CameraMotion,
    n_frames: int,
    width: int,
    height: int,
    speed_256p: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Homographies G_t (T, 3, 3) whose mean pixel speed is `speed_256p` px/frame at 256p.

    An orbit ('around') is capped at ±`ORBIT_MAX_ANGLE_DEG`, which bounds its speed (about
    0.8-1.7 px/frame over 2-3.4 s): asked for more, it returns the capped, slower move. Measure
    the result with `mean_displacement` when the true speed matters.
    """
    if motion == "static shot" or speed_256p <= 0:
        return np.repeat(np.eye(3)[None], n_frames, axis=0)
    # Handheld shake: a few incommensurate sinusoids per axis, direction changes within a second.
    frames = np.arange(n_frames, dtype=np.float64)
    freqs = rng.uniform(0.03, 0.12, size=(3, 3))
    phases = rng.uniform(0, 2 * np.pi, size=(3, 3))
    weights = rng.uniform(0.5, 1.0, size=(3, 3))
    shake = (weights[:, :, None] * np.sin(2 * np.pi * freqs[:, :, None] * frames + phases[:, :, None])).sum(1)
    target = speed_256p * height / 256.0
    max_amplitude = _max_amplitude(motion, n_frames)

    def speed(amplitude: float) -> float:
        paths = _camera_path_at(motion, n_frames, width, height, amplitude, shake)
        return max(mean_displacement(paths, width, height), 1e-12)

    # Speed is smooth and monotonic in the amplitude: nearly linear for most moves, steeper for an
    # orbit (the perspective flow grows with the obliquity). Secant steps on log speed vs log
    # amplitude converge in a few steps either way; the amplitude is capped where the geometry
    # stops being sensible, so a capped move is slower than asked (the label records the truth).
    amplitude, measured = min(1.0, max_amplitude), 0.0
    previous: tuple[float, float] | None = None
    for _ in range(8):
        measured = speed(amplitude)
        if abs(measured / target - 1.0) < 1e-6:
            break
        slope = 1.0
        if previous is not None and previous[0] != amplitude:
            slope = np.log(measured / previous[1]) / np.log(amplitude / previous[0])
            slope = float(np.clip(slope, 0.5, 4.0))
        next_amplitude = min(amplitude * (target / measured) ** (1.0 / slope), max_amplitude)
        if next_amplitude == amplitude:
            break  # capped and still too slow
        previous = (amplitude, measured)
        amplitude = next_amplitude
    return _camera_path_at(motion, n_frames, width, height, amplitude, shake)


ORBIT_MAX_ANGLE_DEG = 40.0
"""An 'around' move turns at most ±this about the fronto-parallel view. The far edge of the view
(29° off axis) then looks at the plane 69° off its normal, and the views sweep about 2.5 view
widths of the plane; further on the far side smears towards the plane's horizon and the photo must
cover a much larger area. Over 2-3.4 s this caps an orbit at about 0.8-1.7 px/frame at 256p."""


def _max_amplitude(motion: CameraMotion, n_frames: int) -> float:
    """The largest amplitude `_camera_path_at` accepts for `motion` (inf: no limit)."""
    if motion.startswith("around") and n_frames > 1:
        return float(np.radians(ORBIT_MAX_ANGLE_DEG) / (1e-3 * (n_frames - 1) / 2.0))
    return float("inf")


def place_in_source(paths: np.ndarray, width: int, height: int, source_w: int, source_h: int) -> np.ndarray:
    """The matrix A (3, 3), reference px → source px, fitting every view inside the source."""
    corners = np.array([[0, width, width, 0], [0, 0, height, height], [1, 1, 1, 1]], dtype=np.float64)
    mapped = np.concatenate([(g @ corners)[:2] / (g @ corners)[2:] for g in paths], axis=1)
    x0, y0 = mapped.min(axis=1)
    x1, y1 = mapped.max(axis=1)
    scale = min(source_w / (x1 - x0), source_h / (y1 - y0))
    return np.array(
        [
            [scale, 0.0, source_w / 2.0 - scale * (x0 + x1) / 2.0],
            [0.0, scale, source_h / 2.0 - scale * (y0 + y1) / 2.0],
            [0.0, 0.0, 1.0],
        ]
    )


@dataclass(frozen=True)
class Overlay:
    """A straight-alpha RGBA patch at (x, y) of the content area; `boxes` are its ink boxes."""

    rgb: np.ndarray  # (h, w, 3) uint8
    alpha: np.ndarray  # (h, w, 1) float32 in [0, 1]
    x: int
    y: int
    boxes: tuple[tuple[int, int, int, int], ...]  # (x0, y0, x1, y1) in content pixels

    def composite(self, content: np.ndarray) -> None:
        """Blend the overlay into `content` (H, W, 3 uint8) in place."""
        h, w = self.rgb.shape[:2]
        region = content[self.y : self.y + h, self.x : self.x + w].astype(np.float32)
        blended = region * (1.0 - self.alpha) + self.rgb.astype(np.float32) * self.alpha
        content[self.y : self.y + h, self.x : self.x + w] = blended.astype(np.uint8)


def text_overlay(width: int, height: int, target_area: float, rng: np.random.Generator) -> Overlay:
    """Burnt-in text lines whose summed line boxes cover about `target_area` of the frame.

    Subtitle-like text (< 5 %) sits near the bottom; heavier text is a block of lines placed at a
    random height. White glyphs with a black stroke, as broadcast captions are drawn.
    """
    heavy = target_area >= 0.05
    font_px = max(12, int(height * (rng.uniform(0.075, 0.1) if heavy else rng.uniform(0.05, 0.065))))
    font = ImageFont.truetype(str(FONT_PATH), font_px)
    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    line_gap = int(font_px * 0.45)
    boxes: list[tuple[int, int, int, int]] = []
    area = 0.0
    lines: list[str] = []
    while area < target_area * width * height:
        words: list[str] = []
        while True:
            candidate = " ".join([*words, str(rng.choice(_WORDS))])
            if draw.textlength(candidate, font=font) > width * (0.9 if heavy else 0.6) and words:
                break
            words = candidate.split(" ")
        line = " ".join(words)
        x0, y0, x1, y1 = draw.textbbox((0, 0), line, font=font, stroke_width=2)
        lines.append(line)
        area += (x1 - x0) * (y1 - y0)
        if len(lines) * (font_px + line_gap) > height * 0.85:
            break
    block_h = len(lines) * (font_px + line_gap)
    top = int(height * 0.92) - block_h if not heavy else int(rng.uniform(0.05, 0.95) * (height - block_h))
    top = max(2, top)
    for index, line in enumerate(lines):
        length = draw.textlength(line, font=font)
        x = int((width - length) / 2)
        y = top + index * (font_px + line_gap)
        draw.text(
            (x, y), line, font=font, fill=(255, 255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0, 255)
        )
        bx0, by0, bx1, by1 = draw.textbbox((x, y), line, font=font, stroke_width=2)
        boxes.append((int(bx0), int(by0), int(bx1), int(by1)))
    return _crop_overlay(np.asarray(canvas), tuple(boxes))


def logo_overlay(width: int, height: int, corner: str, rng: np.random.Generator) -> Overlay:
    """A semi-transparent geometric logo (ring, triangle, bar; no letters) in a corner.

    `corner` is one of "top-left", "top-right", "bottom-left", "bottom-right". The logo is about
    9-12 % of the frame width, 3 % of the width from the edges, at 60-75 % opacity.
    """
    size = int(width * rng.uniform(0.09, 0.12))
    logo = np.zeros((size, size, 4), dtype=np.uint8)
    color = (255, 255, 255, int(255 * rng.uniform(0.6, 0.75)))
    half = size // 2
    cv2.circle(logo, (half, half), int(size * 0.42), color, max(2, size // 10), lineType=cv2.LINE_AA)
    triangle = np.array(
        [[half, int(size * 0.22)], [int(size * 0.75), int(size * 0.7)], [int(size * 0.25), int(size * 0.7)]]
    )
    cv2.fillPoly(logo, [triangle], color, lineType=cv2.LINE_AA)
    cv2.rectangle(logo, (int(size * 0.3), int(size * 0.76)), (int(size * 0.7), int(size * 0.82)), color, -1)
    margin = int(width * 0.03)
    x = margin if corner.endswith("left") else width - margin - size
    y = margin if corner.startswith("top") else height - margin - size
    canvas = np.zeros((height, width, 4), dtype=np.uint8)
    canvas[y : y + size, x : x + size] = logo
    return _crop_overlay(canvas, ((x, y, x + size, y + size),))


def _crop_overlay(canvas: np.ndarray, boxes: tuple[tuple[int, int, int, int], ...]) -> Overlay:
    ys, xs = np.nonzero(canvas[:, :, 3])
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    patch = canvas[y0:y1, x0:x1]
    return Overlay(
        rgb=np.ascontiguousarray(patch[:, :, :3]),
        alpha=(patch[:, :, 3:4].astype(np.float32) / 255.0),
        x=x0,
        y=y0,
        boxes=boxes,
    )


def render_shot_frames(
    photo_bgr: np.ndarray,
    paths: np.ndarray,
    content_w: int,
    content_h: int,
    overlays: list[Overlay],
    frame_w: int,
    frame_h: int,
    content_x: int,
    content_y: int,
) -> list[np.ndarray]:
    """Render the frames (T × (frame_h, frame_w, 3) RGB uint8) of one shot.

    The photo is first reduced (area filter) so that it is at most ~1.2× the resolution the
    views need: warping a 5K photo per frame would alias and waste time.
    """
    source = photo_bgr
    placement = place_in_source(paths, content_w, content_h, source.shape[1], source.shape[0])
    if placement[0, 0] > 1.5:
        factor = 1.2 / placement[0, 0]
        source = cv2.resize(source, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        placement = place_in_source(paths, content_w, content_h, source.shape[1], source.shape[0])
    source_rgb = cv2.cvtColor(source, cv2.COLOR_BGR2RGB)
    frames = []
    for g in paths:
        content = cv2.warpPerspective(
            source_rgb,
            placement @ g,
            (content_w, content_h),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        for overlay in overlays:
            overlay.composite(content)
        if (frame_w, frame_h) == (content_w, content_h):
            frames.append(content)
        else:
            frame = np.zeros((frame_h, frame_w, 3), dtype=np.uint8)
            frame[content_y : content_y + content_h, content_x : content_x + content_w] = content
            frames.append(frame)
    return frames
