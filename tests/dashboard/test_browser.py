"""The dashboard in a real browser (Debian's headless Chromium driven by Playwright): sign in
through the fake GitLab's OAuth consent page, see the fleet, watch a runner go offline and a
source fail on the open page without a reload, and no CSP violation or script error on the
way. Screenshots go to test-output/dashboard/ (git-ignored) for a human to look at."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import ConsoleMessage, expect, sync_playwright

from dashboard.demo import DemoRun
from tests.support.browser import demo_served as served, launch, shot

LIVE = 15_000  # ms: a poll (1 s here), a render and the SSE hop, with room for a slow machine


@pytest.fixture
def demo_served() -> Iterator[tuple[DemoRun, str]]:
    with served(DASHBOARD_GITLAB_POLL="1s", DASHBOARD_PROMETHEUS_POLL="1s") as running:
        yield running


def test_sign_in_see_the_fleet_and_watch_it_change_live(demo_served):
    running, base = demo_served
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # not the fake GitLab's pages (its consent page has no favicon); CSP reports carry
        # no URL, so they always count
        where = message.location.get("url", "")
        if message.type in ("error", "warning") and not where.startswith(running.gitlab_url):
            problems.append(f"{message.type}: {message.text} at {where}")

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("console", on_console)
            page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))

            # 1. sign in: the app sends the browser to GitLab's consent page, back with a code
            page.goto(f"{base}/")
            authorize = page.get_by_role("button", name="Authorize")
            expect(authorize).to_be_visible()
            assert page.url.startswith(f"{running.gitlab_url}/oauth/authorize?")
            shot(page, "01-gitlab-consent")
            authorize.click()
            page.wait_for_url(f"{base}/e/dev/")
            expect(page.locator(".demo-banner")).to_contain_text("DEMO — fake data")
            expect(page.locator(".user")).to_contain_text("ada")
            expect(page.locator("#live-status")).to_have_text("live", timeout=LIVE)

            # 2. the fleet
            docker = running.demo.runners["docker"]
            row = page.locator(f'#live-runners tr[data-runner-id="{docker}"]')
            expect(row).to_have_attribute("data-status", "online")
            expect(page.locator('tr[data-runner-type="docker"]')).to_be_visible()
            shot(page, "02-fleet")
            page.evaluate("window.__sameDocument = true")

            # 3. a runner goes offline in GitLab: the open page follows, without a reload
            running.demo.gitlab.set_runner_status(docker, "offline")
            expect(row).to_have_attribute("data-status", "offline", timeout=LIVE)
            expect(row.locator(".badge-offline")).to_have_text("offline")
            assert page.evaluate("window.__sameDocument") is True
            shot(page, "03-runner-offline")

            # 4. Prometheus goes down: its banner appears, panels keep their data, marked stale
            running.demo.prometheus.set_outage(True)
            banner = page.locator('.banner-failing[data-source="prometheus"]')
            expect(banner).to_be_visible(timeout=LIVE)
            expect(banner).to_contain_text("Prometheus is failing")
            fleet_panel = page.locator("#live-fleet .panel")
            expect(fleet_panel).to_have_class("panel is-stale")
            expect(fleet_panel.locator('.note-failing[data-source="prometheus"]')).to_contain_text(
                "Showing its last good data"
            )
            assert page.evaluate("window.__sameDocument") is True
            shot(page, "04-prometheus-outage")

            # 5. the other pages, charts drawn from the series API (stale now)
            page.goto(f"{base}/e/dev/scaling")
            expect(page.locator("figure.chart canvas").first).to_be_visible(timeout=LIVE)
            expect(page.locator("figure.chart .chart-note").first).to_contain_text("Stale")
            shot(page, "05-scaling")
            running.demo.prometheus.set_outage(False)
            page.goto(f"{base}/e/dev/cache")
            expect(page.locator(".banner-failing")).to_have_count(0, timeout=LIVE)
            expect(page.locator("figure.chart canvas")).to_have_count(3, timeout=LIVE)
            # the charts follow the source's recovery too
            expect(page.locator("figure.chart .chart-note:visible")).to_have_count(0, timeout=LIVE)
            shot(page, "06-cache")
            page.goto(f"{base}/e/dev/runners/{docker}")
            expect(page.locator("#runner-detail .badge-offline")).to_be_visible()
            page.evaluate("window.__sameDocument = true")
            running.demo.gitlab.set_runner_status(docker, "online")
            expect(page.locator("#runner-detail .badge-online")).to_be_visible(timeout=LIVE)
            assert page.evaluate("window.__sameDocument") is True
            shot(page, "07-runner")

            # 6. a phone-sized screen
            phone = context.new_page()
            phone.set_viewport_size({"width": 390, "height": 844})
            phone.on("console", on_console)
            phone.goto(f"{base}/e/dev/")
            expect(phone.locator('tr[data-runner-type="docker"]')).to_be_visible()
            shot(phone, "08-fleet-phone")
            phone.goto(f"{base}/e/dev/scaling")
            expect(phone.locator("figure.chart canvas")).to_have_count(2, timeout=LIVE)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the scaling page is {width}px wide on a 390px screen"
            shot(phone, "09-scaling-phone")
        finally:
            browser.close()
    assert problems == []
