"""The promotion report's pictures: PNG files whose bars carry the values' signs and thresholds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from evaluation.promotion_charts import bradley_terry_chart, gsb_chart, metrics_chart

GREEN, RED, BLUE, GREY = (0x55, 0xA8, 0x68), (0xC4, 0x4E, 0x52), (0x4C, 0x72, 0xB0), (0x99, 0x99, 0x99)


def _pixels(path: Path, colour: tuple[int, int, int], tolerance: int = 6) -> int:
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((np.abs(image - np.array(colour)).sum(axis=-1) < tolerance).sum())


def test_metrics_chart_draws_candidate_champion_and_gate(tmp_path: Path) -> None:
    candidate = {"temporal_flickering": 0.99, "dynamic_degree": 2.4, "text_video_alignment": None}
    alone = metrics_chart(candidate, None, {"dynamic_degree": 0.34}, tmp_path / "alone.png")
    assert (
        _pixels(alone, BLUE) > 100 and _pixels(alone, GREY) < 500
    )  # no champion: no grey bars (text edges aside)
    assert _pixels(alone, RED, tolerance=60) > 100  # the dashed gate line (anti-aliased)
    both = metrics_chart(candidate, {"dynamic_degree": 1.2}, {}, tmp_path / "both.png")
    assert _pixels(both, GREY) > 5000 and _pixels(both, RED, tolerance=60) < 20
    assert not list(tmp_path.glob(".*"))  # written atomically
    with pytest.raises(ValueError, match="no measured metric"):
        metrics_chart({"text_video_alignment": None}, None, {}, tmp_path / "none.png")


def test_gsb_bars_are_green_above_zero_and_red_below(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "dimension": ["overall", "visual_quality"],
            "gsb": [0.4, -0.2],
            "ci_low": [0.1, -0.5],
            "ci_high": [0.7, 0.1],
        }
    )
    mixed = gsb_chart(frame, tmp_path / "gsb.png")
    assert _pixels(mixed, GREEN) > 1000 and _pixels(mixed, RED) > 1000
    winning = gsb_chart(frame.iloc[:1], tmp_path / "win.png")
    assert _pixels(winning, GREEN) > 1000 and _pixels(winning, RED) < 100
    with pytest.raises(ValueError, match="no GSB rows"):
        gsb_chart(frame.iloc[:0], tmp_path / "empty.png")


def test_bradley_terry_chart_has_one_panel_per_dimension(tmp_path: Path) -> None:
    scores = pd.DataFrame(
        {
            "model": ["baseline", "candidate"],
            "score": [-0.3, 0.3],
            "ci_low": [-0.6, 0.0],
            "ci_high": [0.0, 0.6],
        }
    )
    one = bradley_terry_chart({"overall": scores}, tmp_path / "one.png")
    four = bradley_terry_chart(
        {d: scores for d in ("text_alignment", "motion_quality", "visual_quality", "overall")},
        tmp_path / "four.png",
    )
    assert Image.open(four).width > 2.5 * Image.open(one).width
    assert _pixels(one, BLUE) > 20
    with pytest.raises(ValueError, match="no Bradley–Terry scores"):
        bradley_terry_chart({}, tmp_path / "none.png")


def test_campaign_charts_once_a_campaign_has_judgments(tmp_path: Path) -> None:
    from evaluation.human_eval import HumanEvalConfig, ModelSpec, campaign_results
    from evaluation.promotion_charts import campaign_charts
    from tests.evaluation.campaigns import rate_everything, synthetic_campaign

    config = HumanEvalConfig.preset(
        "tiny", db_url=f"sqlite:///{tmp_path / 'he.db'}", gold_fraction=0.0, duplicate_fraction=0.0
    )
    models = [ModelSpec("candidate", "m-a"), ModelSpec("champion", "m-b")]
    campaign_id = synthetic_campaign(config, "c", models, tmp_path / "videos", ["r0", "r1"])
    assert campaign_charts(campaign_results(config, campaign_id), tmp_path / "out") == {}  # nothing rated yet
    rate_everything(config, "left")
    charts = campaign_charts(campaign_results(config, campaign_id), tmp_path / "out", prefix="campaign_1")
    assert charts == {
        "gsb": tmp_path / "out" / "campaign_1_gsb.png",
        "bradley_terry": tmp_path / "out" / "campaign_1_bt.png",
    }
    for png in charts.values():
        image = np.asarray(Image.open(png).convert("RGB"))
        assert image.shape[0] > 100 and image.std() > 10
