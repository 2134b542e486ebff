"""Charts that Dagster's UI shows in place: under its 1,000-character Markdown limit, decodable,
drawn to scale; too many rows fall back to a table of the same numbers."""

from __future__ import annotations

import base64
import io
import math
import re

import numpy as np
import pytest
from PIL import Image

from orchestration.inline_charts import INLINE_MARKDOWN_LIMIT, bar_chart, line_chart


def _image(markdown: str) -> np.ndarray:
    match = re.fullmatch(r"!\[[^\]]*\]\(data:image/(png|webp);base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match is not None, markdown[:80]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(match.group(2)))).convert("L"))


def test_a_funnel_fits_inline_with_bars_to_scale() -> None:
    rows = [("raw videos", 1200.0), ("clips", 900.0), ("deduped", 600.0), ("tier 256p", 300.0), ("sft", 0.0)]
    markdown = bar_chart(rows, "funnel").value
    assert len(markdown) < INLINE_MARKDOWN_LIMIT
    image = _image(markdown)
    assert image.shape[0] == 12 * len(rows) + 2
    # Dark pixels along the middle line of each bar row: proportional to the value (+ its label).
    dark = [(image[1 + i * 12 + 6] < 128).sum() for i in range(len(rows))]
    assert dark[0] > dark[1] > dark[2] > dark[3] > dark[4]
    bar = [int((image[1 + i * 12 + 4, 66:] < 128).sum()) for i in range(4)]  # the bar area only
    assert bar[0] == pytest.approx(2 * bar[2], rel=0.2)


def test_too_many_rows_fall_back_to_a_table_and_bad_values_are_refused() -> None:
    rows = [(f"stage number {i}", float(1000 - i)) for i in range(40)]
    markdown = bar_chart(rows, "long").value
    assert markdown.startswith("| | |") and "| stage number 39 | 961 |" in markdown
    with pytest.raises(ValueError, match="finite and ≥ 0"):
        bar_chart([("a", -1.0)], "negative")
    with pytest.raises(ValueError, match="at least one row"):
        bar_chart([], "empty")


def test_a_long_loss_curve_is_thinned_and_falls_from_top_left() -> None:
    points = [(float(step), 2.0 * math.exp(-step / 200) + 0.1) for step in range(1, 5001)]
    markdown = line_chart(points, "loss").value
    assert len(markdown) < INLINE_MARKDOWN_LIMIT
    image = _image(markdown)
    plot = image[:64, 48:]
    rows_hit = np.nonzero((plot < 128).any(axis=1))[0]
    cols_first, cols_last = (plot[:, :10] < 128).any(axis=1), (plot[:, -10:] < 128).any(axis=1)
    assert rows_hit.min() <= 2 and rows_hit.max() >= 60  # spans the whole y range
    assert (
        np.nonzero(cols_first)[0].min() < np.nonzero(cols_last)[0].min()
    )  # high at the start, low at the end
    with pytest.raises(ValueError, match="at least two finite points"):
        line_chart([(1.0, float("nan")), (2.0, 1.0)], "nan")
