"""Deployment files load and agree with each other and with the platform's configuration keys."""

import json
import re
from pathlib import Path

import dagster as dg
import yaml

from orchestration.config import PlatformConfig

INFRA = Path(__file__).resolve().parents[2] / "infra"


def test_compose_services_reference_only_declared_things():
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "seaweedfs", "mlflow", "lakefs", "dagster-webserver", "dagster-daemon"} <= set(
        services
    )
    volumes = set(compose["volumes"])
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (INFRA / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} mounts undeclared volume {source}"
        for port in service.get("ports", []):
            host, container = port.split(":")
            assert host.isdigit() and container.isdigit()


def test_compose_environment_uses_real_configuration_keys():
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    env = compose["services"]["dagster-webserver"]["environment"]
    sections = PlatformConfig.model_fields
    for key in env:
        match = re.fullmatch(r"VIDEOFOUNDRY_([A-Z]+)__([A-Z_]+)", key)
        if match:
            section, field = match.group(1).lower(), match.group(2).lower()
            assert section in sections, key
            assert field in sections[section].annotation.model_fields, key


def test_postgres_holds_a_database_per_service():
    sql = (INFRA / "postgres" / "init.sql").read_text()
    assert set(re.findall(r"CREATE DATABASE (\w+);", sql)) == {"dagster", "mlflow", "lakefs", "human_eval"}


def test_dagster_instance_and_workspace_files(tmp_path):
    instance = yaml.safe_load((INFRA / "dagster" / "dagster.yaml").read_text())
    assert instance["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    # Dagster accepts the run limits (Postgres and Kubernetes themselves are not here to test).
    local = {k: v for k, v in instance.items() if k not in ("storage", "run_launcher")}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(local))
    runs = dg.DagsterInstance.from_config(str(tmp_path)).get_concurrency_config().run_queue_config
    assert runs is not None and runs.max_concurrent_runs == 8
    assert runs.tag_concurrency_limits == [{"key": "videofoundry/gpu", "limit": 2}]
    workspace = yaml.safe_load((INFRA / "dagster" / "workspace.yaml").read_text())
    target = workspace["load_from"][0]["python_module"]
    assert target == {"module_name": "orchestration.definitions", "attribute": "defs"}


def test_ray_files_load():
    cluster = yaml.safe_load((INFRA / "ray" / "cluster.yaml").read_text())
    assert "--ray-client-server-port=10001" in " ".join(cluster["head_start_ray_commands"])
    job = yaml.safe_load((INFRA / "ray" / "rayjob.yaml").read_text())
    assert job["kind"] == "RayJob" and job["spec"]["entrypoint"].startswith("videofoundry train-dit")
    env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])["env_vars"]
    from training.parallel.launch import NCCL_SAFE_ENV

    for name, value in NCCL_SAFE_ENV.items():
        assert env[name] == value, name


def test_kuberay_cluster_file_matches_the_installed_ray():
    import ray

    cluster = yaml.safe_load((INFRA / "ray" / "raycluster.yaml").read_text())
    assert cluster["kind"] == "RayCluster" and cluster["spec"]["rayVersion"] == ray.__version__
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["ray-client-server-port"] == "10001"
    assert {group["groupName"] for group in cluster["spec"]["workerGroupSpecs"]} == {"cpu", "gpu"}
    assert "VIDEOFOUNDRY_COMPUTE__RAY_ADDRESS=ray://" in (INFRA / "ray" / "kuberay.md").read_text()


def test_deepspeed_configs():
    for stage in (2, 3):
        config = json.loads((INFRA / "deepspeed" / f"zero{stage}.json").read_text())
        assert config["zero_optimization"]["stage"] == stage
        assert config["bf16"]["enabled"] is True
