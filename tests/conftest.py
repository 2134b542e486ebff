"""Suite-wide fixtures and settings: offline hubs, loopback-only Ray, a GPU marker guard."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `gpu`-marked tests where CUDA is absent (CI never has a GPU)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def demo_corpus_dir(tmp_path_factory: pytest.TempPathFactory):
    """The tiny demo corpus (seed 0) and its labels.json, built once per session.

    Set `VIDEOFOUNDRY_TEST_CORPUS=/some/dir` to reuse one across sessions (rebuilt when its
    labels.json is missing).
    """
    from pathlib import Path

    from curation.democorpus.build import build_demo_corpus

    cached = os.environ.get("VIDEOFOUNDRY_TEST_CORPUS")
    out_dir = Path(cached) if cached else tmp_path_factory.mktemp("demo_corpus")
    if not (out_dir / "labels.json").is_file():
        build_demo_corpus(out_dir, seed=0, progress=False)
    return out_dir
