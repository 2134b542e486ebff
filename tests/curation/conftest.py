"""Curation fixtures: one demo corpus and one bad-input folder per test session.

The corpus takes ~30-60 s on two cores, so it is built once per session. Set
`VIDEOFOUNDRY_TEST_CORPUS=/some/dir` to reuse a corpus across sessions (it is rebuilt when its
labels.json is missing).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from curation.bad_inputs import BadInput, build_bad_inputs
from curation.corpus_labels import CorpusLabels, load_labels
from curation.demo_corpus import build_demo_corpus


@pytest.fixture(scope="session")
def demo_corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the tiny demo corpus (seed 0) and its labels.json."""
    cached = os.environ.get("VIDEOFOUNDRY_TEST_CORPUS")
    out_dir = Path(cached) if cached else tmp_path_factory.mktemp("demo_corpus")
    if not (out_dir / "labels.json").is_file():
        build_demo_corpus(out_dir, seed=0, progress=False)
    return out_dir


@pytest.fixture(scope="session")
def demo_labels(demo_corpus_dir: Path) -> CorpusLabels:
    """The validated labels of the session corpus."""
    return load_labels(demo_corpus_dir / "labels.json")


@pytest.fixture(scope="session")
def bad_inputs_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, BadInput]]:
    """A folder of awkward inputs and its manifest."""
    out_dir = tmp_path_factory.mktemp("bad_inputs")
    return out_dir, build_bad_inputs(out_dir)
