"""Starting Ray: a local start is never diverted by RAY_ADDRESS; discovery addresses are refused."""

from __future__ import annotations

import pytest
import ray

from media.ray_cluster import RayAddressError, ensure_ray, shutdown_ray


def test_local_start_ignores_a_ray_address_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # A dead address: joining it would fail (or hang), so a working instance proves it was ignored.
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    # A short private folder: Ray's socket paths must stay under the 107-byte limit, and /tmp/ray
    # belongs to the other Ray instances on this machine.
    temp_dir = tmp_path_factory.mktemp("ray")
    shutdown_ray()  # an earlier test of this process may have left its instance up
    ensure_ray(None, num_cpus=1, temp_dir=temp_dir)
    try:
        context = ray.get_runtime_context()
        assert not context.gcs_address.endswith(":1")
        assert ray.get(ray.remote(lambda x: x * 2).remote(21)) == 42
        assert ray.cluster_resources()["CPU"] == 1
        assert any(p.name.startswith("session_") for p in temp_dir.iterdir())
        ensure_ray("127.0.0.1:1")  # already up: a no-op, not a second connection
        assert ray.is_initialized()
    finally:
        shutdown_ray()
    assert not ray.is_initialized()


@pytest.mark.parametrize("address", ["auto", "local"])
def test_discovery_addresses_are_refused(address: str) -> None:
    with pytest.raises(RayAddressError, match="pass None for a local instance"):
        ensure_ray(address)
