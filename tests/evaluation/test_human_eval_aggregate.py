"""Aggregation checked against hand-computed values; Krippendorff's alpha against the published
worked example (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability", 4 observers × 12
units: nominal 0.743, ordinal 0.815, interval 0.849) and the `krippendorff` package."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pandas as pd
import pytest

from evaluation.human_eval.aggregate import (
    agreement,
    bradley_terry,
    bradley_terry_scores,
    canonical_answer,
    gsb_interval,
    gsb_table,
    rater_quality,
    table3,
)
from evaluation.human_eval.agreement import AgreementError, coincidence_matrix, krippendorff_alpha
from evaluation.human_eval.config import DIMENSIONS

NAN = np.nan
# Krippendorff (2011), section C: observers A–D (rows) × units 1–12 (columns), "." = missing.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_alpha_matches_published_worked_example(level: str, published: float) -> None:
    ours = krippendorff_alpha(KRIPPENDORFF_2011, level)  # type: ignore[arg-type]
    assert round(ours, 3) == published
    reference = krippendorff.alpha(reliability_data=KRIPPENDORFF_2011, level_of_measurement=level)
    assert ours == pytest.approx(reference, abs=1e-12)


def test_coincidence_matrix_of_worked_example() -> None:
    # The paper's coincidence table: n_c = 9, 13, 10, 5, 3 for values 1..5, n = 40 pairable values.
    values, coincidences = coincidence_matrix(KRIPPENDORFF_2011)
    assert values.tolist() == [1, 2, 3, 4, 5]
    assert coincidences.sum(axis=1).tolist() == pytest.approx([9, 13, 10, 5, 3])
    assert coincidences[0, 0] == pytest.approx(7.0)  # o_11 from the paper's table
    assert coincidences[0, 1] == pytest.approx(4 / 3)


def test_alpha_random_data_matches_package() -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(0, 3, size=(6, 40)).astype(float)
    data[rng.random(data.shape) < 0.3] = np.nan
    for level in ("nominal", "ordinal", "interval"):
        assert krippendorff_alpha(data, level) == pytest.approx(  # type: ignore[arg-type]
            krippendorff.alpha(reliability_data=data, level_of_measurement=level), abs=1e-10
        )


def test_alpha_edge_cases() -> None:
    assert math.isnan(krippendorff_alpha(np.array([[1.0, 1.0], [1.0, 1.0]])))
    with pytest.raises(AgreementError):
        krippendorff_alpha(np.array([[1.0, NAN], [NAN, 2.0]]))
    with pytest.raises(AgreementError):
        krippendorff_alpha(np.array([1.0, 2.0]))
    with pytest.raises(AgreementError):
        krippendorff_alpha(np.full((2, 3), NAN))


def _judgment(item, rater, a, b, answer, kind="regular", duplicate=False, gold=None, answers=None):  # type: ignore[no-untyped-def]
    row = {
        "assignment_id": None,
        "item_id": item,
        "kind": kind,
        "rater_id": rater,
        "rater": f"r{rater}",
        "prompt_id": item,
        "model_a": a,
        "model_b": b,
        "is_duplicate": duplicate,
        "gold_expected": gold,
        "elapsed_ms": 2000 * rater,
    }
    row.update({dim: answer for dim in DIMENSIONS})
    row.update(answers or {})
    return row


@pytest.fixture()
def judgments() -> pd.DataFrame:
    rows = [
        _judgment(1, 1, "X", "Y", "a"),
        _judgment(1, 2, "X", "Y", "a"),
        _judgment(2, 1, "X", "Y", "same"),
        _judgment(2, 2, "X", "Y", "b"),
        _judgment(3, 1, "Y", "Z", "a"),
        _judgment(3, 2, "Y", "Z", "a"),
        _judgment(4, 1, "X", "Z", "a"),
        _judgment(4, 2, "X", "Z", "same"),
        # Gold: the original (A) should win visual quality and overall.
        _judgment(9, 1, "X", "X", "same", kind="gold", gold={"visual_quality": "a", "overall": "a"},
                  answers={"visual_quality": "a", "overall": "b"}),
        _judgment(9, 2, "X", "X", "a", kind="gold", gold={"visual_quality": "a", "overall": "a"}),
        # Duplicates: rater 1 repeats item 1 consistently, rater 2 repeats item 2 inconsistently.
        _judgment(1, 1, "X", "Y", "a", duplicate=True),
        _judgment(2, 2, "X", "Y", "same", duplicate=True),
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_canonical_answer() -> None:
    assert canonical_answer("left", True) == "a"
    assert canonical_answer("left", False) == "b"
    assert canonical_answer("right", True) == "b"
    assert canonical_answer("right", False) == "a"
    assert canonical_answer("same", False) == "same"


def test_gsb_table_hand_computed(judgments: pd.DataFrame) -> None:
    gsb = gsb_table(judgments).set_index(["model_x", "model_y", "dimension"])
    xy = gsb.loc[("X", "Y", "overall")]
    assert (xy["G"], xy["S"], xy["B"], xy["n"]) == (2, 1, 1, 4)
    assert xy["gsb"] == pytest.approx((2 - 1) / 4)
    assert xy["gs_over_bs"] == pytest.approx(3 / 2)
    assert xy["G%"] == pytest.approx(50.0)
    yz = gsb.loc[("Y", "Z", "overall")]
    assert (yz["G"], yz["S"], yz["B"], yz["gsb"]) == (2, 0, 0, 1.0)
    xz = gsb.loc[("X", "Z", "text_alignment")]
    assert (xz["G"], xz["S"], xz["B"], xz["gsb"]) == (1, 1, 0, 0.5)
    assert len(gsb) == 3 * len(DIMENSIONS)  # gold and duplicates are not counted


def test_gsb_interval_resamples_items_not_judgments(judgments: pd.DataFrame) -> None:
    # X vs Y overall: item 1 = (+1, +1), item 2 = (0, −1). Resampling the two items gives GSB 1
    # ({1, 1}), 0.25 ({1, 2}) or −0.5 ({2, 2}): the 95 % interval spans the two extremes.
    xy = gsb_table(judgments, bootstrap_samples=400).set_index(["model_x", "model_y", "dimension"])
    row = xy.loc[("X", "Y", "overall")]
    assert (row["gsb_ci_low"], row["gsb_ci_high"]) == (pytest.approx(-0.5), pytest.approx(1.0))
    unanimous = xy.loc[("Y", "Z", "overall")]
    assert (unanimous["gsb_ci_low"], unanimous["gsb_ci_high"]) == (1.0, 1.0)
    # Many items, each judged the same twice: the interval narrows around the score as items grow.
    items = np.repeat(np.arange(200), 2)
    scores = np.repeat(np.where(np.arange(200) % 4 == 0, -1.0, 1.0), 2)  # GSB 0.5
    low, high = gsb_interval(items, scores, bootstrap_samples=500)
    assert low < 0.5 < high and high - low < 0.3
    assert all(math.isnan(v) for v in gsb_interval(items, scores, bootstrap_samples=0))


def test_table3_hand_computed(judgments: pd.DataFrame) -> None:
    table = table3(judgments, {"X": "5s", "Y": "5s", "Z": "6s"})
    assert table["Model"].tolist() == ["X", "Y", "Z"]
    assert table["Ranking"].tolist() == [1, 2, 3]
    # X: 1+1 (item 1) + ½+0 (item 2) + 1+½ (item 4) = 4 of 6; Y: 0+0+½+1+1+1 = 3.5 of 6; Z: 0+0+0+½ = ½ of 4.
    assert table["Overall preference"].tolist() == pytest.approx([400 / 6, 350 / 6, 12.5])
    assert table["Duration"].tolist() == ["5s", "5s", "6s"]
    assert list(table.columns) == [
        "Model", "Duration", "Text alignment", "Motion quality", "Visual quality", "Overall preference", "Ranking",
    ]  # fmt: skip


def test_bradley_terry_two_models_closed_form(judgments: pd.DataFrame) -> None:
    only_xy = judgments[(judgments["model_a"] == "X") & (judgments["model_b"] == "Y")]
    frame = bradley_terry(only_xy, "overall", bootstrap_samples=0, prior=0.0).set_index("model")
    # X wins 1+1+½+0 = 2.5, Y wins 1.5: s_X − s_Y = ln(2.5 / 1.5), centred.
    assert frame.loc["X", "score"] - frame.loc["Y", "score"] == pytest.approx(math.log(2.5 / 1.5), abs=1e-8)
    assert frame.loc["X", "score"] == pytest.approx(math.log(2.5 / 1.5) / 2, abs=1e-8)
    # With the default prior (½ virtual tie) the estimate shrinks: ln(2.75 / 1.75); CIs bracket it.
    shrunk = bradley_terry(only_xy, "overall", bootstrap_samples=100, seed=1).set_index("model")
    assert 2 * shrunk.loc["X", "score"] == pytest.approx(math.log(2.75 / 1.75), abs=1e-8)
    assert shrunk.loc["X", "ci_low"] <= shrunk.loc["X", "score"] <= shrunk.loc["X", "ci_high"]
    assert shrunk.loc["X", "ci_low"] < 0 < shrunk.loc["X", "ci_high"]  # 4 judgments: not significant
    with pytest.raises(ValueError, match="no wins"):
        bradley_terry_scores(np.array([[0.0, 2.0], [0.0, 0.0]]), prior=0.0)


def test_bradley_terry_satisfies_likelihood_equations() -> None:
    wins = np.array([[0.0, 3.0, 2.5], [1.0, 0.0, 2.0], [0.5, 1.0, 0.0]])
    scores = bradley_terry_scores(wins, prior=0.0)
    games = wins + wins.T
    expected = (games / (1.0 + np.exp(scores[None, :] - scores[:, None]))).sum(axis=1)
    assert expected == pytest.approx(wins.sum(axis=1), abs=1e-7)  # score equations of the MLE
    assert scores.sum() == pytest.approx(0.0, abs=1e-12)
    assert scores[0] > scores[1] > scores[2]


def test_agreement_hand_computed(judgments: pd.DataFrame) -> None:
    table = agreement(judgments).set_index("dimension")
    # Codes (b=0, same=1, a=2): rater 1 = [2, 1, 2, 2], rater 2 = [2, 0, 2, 1] over items 1–4.
    # n_0=1, n_1=2, n_2=5, n=8; D_o = 4/8; D_e = (64 − 30)/56 → alpha = 1 − 28/34 = 3/17.
    assert table.loc["overall", "nominal"] == pytest.approx(3 / 17)
    assert table.loc["overall", "units"] == 4
    reference = krippendorff.alpha(
        reliability_data=np.array([[2, 1, 2, 2], [2, 0, 2, 1]]), level_of_measurement="ordinal"
    )
    assert table.loc["overall", "ordinal"] == pytest.approx(reference)


def test_rater_quality_hand_computed(judgments: pd.DataFrame) -> None:
    quality = rater_quality(judgments, min_gold_accuracy=0.6).set_index("rater")
    assert quality.loc["r1", "gold_accuracy"] == pytest.approx(0.5)  # visual right, overall wrong
    assert quality.loc["r2", "gold_accuracy"] == pytest.approx(1.0)
    assert quality.loc["r1", "duplicate_consistency"] == pytest.approx(1.0)
    assert quality.loc["r2", "duplicate_consistency"] == pytest.approx(0.0)
    assert quality.loc["r1", "ratings"] == 4
    assert bool(quality.loc["r1", "flagged"]) and not bool(quality.loc["r2", "flagged"])
    assert quality.loc["r2", "median_seconds"] == pytest.approx(4.0)
