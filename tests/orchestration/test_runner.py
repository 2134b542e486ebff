"""`run_lineage` reruns only what Dagster reports as missing or stale."""

import dagster as dg
import pytest

from orchestration.config import load_config
from orchestration.jobs import with_lineage_jobs
from orchestration.runner import SelectionError, run_lineage


def _toy_definitions(source: dict, calls: list) -> dg.Definitions:
    @dg.asset
    def observed():
        calls.append("observed")
        return dg.MaterializeResult(data_version=dg.DataVersion(source["version"]))

    @dg.asset(deps=[observed], code_version="1")
    def derived():
        calls.append("derived")

    @dg.asset(deps=[derived], code_version="1")
    def report():
        calls.append("report")

    return dg.Definitions(assets=[observed, derived, report])


def test_second_run_reuses_unchanged_assets_and_a_change_propagates(tmp_path):
    config = load_config(home=tmp_path / "home", environ={})
    source, calls = {"version": "v1"}, []
    defs = _toy_definitions(source, calls)

    first = run_lineage(defs, config)
    assert calls == ["observed", "derived", "report"] and first.count("ok") == 3

    calls.clear()
    second = run_lineage(defs, config)
    assert calls == ["observed"]  # the root observes the world; the rest is fresh
    assert second.count("fresh") == 2 and second.success

    source["version"] = "v2"
    calls.clear()
    run_lineage(defs, config)
    assert calls == ["observed", "derived", "report"]

    calls.clear()
    run_lineage(defs, config, select="key:report", force=True)
    assert calls == ["report"]


def test_selection_errors_name_the_selection(tmp_path):
    config = load_config(home=tmp_path / "home", environ={})
    defs = _toy_definitions({"version": "v"}, [])
    with pytest.raises(SelectionError, match="'key:missing' matches no asset"):
        run_lineage(defs, config, select="key:missing")


def test_a_failing_blocking_check_stops_the_downstream_asset(tmp_path):
    calls = []

    @dg.asset
    def table():
        calls.append("table")

    @dg.asset_check(asset=table, blocking=True)
    def table_is_valid() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, description="2 duplicate clip ids")

    @dg.asset(deps=[table])
    def model():
        calls.append("model")

    defs = dg.Definitions(assets=[table, model], asset_checks=[table_is_valid])
    summary = run_lineage(defs, load_config(home=tmp_path / "home", environ={}))
    assert calls == ["table"]
    assert not summary.success
    assert summary.runs == [("table", None, "failed")]


def test_console_shows_warnings_only_and_the_log_file_every_event(tmp_path, capfd):
    from orchestration.runner import dagster_instance, dagster_log
    from orchestration.workspace import Workspace

    @dg.asset
    def chatty(context: dg.AssetExecutionContext) -> None:
        context.log.info("chatty info line")
        context.log.warning("chatty warns")

    workspace = Workspace.at(tmp_path / "home").ensure()
    workspace.dagster_home.mkdir(parents=True, exist_ok=True)
    (workspace.dagster_home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
    )  # an older workspace
    capfd.readouterr()
    summary = run_lineage(dg.Definitions(assets=[chatty]), load_config(home=workspace.home, environ={}))
    console = capfd.readouterr().err
    assert summary.success and "chatty warns" in console
    assert "RUN_START" not in console and "STEP_SUCCESS" not in console and "chatty info line" not in console
    log = dagster_log(workspace).read_text()
    assert "DEBUG" in log and "RUN_START" in log and "STEP_SUCCESS" in log and "chatty info line" in log
    assert dagster_instance(workspace).get_handlers()  # the rewritten dagster.yaml names the file handler


def test_the_selection_runs_as_one_named_job_run_the_ui_can_re_execute(tmp_path):
    from orchestration.runner import dagster_instance
    from orchestration.workspace import Workspace

    config = load_config(home=tmp_path / "home", environ={})
    source, calls = {"version": "v1"}, []
    defs = _toy_definitions(source, calls)
    first = run_lineage(defs, config)
    assert len(first.job_runs) == 1  # three assets, one run
    instance = dagster_instance(Workspace.at(config.home))
    run = instance.get_run_by_id(first.job_runs[0])
    assert run is not None and run.job_name == "lineage" and run.is_success
    assert {key.to_user_string() for key in run.asset_selection or ()} == {"observed", "derived", "report"}

    source["version"] = "v2"  # the root's data changes: a second run takes its children
    second = run_lineage(defs, config)
    runs = [instance.get_run_by_id(run_id) for run_id in second.job_runs]
    assert [sorted(k.to_user_string() for k in r.asset_selection or ()) for r in runs if r] == [
        ["observed"],
        ["derived", "report"],
    ]
    assert all(r is not None and r.job_name == "lineage" for r in runs)
    # Re-executing a run (what the UI's button does) goes through the same job and assets.
    job = with_lineage_jobs(defs).resolve_job_def("lineage")
    again = job.execute_in_process(instance=instance, asset_selection=list(runs[1].asset_selection or ()))
    assert again.success and calls[-2:] == ["derived", "report"]
