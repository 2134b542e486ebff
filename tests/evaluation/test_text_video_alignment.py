"""Text–video alignment loads CLIP / X-CLIP from a local folder and ranks matching prompts higher.

The CLIP is tiny, randomly initialised and then trained for a few dozen steps in the test to tell
red frames from blue ones; its tokenizer is a byte-level BPE over a vocabulary written here (no
merges), so nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation.text_video_alignment import TextVideoAligner, TextVideoModelError, clip_pixels
from evaluation.video_eval_config import VideoEvalConfig
from evaluation.video_metrics import evaluate_clips

PROMPTS = ("a red video", "a blue video")
COLOURS = ((220, 30, 30), (30, 30, 220))
HALF = (0.5, 0.5, 0.5)


def _byte_level_vocab() -> dict[str, int]:
    """GPT-2/CLIP byte→unicode alphabet, each symbol alone and word-final, plus the special tokens."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    extra = [b for b in range(256) if b not in printable]
    symbols = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(extra))]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for symbol in symbols:
            vocab[symbol + suffix] = len(vocab)
    return vocab


def _tokenizer():  # type: ignore[no-untyped-def]
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=_byte_level_vocab(), merges=[])


def _video(colour: tuple[int, int, int], rng: np.random.Generator, frames: int = 6) -> np.ndarray:
    base = np.broadcast_to(np.array(colour, dtype=np.int16), (frames, 40, 48, 3))
    return np.clip(base + rng.integers(-25, 26, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def trained_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import CLIPConfig, CLIPModel

    folder = tmp_path_factory.mktemp("tiny-clip")
    tokenizer = _tokenizer()
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**small, "vocab_size": len(tokenizer), "max_position_embeddings": 32, "bos_token_id": 0,
                     "eos_token_id": 1, "pad_token_id": 1},
        vision_config={**small, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    model = CLIPModel(config)
    tokens = tokenizer(list(PROMPTS), padding=True, return_tensors="pt")
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 32-wide model: threads cost more than they gain (10x on a busy machine)
    try:
        for _ in range(60):
            frames = [clip_pixels(_video(c, rng), 1, 32, HALF, HALF) for c in COLOURS]
            loss = model(**tokens, pixel_values=torch.cat(frames), return_loss=True).loss  # 2 pairs
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        '{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}'
    )
    return folder


def test_trained_tiny_clip_ranks_the_matching_prompt_higher(trained_clip: Path) -> None:
    aligner = TextVideoAligner(trained_clip, frames=4)
    assert aligner.name == f"clip:{trained_clip.name}" and aligner.mean == HALF
    rng = np.random.default_rng(1)
    red, blue = _video(COLOURS[0], rng), _video(COLOURS[1], rng)
    scores = {(v, p): aligner.score(video, prompt) for v, video in (("red", red), ("blue", blue))
              for p, prompt in zip(("red", "blue"), PROMPTS, strict=True)}  # fmt: skip
    assert all(-1.0 <= s <= 1.0 for s in scores.values())
    assert scores[("red", "red")] > scores[("red", "blue")] + 0.1
    assert scores[("blue", "blue")] > scores[("blue", "red")] + 0.1


def test_clip_score_is_the_frame_mean_of_cosines(trained_clip: Path) -> None:
    aligner = TextVideoAligner(trained_clip, frames=3)
    rng = np.random.default_rng(2)
    video = np.concatenate([_video(COLOURS[0], rng, 3), _video(COLOURS[1], rng, 3)])
    pixels = aligner.pixels(video)
    assert pixels.shape == (3, 3, 32, 32)
    tokens = aligner.tokenizer([PROMPTS[0]], return_tensors="pt")
    with torch.inference_mode():
        text = aligner.model.get_text_features(**tokens).pooler_output
        images = aligner.model.get_image_features(pixel_values=pixels).pooler_output
    expected = torch.nn.functional.cosine_similarity(images, text, dim=1).mean()
    assert aligner.score(video, PROMPTS[0]) == pytest.approx(float(expected), abs=1e-5)


def test_xclip_folder_loads_and_scores(tmp_path: Path) -> None:
    from transformers import XCLIPConfig, XCLIPModel

    tokenizer = _tokenizer()
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = XCLIPConfig(
        text_config={**small, "vocab_size": len(tokenizer), "max_position_embeddings": 32, "bos_token_id": 0,
                     "eos_token_id": 1, "pad_token_id": 1},
        vision_config={**small, "image_size": 32, "patch_size": 8, "num_frames": 4, "mit_hidden_size": 32,
                       "mit_intermediate_size": 64, "mit_num_attention_heads": 2},
        projection_dim=32, prompt_num_attention_heads=2,
    )  # fmt: skip
    torch.manual_seed(0)
    XCLIPModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    aligner = TextVideoAligner(tmp_path)
    assert aligner.kind == "x-clip" and aligner.frames == 4
    rng = np.random.default_rng(3)
    video = _video(COLOURS[0], rng, frames=3)  # fewer frames than the model takes: frames repeat
    score = aligner.score(video, PROMPTS[0])
    assert -1.0 <= score <= 1.0 and score == aligner.score(video, PROMPTS[0])
    tokens = aligner.tokenizer([PROMPTS[0]], return_tensors="pt")
    with torch.inference_mode():  # the model's own logit, unscaled, is the same cosine
        out = aligner.model(**tokens, pixel_values=aligner.pixels(video)[None])
        logit = float(out.logits_per_video[0, 0] / aligner.model.logit_scale.exp())
    assert score == pytest.approx(logit, abs=1e-5)
    assert score != pytest.approx(aligner.score(video, "zzzz qqqq"), abs=1e-6)


def test_unusable_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(TextVideoModelError, match="no config.json"):
        TextVideoAligner(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(TextVideoModelError, match="neither 'clip' nor 'xclip'"):
        TextVideoAligner(tmp_path)


def test_alignment_status_without_weights_or_prompts(trained_clip: Path) -> None:
    rng = np.random.default_rng(4)
    clips = [("red.mp4", _video(COLOURS[0], rng)), ("blue.mp4", _video(COLOURS[1], rng))]
    fast = {"feature_frames": 2, "analysis_short_side": 48}
    unconfigured = evaluate_clips(clips, list(PROMPTS), config=VideoEvalConfig.preset("tiny", **fast))
    summary = unconfigured.metrics["text_video_alignment"]
    assert summary.status == "not configured" and summary.mean is None and summary.count == 0
    assert all(row["metrics"]["text_video_alignment"] is None for row in unconfigured.videos)
    configured = VideoEvalConfig.preset("tiny", text_video_model=str(trained_clip), **fast)
    assert evaluate_clips(clips, config=configured).metrics["text_video_alignment"].status == "no prompts"
    scored = evaluate_clips(clips, list(PROMPTS), config=configured)
    summary = scored.metrics["text_video_alignment"]
    assert summary.status == "ok" and summary.count == 2 and summary.extractor == f"clip:{trained_clip.name}"
    assert summary.mean is not None and summary.mean > 0.1
