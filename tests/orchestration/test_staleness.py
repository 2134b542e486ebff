"""Staleness from Dagster's public event log, through the real runner and a real instance.

A small lineage shaped like the platform's: a root partitioned by raw batch, a per-batch asset, an
all-batches merge with a report below it, and a side branch that also reads every batch. The code
versions come from `module_code_version` over a package of domain modules written to tmp_path.
"""

import ast
from pathlib import Path

import dagster as dg
import pytest

from assets.code_versions import REPOSITORY, module_code_version
from assets.partitions import raw_batches
from orchestration.config import load_config
from orchestration.runner import DAGSTER_YAML, dagster_instance, run_lineage
from orchestration.staleness import LineageGraph, Staleness, staleness
from orchestration.workspace import Workspace

DOMAIN = {
    "lineage/__init__.py": "",
    "lineage/per_batch.py": "def double(x):\n    return 2 * x\n",
    "lineage/merged.py": "def total(xs):\n    return sum(xs)\n",
    "lineage/side.py": "def count(xs):\n    return len(xs)\n",
}


class Lineage:
    """The tiny lineage over a workspace; `calls` records every (asset, partition) that ran."""

    def __init__(self, tmp_path: Path) -> None:
        self.code = tmp_path / "code"
        for name, text in DOMAIN.items():
            self.edit(name, text)
        self.config = load_config(home=tmp_path / "home", environ={})
        self.workspace = Workspace.at(self.config.home).ensure()
        self.contents: dict[str, str] = {}
        self.calls: list[tuple[str, str | None]] = []
        for batch in ("b1", "b2"):
            self.add_batch(batch, f"videos of {batch}")

    def edit(self, name: str, text: str) -> None:
        (self.code / name).parent.mkdir(parents=True, exist_ok=True)
        (self.code / name).write_text(text)

    def add_batch(self, batch: str, content: str) -> None:
        (self.workspace.raw / batch).mkdir(exist_ok=True)
        self.contents[batch] = content

    def definitions(self) -> dg.Definitions:
        """Built afresh, as a new process would: code versions read from the files as they are now."""
        calls, contents, code = self.calls, self.contents, self.code

        @dg.asset(partitions_def=raw_batches)
        def raw(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
            calls.append(("raw", context.partition_key))
            return dg.MaterializeResult(data_version=dg.DataVersion(contents[context.partition_key]))

        @dg.asset(
            deps=[raw],
            partitions_def=raw_batches,
            code_version=module_code_version("lineage.per_batch", code),
        )
        def per_batch(context: dg.AssetExecutionContext) -> None:
            calls.append(("per_batch", context.partition_key))

        @dg.asset(deps=[per_batch], code_version=module_code_version("lineage.merged", code))
        def merged() -> None:
            calls.append(("merged", None))

        @dg.asset(deps=[merged], code_version="1")
        def report() -> None:
            calls.append(("report", None))

        @dg.asset(deps=[raw], code_version=module_code_version("lineage.side", code))
        def side() -> None:
            calls.append(("side", None))

        return dg.Definitions(assets=[raw, per_batch, merged, report, side])

    def run(self, **options: object) -> dict[tuple[str, str | None], str]:
        self.calls.clear()
        summary = run_lineage(self.definitions(), self.config, **options)  # type: ignore[arg-type]
        assert summary.success
        return {(asset, partition): outcome for asset, partition, outcome in summary.runs}

    def status(self, asset: str, partition: str | None = None) -> Staleness:
        defs = self.definitions()
        instance = dagster_instance(self.workspace)
        return staleness(instance, LineageGraph.of(defs), dg.AssetKey(asset), partition)


ROOTS = [("raw", "b1"), ("raw", "b2")]


@pytest.fixture
def lineage(tmp_path: Path) -> Lineage:
    lineage = Lineage(tmp_path)
    assert lineage.status("merged") == Staleness("missing")
    first = lineage.run()
    assert set(first.values()) == {"ok"} and len(lineage.calls) == 7
    assert lineage.run() == {
        ("raw", "b1"): "ok",
        ("raw", "b2"): "ok",
        ("merged", None): "fresh",
        ("side", None): "fresh",
        ("per_batch", "b1"): "fresh",
        ("per_batch", "b2"): "fresh",
        ("report", None): "fresh",
    }
    return lineage


def test_a_code_change_reruns_that_asset_and_its_downstream_and_nothing_else(lineage: Lineage) -> None:
    lineage.edit("lineage/merged.py", "def total(xs):\n    return sum(xs) / len(xs)\n")
    stale = lineage.status("merged")
    assert stale.status == "stale" and len(stale.causes) == 1 and stale.causes[0].startswith("code version ")
    assert lineage.status("report") == Staleness("fresh")  # until merged has a new data version

    outcomes = lineage.run()
    assert lineage.calls == [*ROOTS, ("merged", None), ("report", None)]
    assert [key for key, outcome in outcomes.items() if outcome == "fresh"] == [
        ("per_batch", "b1"),
        ("per_batch", "b2"),
        ("side", None),
    ]
    assert lineage.run() and lineage.calls == ROOTS  # and then everything is up to date again


def test_a_changed_batch_reruns_its_partition_and_what_reads_every_batch(lineage: Lineage) -> None:
    lineage.contents["b1"] = "videos of b1, one replaced"
    lineage.run(select="key:raw")
    assert lineage.status("per_batch", "b1") == Staleness("stale", ("raw[b1] has a new data version",))
    assert lineage.status("per_batch", "b2") == Staleness("fresh")
    assert lineage.status("side") == Staleness("stale", ("raw[b1] has a new data version",))

    lineage.run()  # batch by batch: b1's run takes its stale per_batch with the root
    assert lineage.calls[:3] == [("raw", "b1"), ("per_batch", "b1"), ("raw", "b2")]
    # then one run of the unpartitioned rest, in the order Dagster executes it
    assert sorted(lineage.calls[3:]) == [("merged", None), ("report", None), ("side", None)]
    assert lineage.calls.index(("merged", None)) < lineage.calls.index(("report", None))


def test_a_new_batch_is_missing_and_makes_the_all_batch_assets_stale(lineage: Lineage) -> None:
    lineage.add_batch("b3", "videos of b3")
    lineage.run(select="key:raw")
    assert lineage.status("per_batch", "b3") == Staleness("missing")
    assert lineage.status("side") == Staleness("stale", ("raw[b3] has a new data version",))
    lineage.run()
    assert lineage.calls[:4] == [*ROOTS, ("raw", "b3"), ("per_batch", "b3")]
    assert sorted(lineage.calls[4:]) == [("merged", None), ("report", None), ("side", None)]


def test_force_reruns_the_selection_even_when_up_to_date(lineage: Lineage) -> None:
    lineage.run(select="key:merged+", force=True)
    assert lineage.calls == [("merged", None), ("report", None)]


def test_only_public_dagster_apis() -> None:
    private = []
    for path in REPOSITORY.glob("[!.]*/**/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                )
                private += [
                    f"{path.relative_to(REPOSITORY)}: {n}" for n in names if n.startswith("dagster._")
                ]
    assert private == []
    assert "dagster._" not in DAGSTER_YAML
    assert "dagster._" not in (REPOSITORY / "infra" / "dagster" / "dagster.yaml").read_text()
