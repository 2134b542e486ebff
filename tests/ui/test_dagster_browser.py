"""A real browser (Playwright driving Debian's /usr/bin/chromium, headless) on the Dagster UI over a
workspace `run_lineage` materialized: the run is a run of the `lineage` job (not an ad-hoc
`__ephemeral_asset_job__`), the UI offers to re-execute it, and an inline chart shows in place on
the asset's page instead of behind "[Show Markdown]"."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from orchestration.config import load_config
from orchestration.runner import run_lineage
from tests.ui.servers import free_port, stop, wait_until_answering

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow  # the Dagster webserver takes 15-40 s to load its code location

TOY_DEFINITIONS = textwrap.dedent(
    """
    import dagster as dg

    from orchestration.inline_charts import bar_chart
    from orchestration.jobs import with_lineage_jobs


    @dg.asset
    def funnel() -> dg.MaterializeResult:
        rows = [("raw videos", 120.0), ("clips", 90.0), ("kept", 40.0)]
        return dg.MaterializeResult(metadata={"funnel_chart": bar_chart(rows, "clips per stage")})


    @dg.asset(deps=[funnel])
    def report() -> None:
        pass


    defs = with_lineage_jobs(dg.Definitions(assets=[funnel, report]))
    """
)


def test_the_ui_shows_one_lineage_job_run_re_executable_and_the_chart_inline(
    browser: Browser, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    module = tmp_path / "toy_defs.py"
    module.write_text(TOY_DEFINITIONS)
    sys.path.insert(0, str(tmp_path))
    try:
        import toy_defs  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    config = load_config(home=tmp_path / "home", environ={})
    summary = run_lineage(toy_defs.defs, config)
    assert summary.success and len(summary.job_runs) == 1
    run_id = summary.job_runs[0]

    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(config.home / "dagster")}
    web = Path(sys.executable).parent / "dagster-webserver"
    log = (tmp_path / "webserver.log").open("w")
    proc = subprocess.Popen(
        [str(web), "-f", str(module), "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(proc, base + "/server_info", tmp_path / "webserver.log")
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/runs/{run_id}", timeout=60_000)
        expect(page.get_by_text("lineage").first).to_be_visible(timeout=60_000)
        assert page.get_by_text("__ephemeral_asset_job__").count() == 0
        reexecute = page.get_by_role("button", name=re.compile("Re-execute"))
        expect(reexecute.first).to_be_enabled(timeout=30_000)

        page.goto(f"{base}/assets/funnel?view=events", timeout=60_000)
        chart = page.locator('img[alt="clips per stage"]')
        expect(chart.first).to_be_visible(timeout=60_000)
        assert (chart.first.get_attribute("src") or "").startswith("data:image/")
        box = chart.first.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] >= 30  # drawn, not a broken icon
        assert page.get_by_text("[Show Markdown]").count() == 0
    finally:
        stop(proc)
        log.close()
        log.close()
