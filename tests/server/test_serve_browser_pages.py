"""The runs and studies pages in a real browser: a fixture run shows its plot, the lab verdict shows."""

from __future__ import annotations

import pytest
from neumo.server import create_app

pytestmark = pytest.mark.browser


def test_runs_page_lists_the_run_and_its_page_shows_plots(runs_root, ids, live_server, page, tmp_path):
    with live_server(create_app(runs_dir=runs_root)) as srv:
        page.goto(f"{srv.url}/runs")
        page.wait_for_selector("a.run-link")
        assert page.locator("a.run-link").count() == 3
        page.click(f"a.run-link:text('{ids['train']}')")
        page.wait_for_url(f"**/runs/{ids['train']}")
        page.wait_for_function("() => { const im = document.querySelectorAll('img.plot');"
                               " return im.length === 3 && [...im].every(i => i.complete && i.naturalWidth > 0); }")
        alts = page.locator("img.plot").evaluate_all("ims => ims.map(i => i.alt)")
        assert alts == ["loss against step", "acc against step", "eval_acc against step"]
        assert page.locator("#final").inner_text().split() == ["metric", "value", "test_acc", "0.9000"]
        page.screenshot(path=str(tmp_path / "run-page.png"), full_page=True)
        assert (tmp_path / "run-page.png").stat().st_size > 0
        page.goto(f"{srv.url}/runs/{ids['lab']}")
        page.click("#report-link")
        page.wait_for_url("**/report.html")
        assert "fixture lab report" in page.content()


def test_studies_page_shows_the_verdict_table(runs_root, live_server, page):
    with live_server(create_app(runs_dir=runs_root)) as srv:
        page.goto(f"{srv.url}/studies")
        page.wait_for_selector("#studies table")
        row = page.locator("tr", has_text="F-mlp-digits")
        assert row.locator(".st-holds").inner_text() == "holds"
        assert "test_acc = 0.9700 [0.9452, 0.9948] (expected >= 0.95)" in row.inner_text()


def test_unknown_run_page_is_a_json_404(runs_root, live_server, page):
    with live_server(create_app(runs_dir=runs_root)) as srv:
        resp = page.goto(f"{srv.url}/runs/no-such-run")
        assert resp.status == 404 and resp.json()["error"] == "not_found"
