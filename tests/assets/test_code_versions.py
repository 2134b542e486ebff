"""Every asset declares a code version derived from the source it runs, and every asset body is thin."""

import ast
import shutil
from pathlib import Path

import pytest

from assets.code_versions import REPOSITORY, module_code_version, source_closure
from orchestration.config import load_config
from orchestration.definitions import build_definitions

# Every asset of the lineage and the module that defines it.
ASSET_MODULES = {
    "raw_videos": "assets.raw_videos",
    "clips": "assets.clips",
    "clip_signals": "assets.clip_signals",
    "deduped_clips": "assets.deduped_clips",
    "tiers": "assets.tiers",
    "sft_candidates": "assets.tiers",
    "captions": "assets.captions",
    "sft_set": "assets.sft_set",
    "vae": "assets.vae",
    "vae_eval": "assets.vae",
    "latents": "assets.dit",
    "dit_image_256": "assets.dit",
    "dit_image_mixscale": "assets.dit",
    "dit_video_low_short": "assets.dit",
    "dit_video_low_long": "assets.dit",
    "dit_video_high_long": "assets.dit",
    "dit_sft": "assets.dit",
    "generations": "assets.evaluation",
    "human_eval": "assets.evaluation",
    "champion": "assets.evaluation",
    "scaling_sweep_runs": "assets.scaling",
    "scaling_laws": "assets.scaling",
}
MAX_BODY_LINES = 30


def test_every_asset_declares_the_code_version_of_its_module(tmp_path: Path) -> None:
    defs = build_definitions(load_config(home=tmp_path, environ={}))
    versions = {
        key.to_user_string(): definition.get_asset_spec(key).code_version
        for definition in defs.assets or []
        for key in definition.keys  # type: ignore[union-attr]
    }
    assert sorted(versions) == sorted(ASSET_MODULES)
    for asset, module in ASSET_MODULES.items():
        assert versions[asset] == module_code_version(module), asset
    assert versions["generations"] != versions["tiers"] != versions["raw_videos"]


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text.encode())


def test_a_version_follows_the_imports_it_runs_and_nothing_else(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "lineage/__init__.py": "",
            "lineage/asset.py": (
                "from typing import TYPE_CHECKING\n\nimport numpy\n\nfrom lineage.domain import compute\n\n"
                "if TYPE_CHECKING:\n    from lineage import typing_only\n"
            ),
            "lineage/domain.py": "def compute():\n    from .helpers import helper\n\n    return helper()\n",
            "lineage/helpers.py": "def helper():\n    return 1\n",
            "lineage/typing_only.py": "X = 1\n",
            "lineage/unrelated.py": "Y = 2\n",
        },
    )
    assert source_closure("lineage.asset", tmp_path) == [
        "lineage",
        "lineage.asset",
        "lineage.domain",
        "lineage.helpers",
    ]
    before = module_code_version("lineage.asset", tmp_path)
    assert len(before) == 16 and int(before, 16) >= 0

    _write(tmp_path, {"lineage/unrelated.py": "Y = 3\n", "lineage/typing_only.py": "X = 2\n"})
    assert module_code_version("lineage.asset", tmp_path) == before

    # The same files elsewhere, with Windows line endings: the same version.
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "lineage", copy / "lineage")
    _write(copy, {"lineage/helpers.py": "def helper():\r\n    return 1\r\n"})
    assert module_code_version("lineage.asset", copy) == before

    # A function-level import two modules away is part of the computation.
    _write(tmp_path, {"lineage/helpers.py": "def helper():\n    return 2\n"})
    assert module_code_version("lineage.asset", tmp_path) != before

    with pytest.raises(ModuleNotFoundError, match="no source file for 'lineage.missing'"):
        module_code_version("lineage.missing", tmp_path)


def _is_asset_decorator(decorator: ast.expr) -> bool:
    """`@dg.asset(...)` or `@versioned_asset(...)`."""
    if not isinstance(decorator, ast.Call):
        return False
    return (
        getattr(decorator.func, "attr", None) == "asset"
        or getattr(decorator.func, "id", None) == "versioned_asset"
    )


def _asset_bodies() -> list[tuple[str, str, int]]:
    """(module, function, body lines after the docstring) of every asset function in assets/."""
    bodies = []
    for path in sorted((REPOSITORY / "assets").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(_is_asset_decorator(d) for d in node.decorator_list):
                assert node.end_lineno is not None
                first = node.body[1] if ast.get_docstring(node) is not None else node.body[0]
                bodies.append((f"assets.{path.stem}", node.name, node.end_lineno - first.lineno + 1))
    return bodies


@pytest.mark.parametrize(("module", "function", "lines"), _asset_bodies())
def test_asset_bodies_are_thin(module: str, function: str, lines: int) -> None:
    assert lines <= MAX_BODY_LINES, (
        f"{module}.{function} has {lines} lines; move the logic into a domain function"
    )


def test_assets_hold_no_sql() -> None:
    for path in sorted((REPOSITORY / "assets").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                )
                assert not any(n.split(".")[0] == "sqlalchemy" for n in names), path.name
                assert not any(
                    n.startswith(("evaluation.human_eval.schema", "evaluation.human_eval.store"))
                    for n in names
                ), path.name
