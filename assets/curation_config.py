"""The curation config the assets use: the profile's preset, executed where the compute resource says."""

from curation.config import CurationConfig
from orchestration.resources import ComputeResource, WorkspaceResource


def curation_config(workspace: WorkspaceResource, compute: ComputeResource) -> CurationConfig:
    """`CurationConfig` preset of the workspace profile, on Ray at the compute resource's address."""
    return workspace.config_for(
        CurationConfig, execution={"ray_address": compute.address, "num_cpus": compute.num_cpus}
    )
