"""What the GPU benchmark scripts share: result rows written to a JSON file as they come, the median
time of a few runs, peak GPU memory, building a model directly in its dtype, and the anchor
workload's DiT inputs and FLOP count.

The scripts run as files (`python benchmarks/model_gpu.py`): each puts the repository root on
sys.path, then imports this module as `benchmarks.harness`.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import torch

from model.cuda_allocator import prefer_expandable_segments
from model.dit_config import DiTConfig

prefer_expandable_segments()  # the rows measure what the CLI runs with (set before CUDA allocates)

RESULTS: list[dict[str, Any]] = []


def result_file(out: Path, default_name: str) -> Path:
    """Where a script's `--out` puts its JSON: a directory (such as the device's $OUT) gets
    `default_name` inside it; anything else is the file itself. Resolved before the first row, so a
    long run never measures for minutes and then fails to write."""
    return out / default_name if out.is_dir() else out


def emit(out: Path, name: str, **values: Any) -> None:
    """Print a result row and rewrite `out` with every row so far (atomically: a killed run keeps them)."""
    values["name"] = name
    RESULTS.append(values)
    print(json.dumps(values), flush=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(RESULTS, indent=1))
    os.replace(tmp, out)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], warmup: int = 1, iters: int = 3) -> float:
    """Median seconds of `iters` runs after `warmup` runs (CUDA events on the current device when
    there is one, else wall-clock)."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        if torch.cuda.is_available():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0


def reset() -> None:
    """Free what is collectable and start a new peak-memory window."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def build(
    cls: Callable[..., torch.nn.Module], device: str | torch.device, dtype: torch.dtype, *args: Any, **kw: Any
) -> Any:
    """Construct directly in `dtype` on `device` (a 13B model never exists in float32)."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            return cls(*args, **kw)
    finally:
        torch.set_default_dtype(default)


def dit_inputs(
    cfg: DiTConfig,
    grid: tuple[int, int, int],
    device: str | torch.device,
    dtype: torch.dtype,
    text: int = 256,
) -> tuple[torch.Tensor, ...]:
    """The anchor's inputs, B = 1: latents (1, C, T, H, W), t, `text` text states of which the last
    40 (a quarter of a short text) are padding, mask, pooled text, guidance. Drawn on the CPU from
    seed 0, so every device and every rank gets the same values."""
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(1, cfg.in_channels, *grid, generator=gen).to(device, dtype)
    states = torch.randn(1, text, cfg.text_states_dim, generator=gen).to(device, dtype)
    mask = torch.ones(1, text, dtype=torch.bool, device=device)
    mask[:, text - min(40, text // 4) :] = False
    pooled = torch.randn(1, cfg.text_pooled_dim, generator=gen).to(device, dtype)
    t = torch.full((1,), 500.0, device=device)
    guidance = torch.full((1,), 6000.0, device=device)
    return latents, t, states, mask, pooled, guidance


def dit_flops(n_double: int, n_single: int, s_img: int, s_txt: int, d: int = 3072, mlp: int = 4) -> float:
    """Forward FLOPs as the anchor script counts them (linear layers + attention)."""
    s = s_img + s_txt
    per_token = (3 + 1 + 2 * mlp) * d * d
    linear = 2 * (n_double * per_token * s + n_single * per_token * s)
    return linear + (n_double + n_single) * 4 * s * s * d


class PhasePeaks:
    """Peak memory per phase of a run: `mark(name)` closes the phase that began at the last mark.

    On CUDA: torch.cuda.max_memory_allocated / max_memory_reserved (GiB), reset at each mark. On
    CPU (the smoke modes): the peak live tensor bytes the phase added (model.live_memory), so the
    same rows come out and the smoke tests can check them.
    """

    def __init__(self) -> None:
        from model.live_memory import LiveMemory

        self.rows: dict[str, dict[str, float]] = {}
        self.meter = None if torch.cuda.is_available() else LiveMemory()

    def __enter__(self) -> PhasePeaks:
        if self.meter is not None:
            self.meter.__enter__()
        else:
            sync()
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.meter is not None:
            self.meter.__exit__(*exc)

    def mark(self, name: str) -> None:
        if self.meter is not None:
            self.rows[name] = {"live_peak_gib": round(self.meter.peak_bytes / 2**30, 6)}
            self.meter.reset_peak()
            return
        sync()
        self.rows[name] = {
            "allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2),
        }
        torch.cuda.reset_peak_memory_stats()


class HostTrail:
    """Samples this process's RSS and the host's available memory in a thread while in use. The
    row gets the peak RSS and the least available; a JSON line is printed every `every_s` seconds,
    so a run the OOM killer stops still leaves in its output how host memory went."""

    def __init__(self, label: str, interval_s: float = 0.5, every_s: float = 10.0) -> None:
        self.label, self.interval_s, self.every_s = label, interval_s, every_s
        self.peak_rss = 0
        self.min_available = psutil.virtual_memory().total
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"host-trail-{label}", daemon=True)

    def _sample(self) -> tuple[int, int]:
        rss, available = psutil.Process().memory_info().rss, psutil.virtual_memory().available
        self.peak_rss, self.min_available = max(self.peak_rss, rss), min(self.min_available, available)
        return rss, available

    def _run(self) -> None:
        start = last = time.monotonic()
        while not self._stop.wait(self.interval_s):
            rss, available = self._sample()
            if time.monotonic() - last >= self.every_s:
                last = time.monotonic()
                line = {"row": self.label, "t_s": round(last - start), "rss_gib": round(rss / 2**30, 1),
                        "host_available_gib": round(available / 2**30, 1)}  # fmt: skip
                print(json.dumps({"host_memory": line}), flush=True)

    def __enter__(self) -> HostTrail:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def row(self) -> dict[str, float]:
        return {
            "host_peak_rss_gib": round(self.peak_rss / 2**30, 2),
            "host_min_available_gib": round(self.min_available / 2**30, 2),
        }


def explain_peak(fn: Callable[[], object], device: str = "cuda", top: int = 12) -> dict[str, Any]:
    """Run fn once under model.live_memory.LiveMemory: the peak bytes of tensors it created on
    `device` and the largest of those alive at that peak (what to shrink). Adds Python work per
    operator (seconds for a 13B step), so it runs apart from the timed steps."""
    from model.live_memory import LiveMemory

    with LiveMemory(device) as meter:
        fn()
    return {
        "live_peak_gib": round(meter.peak_bytes / 2**30, 3),
        "live_peak_bytes": meter.peak_bytes,
        "host_peak_gib": round(meter.peak_host_bytes / 2**30, 3),
        "top": [
            {"bytes": t.nbytes, "op": t.op, "shape": list(t.shape), "dtype": str(t.dtype)}
            for t in meter.peak_tensors(top)
        ],
    }
