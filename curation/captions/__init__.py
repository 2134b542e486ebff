"""Structured captions (paper §5.1): schema, backends (VLM endpoint / local VLM, offline facts,
demo-corpus ground truth) and the captions table (training renders prompts from its JSON:
`training.dit.prompts`).

`build_backend(config)` picks the backend named by `CaptionConfig.backend`.
"""

from __future__ import annotations

from pathlib import Path

from curation.captions.backends.base import CaptionBackend
from curation.captions.config import CaptionConfig, EndpointConfig
from curation.captions.keyframes import ClipInput
from curation.captions.schema import CaptionRecord, CaptionText, StructuredCaption
from curation.captions.table import CAPTIONS_SCHEMA, caption_clips, caption_problems, records_to_table

__all__ = [
    "CAPTIONS_SCHEMA",
    "CaptionBackend",
    "CaptionConfig",
    "CaptionRecord",
    "CaptionText",
    "ClipInput",
    "EndpointConfig",
    "StructuredCaption",
    "build_backend",
    "caption_clips",
    "caption_problems",
    "records_to_table",
]


def build_backend(config: CaptionConfig, labels_path: Path | None = None) -> CaptionBackend:
    """The backend `config.backend` names; `ground_truth` needs the corpus `labels.json` path."""
    from curation.captions.backends.offline import OfflineFactsBackend

    if config.backend == "offline":
        return OfflineFactsBackend(config)
    if config.backend == "endpoint":
        from curation.captions.backends.vlm import EndpointBackend

        return EndpointBackend(config)
    if config.backend == "local_vlm":
        from curation.captions.backends.vlm import LocalVLMBackend

        return LocalVLMBackend(config)
    if labels_path is None:
        raise ValueError("caption backend ground_truth needs the demo corpus labels.json path")
    from curation.captions.backends.ground_truth import GroundTruthBackend

    return GroundTruthBackend(labels_path, fallback=OfflineFactsBackend(config))
