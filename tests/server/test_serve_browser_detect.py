"""The detection page in a real browser: paste, click Detect, one coloured span per token the API returns."""

from __future__ import annotations

import httpx
import pytest

from neumo.server import create_app

pytestmark = pytest.mark.browser

TEXT = ("Scientists in Sydney said on Monday that the reef had bleached again. A spokesman for the "
        "marine park blamed warm water, and divers reported coral dying at depths of twenty metres.")


def _bucket(rank: int) -> str:
    return "b10" if rank <= 10 else "b100" if rank <= 100 else "b1000" if rank <= 1000 else "bmore"


def test_detect_page_colours_every_token(tmp_path, live_server, page):
    with live_server(create_app(runs_dir=tmp_path, model="ngram")) as srv:
        api = httpx.post(f"{srv.url}/api/detect", json={"text": TEXT}, timeout=120).json()
        page.goto(srv.url + "/")
        page.fill("#text", TEXT)
        page.click("#detect")
        page.wait_for_selector("#rendered .tok")
        spans = page.locator("#rendered .tok")
        assert spans.count() == api["n_tokens"] == len(api["tokens"])
        classes = spans.evaluate_all("els => els.map(e => e.className.split(' ')[1])")
        assert classes == [_bucket(t["rank"]) for t in api["tokens"]]
        assert "".join(spans.all_text_contents()) == TEXT
        assert page.locator("#rendered .sent").count() == len(api["sentences"])
        assert page.inner_text("#verdict").lower() == api["verdict"]
        assert page.locator("#legend").inner_text().count("top-") >= 3
        # the tooltip shows the hovered token's rank and entropy
        i = max(range(len(api["tokens"])), key=lambda k: api["tokens"][k]["rank"])
        spans.nth(i).hover()
        tip = page.locator("#tip")
        tip.wait_for(state="visible")
        assert f"rank: {api['tokens'][i]['rank']}" in tip.inner_text() and "entropy" in tip.inner_text()
        page.screenshot(path=str(tmp_path / "detect-page.png"), full_page=True)
        assert (tmp_path / "detect-page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_detect_page_shows_api_errors(tmp_path, live_server, page):
    from neumo.server import Limits

    with live_server(create_app(runs_dir=tmp_path, model="ngram", limits=Limits(max_tokens=10))) as srv:
        page.goto(srv.url + "/")
        page.fill("#text", TEXT)
        page.click("#detect")
        page.wait_for_selector("#status.error")
        assert "above the limit of 10 tokens" in page.inner_text("#status")
        assert page.locator("#rendered .tok").count() == 0
