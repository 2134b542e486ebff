"""Curation fixtures: labels, one bad-input folder, one Ray and one curation run per session.

The demo corpus itself (`demo_corpus_dir`) is a session fixture of tests/conftest.py, shared with
the end-to-end lineage test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from curation.config import CurationConfig
from curation.democorpus.bad_inputs import BadInput, build_bad_inputs
from curation.democorpus.labels import CorpusLabels, load_labels
from curation.ingest import scan_batch
from curation.pipeline import CurationResult, curate


@pytest.fixture(scope="session")
def demo_labels(demo_corpus_dir: Path) -> CorpusLabels:
    """The validated labels of the session corpus."""
    return load_labels(demo_corpus_dir / "labels.json")


@pytest.fixture(scope="session")
def bad_inputs_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, BadInput]]:
    """A folder of awkward inputs and its manifest."""
    out_dir = tmp_path_factory.mktemp("bad_inputs")
    return out_dir, build_bad_inputs(out_dir)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray (loopback, no dashboard, 2 CPUs) for every curation test that needs it."""
    from media.ray_cluster import ensure_ray, shutdown_ray

    ensure_ray(None, 2)
    yield
    shutdown_ray()


@dataclass
class CurationRun:
    """The whole chain run once over the demo corpus plus the bad inputs, on Ray."""

    raw_dir: Path
    batch: str
    home: Path
    result: CurationResult
    config: CurationConfig
    raw: pa.Table
    bad_inputs: dict[str, BadInput]


@pytest.fixture(scope="session")
def curation_run(
    tmp_path_factory: pytest.TempPathFactory,
    demo_corpus_dir: Path,
    bad_inputs_dir: tuple[Path, dict[str, BadInput]],
    ray_session: None,
) -> CurationRun:
    """raw/demo/ holds links to the corpus videos and, under bad/, to the awkward inputs."""
    root = tmp_path_factory.mktemp("curation_run")
    batch_dir = root / "raw" / "demo"
    (batch_dir / "bad").mkdir(parents=True)
    for video in sorted(demo_corpus_dir.glob("*.mp4")):
        (batch_dir / video.name).symlink_to(video)
    bad_dir, manifest = bad_inputs_dir
    for name in manifest:
        (batch_dir / "bad" / name).symlink_to(bad_dir / name)
    raw = scan_batch(root / "raw", "demo", progress=False)
    config = CurationConfig.preset("tiny")
    home = root / "home"
    result = curate(raw, "demo", home / "tables", home / "quarantine", home / "reports", config)
    return CurationRun(root / "raw", "demo", home, result, config, raw, manifest)
