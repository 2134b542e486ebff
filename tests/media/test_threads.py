"""`cpu_threads`: torch and OpenCV thread counts set for a block and restored after it, also on error."""

from __future__ import annotations

import cv2
import pytest
import torch

from media.threads import cpu_threads


def test_threads_are_set_inside_and_restored_after_even_on_error() -> None:
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    with cpu_threads(1):
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (1, 1)
    assert (torch.get_num_threads(), cv2.getNumThreads()) == (2, 2)
    with pytest.raises(RuntimeError, match="boom"), cpu_threads(1):
        raise RuntimeError("boom")
    assert (torch.get_num_threads(), cv2.getNumThreads()) == (2, 2)
    with cpu_threads(None):
        assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match="cpu_threads must be ≥ 1 or None, got 0"), cpu_threads(0):
        pass
