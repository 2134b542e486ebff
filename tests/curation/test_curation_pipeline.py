"""The curation chain over the demo corpus + awkward inputs, on Ray: accuracy, quarantine, tables, reruns."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from curation.config import TIER_NAMES, CurationConfig
from curation.democorpus.accuracy import score_corpus
from curation.democorpus.labels import CorpusLabels
from curation.pipeline import make_clips
from curation.schemas import (
    CLIP_SIGNALS_SCHEMA,
    CLIPS_SCHEMA,
    DEDUPED_CLIPS_SCHEMA,
    QUARANTINE_SCHEMA,
    SFT_CANDIDATES_SCHEMA,
    TIER_DECISIONS_SCHEMA,
    TIERS_SCHEMA,
)
from media.tables import read_table
from tests.curation.conftest import CurationRun


def _table(run: CurationRun, name: str):
    return pq.read_table(run.result.tables[name])


def test_accuracy_against_the_corpus_labels(curation_run: CurationRun, demo_labels: CorpusLabels) -> None:
    report = score_corpus(
        demo_labels,
        _table(curation_run, "clips"),
        _table(curation_run, "clip_signals"),
        _table(curation_run, "deduped_clips"),
        _table(curation_run, "quarantine"),
        curation_run.config,
    )
    assert report.counts["true_cuts"] >= 10 and report.counts["scored_clips"] >= 30
    assert report.cut_f1 >= 0.95
    assert report.static_accuracy >= 0.95
    assert report.text_heavy_accuracy >= 0.90
    assert report.watermark_accuracy >= 0.90
    assert report.border_accuracy >= 0.95
    assert report.duplicates_found >= 0.95
    assert report.false_merges == 0
    assert report.counts["exact_copy_files_caught_at_ingest"] == report.counts["exact_copy_files"] == 1
    # Each class is really present, so the accuracies are not won by always saying "no".
    for key in ("text_heavy_clips", "watermark_clips", "border_clips", "low_motion_clips", "duplicate_pairs"):
        assert report.counts[key] >= 3, key


def test_every_bad_input_is_quarantined_with_its_stage(curation_run: CurationRun) -> None:
    quarantine = _table(curation_run, "quarantine").to_pylist()
    by_file: dict[str, list[dict]] = {}
    for row in quarantine:
        by_file.setdefault(Path(row["path"]).name, []).append(row)
    expected_stage = {
        "zero_byte.mp4": "probe",
        "truncated.mp4": "probe",
        "not_a_video.mp4": "probe",
        "audio_only.mp4": "probe",
        "tiny_16x16.mp4": "probe",
        "huge_5120x2880.mp4": "probe",
        "one_frame.mp4": "clips",
        "same_file_twice.mp4": "ingest",
    }
    for name, item in curation_run.bad_inputs.items():
        if item.expect == "quarantine":
            assert name in by_file, name
            assert by_file[name][0]["stage"] == expected_stage[name], by_file[name]
            assert by_file[name][0]["reason"]
    reasons = {name: rows[0]["reason"] for name, rows in by_file.items()}
    assert "0 bytes" in reasons["zero_byte.mp4"]
    assert "no video stream" in reasons["audio_only.mp4"]
    assert "16x16" in reasons["tiny_16x16.mp4"]
    assert "same content as" in reasons["same_file_twice.mp4"]
    clips = _table(curation_run, "clips").to_pylist()
    clip_sources = Counter(Path(c["source_path"]).name for c in clips)
    for name, item in curation_run.bad_inputs.items():
        if item.expect == "accept":
            assert clip_sources[name] >= 1, name
    rotated = next(c for c in clips if Path(c["source_path"]).name == "rotated_90.mp4")
    assert (rotated["width"], rotated["height"]) == (256, 320)
    vfr = next(c for c in clips if Path(c["source_path"]).name == "variable_frame_rate.mp4")
    assert vfr["end_time"] == pytest.approx(90 * 0.03, abs=0.05)  # 45 × (20 + 40) ms


def test_tables_follow_their_schemas_and_tiers_nest(curation_run: CurationRun) -> None:
    schemas = {
        "clips": CLIPS_SCHEMA,
        "clip_signals": CLIP_SIGNALS_SCHEMA,
        "quarantine": QUARANTINE_SCHEMA,
        "deduped_clips": DEDUPED_CLIPS_SCHEMA,
        "tier_decisions": TIER_DECISIONS_SCHEMA,
        "tiers": TIERS_SCHEMA,
        "sft_candidates": SFT_CANDIDATES_SCHEMA,
    }
    tables = {name: read_table(curation_run.result.tables[name], schema) for name, schema in schemas.items()}
    clip_ids = tables["clips"].column("clip_id").to_pylist()
    assert len(clip_ids) == len(set(clip_ids))
    assert set(tables["clip_signals"].column("clip_id").to_pylist()) == set(clip_ids)
    assert set(tables["deduped_clips"].column("clip_id").to_pylist()) == set(clip_ids)
    assert {m for m in tables["clip_signals"].column("aesthetic_model").to_pylist()} == {
        "heuristic-standin(colourfulness,contrast,exposure,sharpness)"
    }
    for clip in tables["clips"].to_pylist():
        assert (
            clip["start_frame"]
            <= clip["start_frame_sharpest"]
            < min(clip["end_frame"], clip["start_frame"] + clip["fps"] + 1)
        )
    weights = [w for w in tables["deduped_clips"].column("balance_weight").to_pylist() if w is not None]
    assert sum(weights) / len(weights) == pytest.approx(1.0, abs=1e-6)
    for row in tables["tiers"].to_pylist():
        flags = [row[f"tier_{name}"] for name in TIER_NAMES]
        assert flags[0] and flags == sorted(flags, reverse=True)  # 256p ⊃ 360p ⊃ 540p ⊃ 720p
    decisions = tables["tier_decisions"].to_pylist()
    per_clip_tier = Counter((r["clip_id"], r["tier"]) for r in decisions if r["decisive"])
    assert max(per_clip_tier.values()) == 1
    for r in decisions:
        assert r["passed"] == (
            r["value"] is not None
            and (r["value"] >= r["threshold"] if r["comparison"] == ">=" else r["value"] <= r["threshold"])
        )
    counts = [count for _, count in curation_run.result.funnel]
    assert counts == sorted(counts, reverse=True) and counts[0] == len(clip_ids)
    assert curation_run.result.tier_counts["256p"] >= curation_run.result.tier_counts["720p"] >= 1
    assert curation_run.result.funnel_png.stat().st_size > 10_000
    # SFT candidates: every top-tier clip, and lower tiers while there are fewer than min_candidates.
    highest = {r["clip_id"]: r["highest_tier"] for r in tables["tiers"].to_pylist() if r["highest_tier"]}
    proposed = tables["sft_candidates"].column("clip_id").to_pylist()
    assert {c for c, tier in highest.items() if tier == "720p"} <= set(proposed) <= set(highest)
    assert len(proposed) >= min(CurationConfig.preset("tiny").sft.min_candidates, len(highest))


def test_rerun_gives_the_same_ids_and_no_duplicate_rows(curation_run: CurationRun, tmp_path: Path) -> None:
    raw = curation_run.raw.filter(
        [("/bad/" in p) for p in curation_run.raw.column("path").to_pylist()]  # the awkward inputs only
    )
    config = CurationConfig.preset("tiny", execution={"backend": "local"})
    clips_path = tmp_path / "tables" / "clips" / "demo.parquet"
    quarantine_path = tmp_path / "quarantine" / "demo.parquet"
    first = make_clips(raw, "demo", config, clips_path, quarantine_path)
    first_ids = sorted(read_table(clips_path, CLIPS_SCHEMA).column("clip_id").to_pylist())
    second = make_clips(raw, "demo", config, clips_path, quarantine_path)
    second_ids = sorted(read_table(clips_path, CLIPS_SCHEMA).column("clip_id").to_pylist())
    assert first_ids == second_ids and len(first_ids) == first.rows["clip"] == second.rows["clip"] >= 1
    assert set(first_ids) <= set(_table(curation_run, "clips").column("clip_id").to_pylist())
    quarantine = read_table(quarantine_path, QUARANTINE_SCHEMA)
    assert quarantine.num_rows == first.rows["quarantine"] == second.rows["quarantine"] >= 8
    # The workers wrote part files into staging folders that were moved into place whole.
    assert not [p for p in tmp_path.rglob(".*")]
    assert all(part.name.startswith("clips-") for part in quarantine_path.iterdir())


def test_dagster_assets_rebuild_dedup_and_tiers(curation_run: CurationRun, tmp_path: Path) -> None:
    from assets.deduped_clips import deduped_clips
    from assets.tiers import sft_candidates, tiers
    from orchestration.config import load_config
    from orchestration.resources import build_resources
    from orchestration.workspace import Workspace

    workspace = Workspace.at(tmp_path / "ws").ensure()
    for name in ("clips", "clip_signals"):  # the upstream tables (clips: the duplicate gallery's frames)
        (workspace.tables / name).mkdir(parents=True)
        pq.write_table(_table(curation_run, name), workspace.tables / name / "demo.parquet")
    result = dg.materialize(
        [deduped_clips, tiers, sft_candidates],
        resources=build_resources(load_config("tiny", environ={}, home=workspace.home)),
    )
    assert result.success
    rebuilt = pq.read_table(workspace.tables / "tiers.parquet")
    assert (
        rebuilt.column("clip_id").to_pylist() == _table(curation_run, "tiers").column("clip_id").to_pylist()
    )
    assert (workspace.reports / "curation_funnel.png").is_file()


def test_cli_curate_refuses_a_missing_folder(tmp_path: Path) -> None:
    import subprocess
    import sys

    cli = str(Path(sys.executable).parent / "videofoundry")
    result = subprocess.run(
        [cli, "curate", str(tmp_path / "missing"), "--home", str(tmp_path / "home")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "does not exist" in result.stderr and result.stderr.count("\n") == 1
