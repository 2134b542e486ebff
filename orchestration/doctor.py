"""`videofoundry doctor`: what the platform needs on this machine, what is missing, how to fix it."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

APT_HINT = "apt-get install -y {pkg}  (or: make setup, as root)"


@dataclass(frozen=True)
class Check:
    """One requirement and its state. `required` ones make `doctor` exit non-zero when missing."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _tool(name: str, package: str, version_args: tuple[str, ...] = ("-version",)) -> Check:
    path = shutil.which(name)
    if not path:
        return Check(name, False, "not found on PATH", APT_HINT.format(pkg=package))
    try:
        out = subprocess.run([path, *version_args], capture_output=True, text=True, timeout=20, check=False)
        first = (out.stdout or out.stderr).strip().splitlines()
        return Check(name, True, first[0] if first else path)
    except (OSError, subprocess.TimeoutExpired) as error:
        return Check(name, False, f"{path} does not run: {error}", APT_HINT.format(pkg=package))


def _python(module: str, label: str | None = None, required: bool = True) -> Check:
    try:
        imported = importlib.import_module(module)
    except Exception as error:  # any import failure is a finding, reported with its message
        return Check(label or module, False, f"import failed: {error}", "make setup", required)
    return Check(label or module, True, f"{getattr(imported, '__version__', 'installed')}")


def _file(name: str, path: Path, package: str) -> Check:
    if path.exists():
        return Check(name, True, str(path))
    return Check(name, False, f"{path} missing", APT_HINT.format(pkg=package))


def _gpu() -> Check:
    import torch

    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return Check("gpu", True, f"{torch.cuda.device_count()} CUDA device(s): {names}", required=False)
    return Check(
        "gpu",
        False,
        "no CUDA device: the tiny profile runs on CPU; the paper profile needs GPUs",
        "run on a GPU machine (or a Ray cluster with GPU workers) for the paper profile",
        required=False,
    )


def _ray_roundtrip() -> Check:
    try:
        import ray

        from media.ray_cluster import ensure_ray, shutdown_ray

        started = not ray.is_initialized()
        ensure_ray(None, num_cpus=1)
        value = ray.get(ray.remote(lambda: 41 + 1).remote())
        if started:
            shutdown_ray()
        return Check("ray", value == 42, f"{ray.__version__}, local task round-trip ok")
    except Exception as error:  # a failed start is a finding, reported with its message
        return Check("ray", False, f"local Ray failed to start: {error}", "make setup; check /tmp space")


def run_checks(start_ray: bool = True) -> list[Check]:
    """All checks, in the order printed."""
    checks = [
        _tool("ffmpeg", "ffmpeg"),
        _tool("ffprobe", "ffmpeg"),
        _tool("tesseract", "tesseract-ocr", ("--version",)),
        _tool("chromium", "chromium", ("--version",)),
        _file(
            "brisque-model",
            Path("/usr/share/opencv4/quality/brisque_model_live.yml"),
            "opencv-data",
        ),
        _python("torch"),
        _python("dagster"),
        _python("mlflow"),
        _python("ray"),
        _python("deepspeed", required=False),
        _python("cv2", "opencv"),
        _python("scenedetect"),
        _python("av", "pyav"),
        _python("gradio"),
        _gpu(),
    ]
    if start_ray:
        checks.append(_ray_roundtrip())
    return checks
