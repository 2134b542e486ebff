"""`videofoundry eval-videos`: one JSON object, exit 0 whatever the verdict, exit 2 naming bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage

from media.video import write_video
from orchestration.cli import main

PHOTO = Path(skimage.__file__).parent / "data" / "astronaut.png"


def _run(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """Run the CLI entry point in-process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["videofoundry", *argv])
    code = 0
    try:
        main()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`moving`: two 9-frame pans over a photo; `frozen`: the same first frames repeated."""
    root = tmp_path_factory.mktemp("eval-videos")
    photo = cv2.resize(cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB), (256, 256))
    for name in ("moving", "frozen"):
        (root / name).mkdir()
    for index, start in enumerate((0, 80)):
        pan = np.stack([photo[60:124, start + 3 * t : start + 3 * t + 64] for t in range(9)])
        write_video(root / "moving" / f"clip{index}.mp4", pan, fps=8)
        write_video(root / "frozen" / f"clip{index}.mp4", np.repeat(pan[:1], 9, axis=0), fps=8)
    (root / "moving" / "notes.txt").write_text("not a video: ignored")
    return {"root": root, "moving": root / "moving", "frozen": root / "frozen"}


def test_json_report_and_exit_0_whatever_the_verdict(
    folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = folders["root"] / "prompts.json"
    prompts.write_text(json.dumps({"clip0.mp4": "an astronaut", "clip1.mp4": "a flag"}))
    table = folders["root"] / "table.png"
    argv = ["eval-videos", str(folders["moving"]), "--json", "--profile", "tiny", "--prompts", str(prompts)]
    code, out, _ = _run(
        [*argv, "--reference", str(folders["frozen"]), "--table", str(table)], monkeypatch, capsys
    )
    assert code == 0
    report = json.loads(out)
    assert isinstance(report["passed"], bool) and report["preset"] == "tiny"
    assert [v["name"] for v in report["videos"]] == ["clip0.mp4", "clip1.mp4"]
    assert report["videos"][1]["prompt"] == "a flag"
    assert report["metrics"]["text_video_alignment"]["status"] == "not configured"
    assert report["metrics"]["frechet_distance_mobilenet_v2"]["status"] == "ok"
    assert report["metrics"]["dynamic_degree"]["mean"] > 5.0
    assert {g["metric"] for g in report["gates"]} >= {"dynamic_degree", "temporal_flickering"}
    assert table.read_bytes()[:4] == b"\x89PNG"

    code, out, _ = _run(
        ["eval-videos", str(folders["frozen"]), "--json", "--profile", "tiny"], monkeypatch, capsys
    )
    assert code == 0
    frozen = json.loads(out)
    assert frozen["passed"] is False
    failed = {g["metric"] for g in frozen["gates"] if not g["passed"]}
    assert "dynamic_degree" in failed

    code, out, _ = _run(["eval-videos", str(folders["frozen"]), "--profile", "tiny"], monkeypatch, capsys)
    assert code == 0 and out.startswith("2 videos, preset tiny: FAILED") and "dynamic_degree" in out


def test_bad_input_exits_2_naming_it(
    folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root, moving = folders["root"], str(folders["moving"])
    (root / "empty").mkdir(exist_ok=True)
    bad_json = root / "bad.json"
    bad_json.write_text("{not json")
    partial = root / "partial.json"
    partial.write_text(json.dumps({"clip0.mp4": "x", "other.mp4": "y"}))
    cases = [
        (["eval-videos", str(root / "missing")], "DIR", "not a folder"),
        (["eval-videos", str(root / "empty")], "DIR", "no video files"),
        (["eval-videos", moving, "--prompts", str(bad_json)], "--prompts", "not JSON"),
        (["eval-videos", moving, "--prompts", str(partial)], "no prompt for clip1.mp4", "other.mp4"),
        (["eval-videos", moving, "--reference", str(root / "empty")], "--reference", "no video files"),
        (
            ["eval-videos", moving, "--text-video-model", str(root / "nope")],
            "--text-video-model",
            "not a folder",
        ),
    ]
    for argv, names, detail in cases:
        code, out, err = _run([*argv, "--profile", "tiny"], monkeypatch, capsys)
        assert code == 2, (argv, out, err)
        assert err.startswith("error: ") and names in err and detail in err and out == ""
