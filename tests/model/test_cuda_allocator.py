"""The CUDA allocator default: expandable segments unless the user set the allocator's config."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from model.cuda_allocator import ALLOC_CONF_ENV, EXPANDABLE_SEGMENTS, prefer_expandable_segments

ROOT = Path(__file__).resolve().parents[2]


def test_fills_in_expandable_segments_when_unset():
    env: dict[str, str] = {}
    assert prefer_expandable_segments(env) == EXPANDABLE_SEGMENTS
    assert env == {ALLOC_CONF_ENV: "expandable_segments:True"}


def test_keeps_the_users_setting_even_an_empty_one():
    env = {ALLOC_CONF_ENV: "max_split_size_mb:512"}
    assert prefer_expandable_segments(env) == "max_split_size_mb:512"
    assert env[ALLOC_CONF_ENV] == "max_split_size_mb:512"
    empty = {ALLOC_CONF_ENV: ""}
    assert prefer_expandable_segments(empty) == ""


def _cli_env_after_main(extra: dict[str, str]) -> str:
    code = textwrap.dedent(
        """
        import os, sys
        sys.argv = ["videofoundry", "--help"]
        from orchestration.cli import main
        try:
            main()
        except SystemExit:
            pass
        print("ALLOC=" + repr(os.environ.get("PYTORCH_CUDA_ALLOC_CONF")))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != ALLOC_CONF_ENV} | extra
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return next(line for line in out.splitlines() if line.startswith("ALLOC="))


def test_the_cli_runs_with_expandable_segments_unless_told_otherwise():
    assert _cli_env_after_main({}) == "ALLOC='expandable_segments:True'"
    assert _cli_env_after_main({ALLOC_CONF_ENV: "backend:native"}) == "ALLOC='backend:native'"
