"""Evaluation sets generated through `serving.generate` with the built-in tiny-random model."""

from evaluation.generations import evaluation_set, serving_generator
from evaluation.human_eval.prompts import PromptSpec
from serving import GenerationSettings

PROMPTS = [PromptSpec("p1", "a red kite over the sea"), PromptSpec("p2", "a cat on a table")]


def test_every_prompt_and_seed_becomes_a_stored_video(tmp_path):
    params = GenerationSettings(height=32, width=32, frames=5, steps=2)
    made = []

    def counting(prompt, seed, model_ref, inner=serving_generator(tmp_path / "videos", params)):
        path = inner(prompt, seed, model_ref)
        made.append(path.stat().st_mtime_ns)
        return path

    table = evaluation_set("tiny-random", PROMPTS, [0, 1], counting).to_pandas()
    assert len(table) == 4
    assert sorted(zip(table.prompt_key, table.seed, strict=True)) == [
        ("p1", 0),
        ("p1", 1),
        ("p2", 0),
        ("p2", 1),
    ]
    assert (table.frames == 5).all() and (table.height == 32).all() and (table.width == 32).all()
    assert table.path.map(lambda p: p.endswith(".mp4")).all()
    assert table.model_version.str.contains("tiny-random").all()
    assert not any(p.name.startswith(".") for p in (tmp_path / "videos").iterdir())  # no temp leftovers

    again = evaluation_set("tiny-random", PROMPTS, [0, 1], counting).to_pandas()
    assert made[:4] == made[4:]  # deterministic outputs are reused, not regenerated
    assert list(again.path) == list(table.path)

    # Other settings make other videos: nothing made with the old settings is reused.
    other = serving_generator(tmp_path / "videos", GenerationSettings(height=32, width=32, frames=5, steps=3))
    more_steps = evaluation_set("tiny-random", PROMPTS[:1], [0], other).to_pandas()
    assert more_steps.path[0] not in set(table.path)
