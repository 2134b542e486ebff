"""Charts small enough to show inline on a Dagster asset page.

Dagster's UI renders Markdown metadata in place only while it is under 1,000 characters; longer
Markdown (any embedded PNG of a real chart) hides behind a "[Show Markdown]" link. These charts
are drawn 1-bit with PIL's bitmap font, so a bar chart of about ten labelled rows or a loss curve
fits as a data-URI PNG (or lossless WebP, whichever is smaller) within that budget. The full-size chart stays in its own metadata entry.
When a chart still does not fit, the entry falls back to a Markdown table of the same numbers.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import dagster as dg
from PIL import Image, ImageDraw

INLINE_MARKDOWN_LIMIT = 1000  # Dagster UI: Markdown metadata at or over this length is not inlined
ROW = 12  # px per bar: the bitmap font is 11 px high
CHAR = 6  # px per character of the bitmap font


def _encoded(image: Image.Image) -> tuple[str, bytes]:
    """(MIME type, bytes) of the smaller of PNG and lossless WebP (smaller on text-heavy charts)."""
    png, webp = io.BytesIO(), io.BytesIO()
    image.save(png, "PNG", optimize=True)
    image.convert("L").save(webp, "WEBP", lossless=True, quality=100, method=6)
    return min((("image/png", png.getvalue()), ("image/webp", webp.getvalue())), key=lambda e: len(e[1]))


def _inline(image: Image.Image, alt: str, fallback: str) -> dg.MetadataValue:
    mime, data = _encoded(image)
    markdown = f"![{alt}](data:{mime};base64,{base64.b64encode(data).decode()})"
    return dg.MetadataValue.md(markdown if len(markdown) < INLINE_MARKDOWN_LIMIT else fallback)


def bar_chart(rows: Sequence[tuple[str, float]], alt: str, value_format: str = "{:g}") -> dg.MetadataValue:
    """Horizontal bars, one per (label, value ≥ 0), each labelled with its value, as inline Markdown.

    Raises ValueError for no rows or a negative or non-finite value."""
    if not rows:
        raise ValueError(f"{alt}: a bar chart needs at least one row")
    if any(not math.isfinite(v) or v < 0 for _, v in rows):
        raise ValueError(f"{alt}: bar values must be finite and ≥ 0, got {[v for _, v in rows]}")
    label_w = CHAR * max(len(label) for label, _ in rows) + 6
    texts = [value_format.format(v) for _, v in rows]
    bar_w = 120
    image = Image.new("1", (label_w + bar_w + CHAR * max(len(t) for t in texts) + 8, ROW * len(rows) + 2), 1)
    draw = ImageDraw.Draw(image)
    top = max(v for _, v in rows) or 1.0
    for i, ((label, value), text) in enumerate(zip(rows, texts, strict=True)):
        y = 1 + i * ROW
        width = round(bar_w * value / top)
        draw.text((2, y), label, fill=0)
        if width:
            draw.rectangle((label_w, y + 2, label_w + width - 1, y + ROW - 3), fill=0)
        draw.text((label_w + width + 3, y), text, fill=0)
    table = "| | |\n|---|---|\n" + "\n".join(
        f"| {label} | {t} |" for (label, _), t in zip(rows, texts, strict=True)
    )
    return _inline(image, alt, table)


def line_chart(points: Sequence[tuple[float, float]], alt: str) -> dg.MetadataValue:
    """A curve of (x, y) points (e.g. step, loss) with its y range and last x marked, as inline
    Markdown; long series are thinned to 120 points. Raises ValueError for fewer than two points."""
    finite = [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
    if len(finite) < 2:
        raise ValueError(f"{alt}: a line chart needs at least two finite points, got {len(finite)}")
    stride = max(1, math.ceil(len(finite) / 120))
    kept = finite[::stride] if finite[::stride][-1] == finite[-1] else [*finite[::stride], finite[-1]]
    xs, ys = [x for x, _ in kept], [y for _, y in kept]
    low, high = min(ys), max(ys)
    left, width, height = 8 * CHAR, 200, 64  # 8 characters: a label such as -0.0474
    image = Image.new("1", (left + width + 2, height + ROW + 2), 1)
    draw = ImageDraw.Draw(image)
    span_x, span_y = (xs[-1] - xs[0]) or 1.0, (high - low) or 1.0
    draw.line(
        [(left + (x - xs[0]) / span_x * (width - 1), (high - y) / span_y * (height - 1)) for x, y in kept],
        fill=0,
    )
    draw.line([(left - 2, 0), (left - 2, height - 1)], fill=0)
    draw.text((0, 0), f"{high:.3g}", fill=0)
    draw.text((0, height - ROW + 1), f"{low:.3g}", fill=0)
    draw.text((left, height + 1), f"{xs[0]:g}", fill=0)
    last = f"{xs[-1]:g}"
    draw.text((left + width - CHAR * len(last), height + 1), last, fill=0)
    fallback = f"{len(finite)} points: first {finite[0][1]:.4g} at {finite[0][0]:g}, last {finite[-1][1]:.4g} at {finite[-1][0]:g}, min {low:.4g}"
    return _inline(image, alt, fallback)
