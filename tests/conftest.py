"""Suite-wide fixtures and settings: offline hubs, loopback-only Ray, a GPU marker guard, the
human-eval store's backends (SQLite files and a private PostgreSQL server)."""

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


@pytest.fixture(scope="session")
def local_postgres():
    """A PostgreSQL server of Debian's `postgresql` package on a free 127.0.0.1 port, started once per
    session (as the `postgres` account when the suite runs as root) and stopped at the end."""
    from evaluation.human_eval.local_postgres import LocalPostgres

    with LocalPostgres() as server:
        yield server


@pytest.fixture(scope="session")
def new_db_url(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """`new_db_url(backend)`: the URL of a new, empty human-eval database on "sqlite" or
    "postgres". PostgreSQL starts on first use only."""
    import itertools

    counter = itertools.count()

    def new(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('human_eval') / 'he.db'}"
        if backend == "postgres":
            return request.getfixturevalue("local_postgres").create_database(f"human_eval_{next(counter)}")
        raise ValueError(f"unknown store backend {backend!r}: use sqlite or postgres")

    return new


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store_backend(request: pytest.FixtureRequest) -> str:
    """Runs a test module once per human-eval store backend (module scope: shared fixtures such as
    a campaign are built once per backend)."""
    return request.param


@pytest.fixture()
def one_torch_thread():
    """One torch thread for the test: tiny tensors on the shared 2-core machine, where a second
    OpenMP thread only spins (10-20x slower). Use with `pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
