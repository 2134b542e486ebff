"""Prompt sets for campaigns: a small built-in set and CSV / JSONL import.

File formats (UTF-8):
    CSV   header with `text` (required), `key` and `category` (optional); one prompt per row.
    JSONL one object per line with the same fields.
A missing `key` becomes `p0001`, `p0002`, … in file order. Keys must be unique within a file.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path


class PromptFileError(ValueError):
    """A prompt file is missing, has an unknown format, or holds a malformed/duplicate row."""


@dataclass(frozen=True)
class PromptSpec:
    key: str
    text: str
    category: str | None = None


_BUILTIN: tuple[tuple[str, str], ...] = (
    ("people", "A woman in a red coat walks through a snowy street at dusk, camera tracking beside her."),
    ("people", "A chef flips vegetables in a flaming wok in a busy restaurant kitchen, close-up."),
    ("animals", "A golden retriever runs across a green meadow toward the camera in slow motion."),
    ("animals", "A cat jumps from a windowsill onto a wooden table and knocks over a cup."),
    ("nature", "Aerial shot of waves crashing against black volcanic rocks under a stormy sky."),
    ("nature", "Time-lapse of clouds rolling over a mountain ridge at sunrise, static shot."),
    ("vehicles", "A red sports car drifts around a corner on a wet race track, camera panning left."),
    ("vehicles", "An old steam train crosses a stone bridge in autumn, wide shot."),
    ("scenes", "Neon signs reflect on the wet pavement of a night market as people pass by, handheld."),
    ("scenes", "Zoom in on a lighthouse on a cliff as its beam sweeps across the fog."),
    ("fantasy", "An astronaut floats above a lake of pink crystals, soft light, dreamy atmosphere."),
    ("text", "Waves on a sandy beach form the words WAKE UP as the water recedes."),
)

#: The embedded default prompt set (12 prompts across 6 categories).
BUILTIN_PROMPTS: tuple[PromptSpec, ...] = tuple(
    PromptSpec(key=f"builtin-{index:02d}", text=text, category=category)
    for index, (category, text) in enumerate(_BUILTIN, start=1)
)


def load_prompts(path: Path | str) -> list[PromptSpec]:
    """Read a `.csv` or `.jsonl` prompt file; raises `PromptFileError` naming the file and row."""
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"prompt file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _read_csv(path)
    elif suffix in {".jsonl", ".ndjson"}:
        rows = _read_jsonl(path)
    else:
        raise PromptFileError(f"prompt file {path}: unknown format {suffix!r} (use .csv or .jsonl)")
    prompts: list[PromptSpec] = []
    seen: set[str] = set()
    for line_no, row in rows:
        text = str(row.get("text") or "").strip()
        if not text:
            raise PromptFileError(f"prompt file {path} line {line_no}: empty or missing 'text'")
        key = str(row.get("key") or "").strip() or f"p{len(prompts) + 1:04d}"
        if key in seen:
            raise PromptFileError(f"prompt file {path} line {line_no}: duplicate key {key!r}")
        seen.add(key)
        category = str(row.get("category") or "").strip() or None
        prompts.append(PromptSpec(key=key, text=text, category=category))
    if not prompts:
        raise PromptFileError(f"prompt file {path} holds no prompts")
    return prompts


def _read_csv(path: Path) -> list[tuple[int, dict[str, object]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "text" not in reader.fieldnames:
            raise PromptFileError(f"prompt file {path}: the CSV header must name a 'text' column")
        return [(index + 2, dict(row)) for index, row in enumerate(reader)]


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, object]]]:
    rows: list[tuple[int, dict[str, object]]] = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise PromptFileError(f"prompt file {path} line {line_no}: invalid JSON ({error.msg})") from error
        if not isinstance(row, dict):
            raise PromptFileError(f"prompt file {path} line {line_no}: expected a JSON object")
        rows.append((line_no, row))
    return rows
