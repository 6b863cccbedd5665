"""The write side in a real browser (Debian's headless Chromium driven by Playwright) on the
demo: an operator sees the drift, grants the write scope on GitLab's consent page, changes a
runner type's ``concurrent``, sees the loader's message for a bad value, then the diff, opens
the merge request and pauses a runner after confirming; a viewer sees no write control. No CSP
violation or script error on the way. Screenshots go to test-output/dashboard/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from dashboard.demo import DemoRun
from tests.support.browser import demo_served as served, launch, shot

WAIT = 15_000  # ms


@pytest.fixture
def demo_served() -> Iterator[tuple[DemoRun, str]]:
    with served(DASHBOARD_GITLAB_POLL="1s") as running:
        yield running


def signed_in_page(browser: Browser, base: str, problems: list[str], gitlab_url: str) -> Page:
    """A new browser profile signed in as whoever the fake GitLab has signed in."""

    def on_console(message: ConsoleMessage) -> None:
        where = message.location.get("url", "")
        if message.type in ("error", "warning") and not where.startswith(gitlab_url):
            problems.append(f"{message.type}: {message.text} at {where}")

    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.goto(f"{base}/")
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{base}/e/dev/")
    return page


def test_an_operator_changes_concurrent_and_a_viewer_sees_no_write_control(demo_served):
    running, base = demo_served
    demo = running.demo
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = signed_in_page(browser, base, problems, running.gitlab_url)

            # 1. drift: the demo's docker manager was applied with an older concurrent
            page.get_by_role("link", name="Drift").click()
            rows = page.locator(".drift-table tbody tr")
            expect(rows.filter(has_text="concurrent")).to_contain_text("10", timeout=WAIT)
            expect(rows.filter(has_text="paused")).to_contain_text("true")
            shot(page, "10-drift")

            # 2. the first write asks GitLab for the api scope
            page.get_by_role("link", name="Propose a change…").click()
            expect(page.get_by_role("button", name="Authorize")).to_be_visible()
            assert page.url.startswith(f"{running.gitlab_url}/oauth/authorize?")
            expect(page.locator("body")).to_contain_text("api")
            shot(page, "11-step-up-consent")
            page.get_by_role("button", name="Authorize").click()
            page.wait_for_url(f"{base}/e/dev/changes/new")

            # 3. a bad value: the loader's message beside the field, no way to submit
            concurrent = page.locator("#runners-types-docker-concurrent")
            expect(concurrent).to_have_value("10")
            concurrent.fill("0")
            page.locator("#reason").fill("docker jobs queue every morning")
            page.locator("#preview").click()
            messages = page.locator("#runners-types-docker-concurrent-messages")
            expect(messages).to_contain_text("greater than or equal to 1 (got 0)")
            expect(page.locator("#submit")).to_have_count(0)
            shot(page, "12-change-invalid")

            # 4. a good value: the diff, then the merge request
            page.locator("#runners-types-docker-concurrent").fill("12")
            page.locator("#preview").click()
            expect(page.locator("#diff")).to_contain_text("+            concurrent: 12")
            shot(page, "13-change-diff")
            page.locator("#submit").click()
            link = page.locator("#merge-request")
            expect(link).to_be_visible()
            project = demo.gitlab.project(demo.config_project)
            assert project is not None
            (merge_request,) = project.merge_requests
            expect(link).to_have_attribute("href", merge_request["web_url"])
            assert merge_request["target_branch"] == "main"
            assert merge_request["author"]["username"] == "ada"
            shot(page, "14-merge-request")

            # 5. pause a runner, after a confirmation
            rocky9 = demo.runners["rocky9"]
            page.goto(f"{base}/e/dev/runners/{rocky9}")
            page.locator("#runner-pause").click()
            expect(page.locator("h2#h-confirm")).to_contain_text(f"Pause runner {rocky9}?")
            assert not demo.gitlab.runners[rocky9].paused
            shot(page, "15-pause-confirm")
            page.locator("#confirm").click()
            expect(page.locator("h2#h-done")).to_contain_text("paused")
            assert demo.gitlab.runners[rocky9].paused

            # 6. a viewer: no write control anywhere
            demo.gitlab.sign_in_as(demo.users["grace"])
            viewer = signed_in_page(browser, base, problems, running.gitlab_url)
            expect(viewer.locator(".user")).to_contain_text("viewer")
            viewer.goto(f"{base}/e/dev/drift")
            expect(viewer.locator(".drift-table")).to_be_visible(timeout=WAIT)
            expect(viewer.get_by_text("Propose a change")).to_have_count(0)
            viewer.goto(f"{base}/e/dev/runners/{rocky9}")
            expect(viewer.locator("#runner-detail")).to_be_visible()
            expect(viewer.locator(".write-control")).to_have_count(0)
            shot(viewer, "16-viewer-runner")
        finally:
            browser.close()
    assert problems == []
