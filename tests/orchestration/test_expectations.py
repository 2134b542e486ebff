"""Great Expectations suites behind the asset checks."""

import pandas as pd

from orchestration.expectations import TableExpectations, validate_table

SPEC = TableExpectations(
    "clips",
    columns=["clip_id", "score", "tier"],
    not_null=["clip_id"],
    unique=["clip_id"],
    ranges={"score": (0, 1)},
    max_null_fraction={"score": 0.5},
    allowed_values={"tier": ["256p", "360p"]},
    min_rows=2,
)


def test_a_clean_table_passes_every_expectation():
    frame = pd.DataFrame(
        {"clip_id": ["a", "b", "c"], "score": [0.1, 0.9, None], "tier": ["256p", "360p", "256p"]}
    )
    report = validate_table(frame, SPEC)
    assert report.success, report.summary()
    assert len(report.outcomes) == 7
    assert report.summary() == "clips: 7 expectations passed on 3 rows"


def test_each_violation_is_reported_with_its_column():
    frame = pd.DataFrame(
        {"clip_id": ["a", "b", "b"], "score": [0.1, 2.0, None], "tier": ["256p", "360p", "999p"]}
    )
    report = validate_table(frame, SPEC.__class__(**{**SPEC.__dict__, "max_null_fraction": {"score": 0.1}}))
    failed = {(f.expectation, f.column) for f in report.failures}
    assert failed == {
        ("expect_column_values_to_be_unique", "clip_id"),
        ("expect_column_values_to_be_between", "score"),
        ("expect_column_values_to_not_be_null", "score"),
        ("expect_column_values_to_be_in_set", "tier"),
    }
    assert "999p" in report.summary()
