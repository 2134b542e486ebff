"""`cpu_threads(count)`: torch intra-op and OpenCV threads for one block of work, restored after.

Both thread pools are process-wide. In Dagster's in-process executor every asset shares one
process, so a count set for one asset and left behind slows (or oversubscribes) every asset after
it: set it for the block that needs it, never bare.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import cv2


@contextmanager
def cpu_threads(count: int | None) -> Iterator[None]:
    """torch and OpenCV use `count` threads inside the block and what they had before after it
    (None: unchanged)."""
    if count is None:
        yield
        return
    if count < 1:
        raise ValueError(f"cpu_threads must be ≥ 1 or None, got {count}")
    import torch

    torch_before, cv2_before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(count)
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        torch.set_num_threads(torch_before)
        cv2.setNumThreads(cv2_before)
