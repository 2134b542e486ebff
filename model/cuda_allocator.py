"""The CUDA caching allocator's settings for this platform's processes.

Low-memory training and serving (FP8 base weights, block swap, FFN chunks) free and allocate
tensors of many sizes every block, which fragments the allocator's default fixed-size segments.
Expandable segments grow one mapping per stream instead, so reserved memory stays closer to
allocated. On one H100, an earlier run of the 544×960×129 LoRA step with FP8 + block swap (its
allocator setting was not recorded) reserved 25.5 GiB for a 17.7 GiB allocated peak, over a
24 GiB card; with expandable segments, and after a dtype fix that also shrank the step, it reserved
17.4 GiB for 14.1 GiB allocated under a hard 24 GiB cap. The two changes were not measured apart.

`prefer_expandable_segments()` makes that the default for a process: the CLI's `main`, Dagster's
`build_definitions` and the GPU benchmarks call it at start. It only fills in
`PYTORCH_CUDA_ALLOC_CONF` when the user has not set it, and the allocator reads the variable when
CUDA first allocates, so it must run before that.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

ALLOC_CONF_ENV = "PYTORCH_CUDA_ALLOC_CONF"
EXPANDABLE_SEGMENTS = "expandable_segments:True"


def prefer_expandable_segments(environ: MutableMapping[str, str] | None = None) -> str:
    """Set `PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True` unless it is already set (an explicit
    setting, even an empty one, is the user's choice and is kept). Returns the value in effect."""
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    return env.setdefault(ALLOC_CONF_ENV, EXPANDABLE_SEGMENTS)
