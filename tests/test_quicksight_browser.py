"""QuickSight dashboards in a real browser: headless Chromium (Debian's) driven by Playwright.

One browser for the module, one page (its own cookies) per viewer. The same values and
security rules are also checked without a browser in ``test_quicksight_dashboards.py``.
"""
from __future__ import annotations

import json
import os

import pytest

from localaws.core.browser import missing_reason, new_page, open_browser
from test_quicksight_dashboards import (SALES, dashboard, embed, expected_by_region,  # noqa: F401
                                        world)

REASON = missing_reason()
if REASON and os.environ.get("CI") != "true":
    pytest.skip(f"no browser for the QuickSight page tests: {REASON}", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    if REASON:
        pytest.fail(f"CI=true but no browser: {REASON}")
    with open_browser() as b:
        yield b


class Viewer:
    """A page of its own, recording console errors and every data response it receives."""

    def __init__(self, browser):
        self.page = new_page(browser, 1100, 700)
        self.errors, self.payloads = [], []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("response", self._record)

    def _record(self, response):
        if "/api/dashboards/" in response.url:
            self.payloads.append(response.text())

    def open(self, url):
        response = self.page.goto(url)
        return response

    def rendered(self):
        self.page.wait_for_selector("body[data-rendered='true']", timeout=60_000)

    def drawn(self, visual_id):
        """The values the chart's Vega view holds, and how many bars its SVG shows."""
        rows = self.page.evaluate(f"window.qsViews[{json.dumps(visual_id)}].data('source_0')")
        bars = self.page.locator(f"[data-visual-id='{visual_id}'] svg g.mark-rect path").count()
        return {r["region"]: round(r["amount_sum"], 6) for r in rows}, bars

    def close(self):
        self.page.context.close()


def test_page_draws_the_bar_chart_and_the_control_filters_it(browser, qs, dashboard):
    viewer = Viewer(browser)
    try:
        viewer.open(embed(qs, dashboard["id"], "qs-alice"))
        viewer.rendered()
        assert viewer.errors == []
        values, bars = viewer.drawn("by-region")
        assert values == expected_by_region(SALES) and bars == len(values)
        kpi = viewer.page.locator("[data-visual-id='total'] .kpi-value").inner_text()
        assert kpi == f"{SALES.amount.sum():,.2f}".rstrip("0").rstrip(".")
        assert viewer.page.locator("[data-visual-id]").count() == 5
        assert viewer.page.locator("[data-visual-id][data-rendered='true']").count() == 5
        viewer.page.select_option("#ctl-region-control", ["East", "North"])
        viewer.rendered()
        values, bars = viewer.drawn("by-region")
        assert values == expected_by_region(SALES[SALES.region.isin(["East", "North"])]) and bars == 2
        assert viewer.errors == []
    finally:
        viewer.close()


def test_embed_url_works_once_and_not_after_expiry(stack, browser, qs, dashboard):
    url = embed(qs, dashboard["id"], "qs-alice")
    first, second = Viewer(browser), Viewer(browser)
    try:
        first.open(url)
        first.rendered()
        response = second.open(url)                     # the same URL again: used up
        assert response.status == 401
        assert "expired or was already used" in second.page.inner_text("body")
        assert second.payloads == []
        late = embed(qs, dashboard["id"], "qs-alice")
        stack.local.clock.advance(6 * 60)               # past the code's 5 minutes
        third = Viewer(browser)
        try:
            assert third.open(late).status == 401
        finally:
            third.close()
    finally:
        first.close()
        second.close()


def test_hidden_column_never_reaches_the_browser_and_rls_limits_rows(browser, qs, dashboard):
    bob = Viewer(browser)
    try:
        bob.open(embed(qs, dashboard["id"], "qs-bob"))
        bob.rendered()
        assert bob.errors == []
        values, bars = bob.drawn("by-region")
        assert values == expected_by_region(SALES[SALES.region.isin(["East", "West"])]) and bars == 2
        assert "don't have access" in bob.page.locator("[data-visual-id='margin-line']").inner_text()
        assert len(bob.payloads) == 5
        hidden = {"margin_avg", "margin_max"}
        for body in map(json.loads, bob.payloads):
            for row in body.get("rows", []):
                assert all(row[k] == "Not Authorized" for k in hidden & set(row))
            for value in (body.get("spec") or {}).get("data", {}).get("values", []):
                assert all(value[k] == "Not Authorized" for k in hidden & set(value))
        restricted = [json.loads(b) for b in bob.payloads if json.loads(b)["visualId"] == "margin-line"]
        assert restricted and all(set(r) == {"visualId", "type", "restricted", "message"} for r in restricted)
        assert all('"North"' not in body for body in bob.payloads)     # RLS: no North row reached bob
    finally:
        bob.close()


def test_screenshot_hook(stack, qs, dashboard):
    png = stack.local.quicksight.screenshot(embed(qs, dashboard["id"], "qs-alice"), width=900, height=600)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == 900 and int.from_bytes(png[20:24], "big") == 600
