from pathlib import Path

import pytest

from orchestration.config import ConfigError, load_config


def test_tiny_is_the_default_profile_with_local_services():
    config = load_config(environ={})
    assert config.profile == "tiny"
    assert config.compute.ray_address is None
    assert config.tracking.mlflow_uri is None
    assert config.home == Path(".videofoundry")


def test_paper_profile_scales_compute_by_configuration():
    config = load_config("paper", environ={})
    assert config.compute.num_gpus_per_worker == 1.0
    assert config.compute.num_workers == 8


def test_precedence_profile_then_yaml_then_environment(tmp_path):
    yaml_file = tmp_path / "site.yaml"
    yaml_file.write_text("compute:\n  ray_address: ray://head:10001\n  num_workers: 4\n")
    env = {
        "VIDEOFOUNDRY_CONFIG": str(yaml_file),
        "VIDEOFOUNDRY_COMPUTE__NUM_WORKERS": "16",
        "VIDEOFOUNDRY_TRACKING__MLFLOW_URI": "http://mlflow:5000",
        "VIDEOFOUNDRY_HOME": str(tmp_path / "ws"),
    }
    config = load_config(environ=env)
    assert config.compute.ray_address == "ray://head:10001"  # from YAML
    assert config.compute.num_workers == 16  # env beats YAML
    assert config.tracking.mlflow_uri == "http://mlflow:5000"
    assert config.home == tmp_path / "ws"
    # The registry's code version outside a git checkout is not a config key.
    assert load_config(environ={"VIDEOFOUNDRY_CODE_VERSION": "abc123"}) == load_config(environ={})


def test_the_demo_profile_is_the_tiny_platform():
    demo, tiny = load_config("demo", environ={}), load_config(environ={})
    assert demo.profile == "demo" and demo.model_dump(exclude={"profile"}) == tiny.model_dump(
        exclude={"profile"}
    )


def test_unknown_key_is_named_in_the_error(tmp_path):
    yaml_file = tmp_path / "bad.yaml"
    yaml_file.write_text("compute:\n  ray_adress: ray://x\n")
    with pytest.raises(ConfigError, match=r"compute\.ray_adress.*bad\.yaml|bad\.yaml.*compute\.ray_adress"):
        load_config(config_file=yaml_file, environ={})


def test_bad_value_unknown_profile_and_missing_file_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="num_workers"):
        load_config(environ={"VIDEOFOUNDRY_COMPUTE__NUM_WORKERS": "many"})
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        load_config("huge", environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(config_file=tmp_path / "missing.yaml", environ={})
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(config_file=not_mapping, environ={})
