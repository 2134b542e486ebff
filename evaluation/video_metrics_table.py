"""The per-metric table of a `VideoEvaluationReport` as a PNG (matplotlib, Agg: no display needed),
for MLflow artifacts and Dagster metadata.

One row per metric: mean, median, min, max over the videos, its units, and its gate (threshold and
verdict) where it has one; a metric that did not run shows its status. Gate rows are tinted green
(pass) or red (fail); the title carries the overall verdict.
"""

from __future__ import annotations

from pathlib import Path

from evaluation.figures import pyplot, save_figure
from evaluation.video_metrics import VideoEvaluationReport

_PASS, _FAIL, _PLAIN = "#d9f2d9", "#f7d4d4", "#ffffff"


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def render_metrics_table(report: VideoEvaluationReport, out: Path) -> Path:
    """Write the report's per-metric table to `out` (PNG, atomically) and return `out`."""
    plt = pyplot()
    gates = {verdict.metric: verdict for verdict in report.gates}
    header = ["metric", "mean", "median", "min", "max", "units", "gate"]
    rows, colours = [], []
    for key, summary in report.metrics.items():
        verdict = gates.get(key)
        if summary.status != "ok":
            values = [summary.status, "", "", ""]
        else:
            values = [_cell(summary.mean), _cell(summary.median), _cell(summary.min), _cell(summary.max)]
        gate = "—"
        if verdict is not None:
            gate = f"{verdict.comparison} {verdict.threshold:.4g}: {'pass' if verdict.passed else 'FAIL'}"
        rows.append([key, *values, summary.units, gate])
        colours.append([_PLAIN if verdict is None else _PASS if verdict.passed else _FAIL] * len(header))
    videos = len(report.videos)
    fig, ax = plt.subplots(figsize=(13, 0.42 * (len(rows) + 2)))
    ax.axis("off")
    table = ax.table(cellText=rows, colLabels=header, cellColours=colours, loc="center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(len(header))))
    verdict_text = "PASSED" if report.passed else "FAILED"
    ax.set_title(f"{videos} videos, preset {report.preset}: gates {verdict_text}", fontsize=10)
    return save_figure(fig, out, dpi=110)
