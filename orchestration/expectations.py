"""Table expectations run through Great Expectations 1.x, for Dagster asset checks.

A `TableExpectations` is a small declarative spec (required columns, non-null, unique, ranges, null
rates, allowed values, row-count floor). `validate_table` turns it into a GX suite, validates a
pandas DataFrame in an ephemeral GX context and returns one `ExpectationOutcome` per expectation.
GX is imported lazily: it costs seconds to import and most commands never need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class TableExpectations:
    """What a table must satisfy. Ranges are inclusive; None leaves that side open."""

    name: str
    columns: Sequence[str] = ()
    not_null: Sequence[str] = ()
    unique: Sequence[str] = ()
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    max_null_fraction: dict[str, float] = field(default_factory=dict)
    allowed_values: dict[str, Sequence[Any]] = field(default_factory=dict)
    min_rows: int = 0


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    details: str


@dataclass(frozen=True)
class ValidationReport:
    table: str
    rows: int
    outcomes: list[ExpectationOutcome]

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def summary(self) -> str:
        if self.success:
            return f"{self.table}: {len(self.outcomes)} expectations passed on {self.rows} rows"
        listed = "; ".join(f"{f.expectation}({f.column or ''}): {f.details}" for f in self.failures)
        return f"{self.table}: {len(self.failures)} of {len(self.outcomes)} failed: {listed}"


def _suite(spec: TableExpectations):
    import great_expectations as gx

    E = gx.expectations
    suite = gx.ExpectationSuite(name=f"{spec.name}_suite")
    if spec.columns:
        suite.add_expectation(
            E.ExpectTableColumnsToMatchSet(column_set=list(spec.columns), exact_match=False)
        )
    if spec.min_rows:
        suite.add_expectation(E.ExpectTableRowCountToBeBetween(min_value=spec.min_rows))
    for column in spec.not_null:
        suite.add_expectation(E.ExpectColumnValuesToNotBeNull(column=column))
    for column in spec.unique:
        suite.add_expectation(E.ExpectColumnValuesToBeUnique(column=column))
    for column, (low, high) in spec.ranges.items():
        suite.add_expectation(E.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high))
    for column, fraction in spec.max_null_fraction.items():
        # "at least (1 - fraction) of the values are not null"
        suite.add_expectation(E.ExpectColumnValuesToNotBeNull(column=column, mostly=1.0 - fraction))
    for column, values in spec.allowed_values.items():
        suite.add_expectation(E.ExpectColumnValuesToBeInSet(column=column, value_set=list(values)))
    return suite


def validate_table(frame: pd.DataFrame, spec: TableExpectations) -> ValidationReport:
    """Validate `frame` against `spec` with Great Expectations; never raises for failed rows."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas(f"{spec.name}_source")
    batch_definition = source.add_dataframe_asset(spec.name).add_batch_definition_whole_dataframe("all")
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(_suite(spec))
    outcomes = []
    for item in result.results:
        config = item.expectation_config
        kwargs = dict(config.kwargs) if config is not None else {}
        observed = item.result or {}
        details = ", ".join(
            f"{key}={observed[key]}"
            for key in ("unexpected_count", "unexpected_percent", "observed_value", "partial_unexpected_list")
            if key in observed and observed[key] not in (None, [], 0)
        )
        if item.exception_info and item.exception_info.get("raised_exception"):
            details = str(item.exception_info.get("exception_message"))
        outcomes.append(
            ExpectationOutcome(
                config.type if config is not None else "unknown",
                kwargs.get("column"),
                bool(item.success),
                details or "ok",
            )
        )
    return ValidationReport(spec.name, len(frame), outcomes)
