"""Model references through a real MLflow SQLite registry: alias, version, run artifact, no champion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.bundle import PIPELINE_FILE
from serving import (
    NoChampionError,
    ServingConfig,
    build_tiny_random,
    generate,
    resolve_reference,
    save_pipeline,
)

SIZE = {"height": 32, "width": 32, "frames": 5, "steps": 2, "seed": 11}
NAME = "videofoundry-dit"


def _register(tracking_uri: str, artifact_root: Path, bundle: Path) -> tuple[str, str]:
    """Log `bundle` as run artifact `pipeline` and register it; returns (run_id, version)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("serving-test")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment("serving-test", artifact_location=artifact_root.as_uri())
    )
    run = client.create_run(experiment_id)
    mlflow.set_tracking_uri(tracking_uri)
    client.log_artifacts(run.info.run_id, str(bundle), artifact_path="pipeline")
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(f"name='{NAME}'"):
        client.create_registered_model(NAME)
    version = client.create_model_version(
        NAME, source=f"runs:/{run.info.run_id}/pipeline", run_id=run.info.run_id
    )
    return run.info.run_id, str(version.version)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    bundles = []
    for seed in (5, 6):  # two "trained" versions: tiny models with other weights than tiny-random
        transformer, vae, _ = build_tiny_random(seed=seed)
        bundles.append(
            save_pipeline(
                root / f"bundle{seed}", transformer, vae, "tiny-random", fps=12, info={"seed": seed}
            )
        )
    run1, v1 = _register(uri, root / "artifacts", bundles[0])
    run2, v2 = _register(uri, root / "artifacts", bundles[1])
    MlflowClient(tracking_uri=uri).set_registered_model_alias(NAME, "champion", v1)
    return {"uri": uri, "root": root, "bundles": bundles, "runs": (run1, run2), "versions": (v1, v2)}


def test_champion_alias_loads_registered_bundle(registry: dict, tiny_config: ServingConfig) -> None:
    uri = str(registry["uri"])
    champion = generate("a lighthouse", model=None, config=tiny_config, tracking_uri=uri, **SIZE)
    explicit = generate(
        "a lighthouse", model=f"models:/{NAME}@champion", config=tiny_config, tracking_uri=uri, **SIZE
    )
    local = generate("a lighthouse", model=str(registry["bundles"][0]), config=tiny_config, **SIZE)
    builtin = generate("a lighthouse", model="tiny-random", config=tiny_config, **SIZE)
    assert champion.metadata["model_version"] == f"{NAME} v1 (@champion)"
    assert champion.metadata["run_id"] == registry["runs"][0]
    assert champion.fps == 12.0  # from the bundle's pipeline.json
    assert np.array_equal(champion.frames, explicit.frames)
    assert np.array_equal(champion.frames, local.frames)  # the registry served exactly the logged weights
    assert not np.array_equal(champion.frames, builtin.frames)


def test_version_number_run_uri_and_alias_move(registry: dict, tiny_config: ServingConfig) -> None:
    from mlflow.tracking import MlflowClient

    uri = str(registry["uri"])
    by_version = generate(
        "a lighthouse", model=f"models:/{NAME}/2", config=tiny_config, tracking_uri=uri, **SIZE
    )
    by_run = generate(
        "a lighthouse",
        model=f"runs:/{registry['runs'][1]}/pipeline",
        config=tiny_config,
        tracking_uri=uri,
        **SIZE,
    )
    assert by_version.metadata["model_version"] == f"{NAME} v2"
    assert np.array_equal(by_version.frames, by_run.frames)
    client = MlflowClient(tracking_uri=uri)
    client.set_registered_model_alias(NAME, "champion", registry["versions"][1])
    try:
        moved = generate("a lighthouse", model=None, config=tiny_config, tracking_uri=uri, **SIZE)
        assert moved.metadata["model_version"] == f"{NAME} v2 (@champion)"  # the alias is followed per call
        assert np.array_equal(moved.frames, by_version.frames)
    finally:
        client.set_registered_model_alias(NAME, "champion", registry["versions"][0])


def test_no_champion_is_a_clear_error(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(
        NoChampionError, match="no 'champion' alias on 'videofoundry-dit'.*--model tiny-random"
    ):
        resolve_reference(None, tracking_uri=uri, cache_dir=tmp_path)


def test_bundle_layout_on_disk(registry: dict) -> None:
    bundle = Path(registry["bundles"][0])
    assert sorted(p.name for p in bundle.iterdir()) == [PIPELINE_FILE, "transformer", "vae"]
    for part in ("transformer", "vae"):
        assert sorted(p.name for p in (bundle / part).iterdir()) == ["config.json", "model.safetensors"]
