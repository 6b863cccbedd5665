"""The read side's pages and JSON API over a FleetStore: what they show, what they escape,
how they say a source is failing or missing, and that nothing is made up."""

from __future__ import annotations

import re

import pytest

from config_model.loader import LoadedConfig
from dashboard.model import Series
from dashboard.views import render_live
from tests.support.dashboard_ui import (
    Clock,
    client,
    fill,
    hub_for,
    markup_of,
    new_store,
    runner,
    ui_app,
)

pytestmark = pytest.mark.anyio

PAGES = ("/e/dev/", "/e/dev/runners/1", "/e/dev/scaling", "/e/dev/cache")
SCRIPT = '<script>alert("owned")</script>'
IMG = "<img src=x onerror=alert(1)>"


@pytest.fixture
def config(example_config: LoadedConfig):
    return example_config.environments["dev"].config


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(config, clock):
    store = new_store(config, clock)
    fill(store)
    return store


async def get(app, path: str):
    async with client(app) as http:
        return await http.get(path, follow_redirects=False)


@pytest.mark.parametrize("path", PAGES)
async def test_pages_render_with_no_inline_script_style_or_handler(store, path: str):
    response = await get(ui_app([hub_for(store)]), path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    markup = markup_of(response.text)
    assert markup.inline_scripts == 0
    assert markup.style_elements == 0
    assert markup.style_attributes == []
    assert markup.handlers == []
    assert "hx-on" not in response.text
    assert 'sse-connect="/api/e/dev/events"' in response.text
    # the user and a sign-out form carrying the CSRF token
    assert "alice" in response.text
    assert 'name="csrf_token" value="csrf-token-value"' in response.text


async def test_fleet_page_shows_each_runner_type_at_a_glance(store):
    html = (await get(ui_app([hub_for(store)]), "/e/dev/")).text
    row = re.search(r'<tr data-runner-type="docker">(.*?)</tr>', html, re.S)
    assert row is not None
    cells = [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in row[1].split("</td>")]
    # managers ready, jobs / capacity (concurrent 10 x 1 replica), saturation, p50, p95, online
    assert cells[:6] == ["docker 1 / 1", "3 / 10", "30 % 30 %", "4.0 s", "42 s", "1 / 1"]
    for type_name in ("dind", "nix", "rocky9"):
        assert f'data-runner-type="{type_name}"' in html
    assert "FailedScheduling" in html
    assert "gitlab-runner-docker" in html


async def test_runner_description_and_tags_are_escaped_everywhere(store, config, clock):
    evil = runner(1, description=f"{SCRIPT} build", tags=(IMG, "ok"))
    store.update("gitlab", runners=(evil,), jobs=())
    app = ui_app([hub_for(store)])
    for path in ("/e/dev/", "/e/dev/runners/1"):
        html = (await get(app, path)).text
        assert SCRIPT not in html
        assert IMG not in html
        assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt; build" in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
    fragments = dict(render_live(store, None))
    assert SCRIPT not in fragments["runners"]
    assert "&lt;script&gt;" in fragments["runners"]
    state = (await get(app, "/api/e/dev/state")).json()
    assert state["runners"][0]["description"] == f"{SCRIPT} build"  # JSON carries data as is


async def test_a_failing_source_names_itself_its_error_since_when_and_marks_data_stale(
    store, clock
):
    clock.advance(300)
    store.failed("gitlab", "GET /groups/demo/runners: 502 Bad Gateway <html>")
    clock.advance(120)
    app = ui_app([hub_for(store)])
    html = (await get(app, "/e/dev/")).text
    # the strip at the top of every page: an alert naming the source, time and error
    banner = re.search(
        r'<p class="banner banner-failing" role="alert" data-source="gitlab">(.*?)</p>', html, re.S
    )
    assert banner is not None
    assert "GitLab is failing" in banner[1]
    assert "since 2026-12-01 12:05:00 UTC" in banner[1]
    assert "502 Bad Gateway &lt;html&gt;" in banner[1]
    # each panel that needs GitLab says so and keeps its last good data, marked stale
    runners = re.search(
        r'<section class="panel is-stale" aria-labelledby="h-runners">(.*?)</section>', html, re.S
    )
    assert runners is not None
    assert '<span class="stale-tag">stale</span>' in runners[1]
    assert "GitLab failing</strong> since 2026-12-01 12:05:00 UTC" in runners[1]
    assert 'datetime="2026-12-01T12:00:00+00:00"' in runners[1]  # last good data, for its age
    assert 'data-runner-id="1"' in runners[1]  # the last good data is still there
    # panels that do not need GitLab are not marked
    assert '<section class="panel" aria-labelledby="h-workloads">' in html
    assert '<section class="panel" aria-labelledby="h-events">' in html
    state = (await get(app, "/api/e/dev/state")).json()
    assert state["sources"]["gitlab"]["stale"] is True
    assert state["sources"]["gitlab"]["last_error"].startswith("GET /groups")


async def test_a_source_failing_from_the_start_shows_no_data_not_made_up_data(config, clock):
    store = new_store(config, clock)
    store.failed("gitlab", "connection refused")
    html = (await get(ui_app([hub_for(store)]), "/e/dev/")).text
    assert "No data from it yet." in html
    assert "No runner data yet." in html
    assert "data-runner-id" not in html
    assert '<span class="stale-tag">no data</span>' in html
    row = re.search(r'<tr data-runner-type="docker">(.*?)</tr>', html, re.S)
    assert row is not None
    assert "— / 10" in row[1]  # capacity is config; jobs unknown
    assert "DEMO" not in html


async def test_an_unconfigured_source_says_so(config, clock):
    store = new_store(config, clock, configured=("gitlab", "kubernetes"))
    store.update("gitlab", runners=(runner(1),), jobs=())
    app = ui_app([hub_for(store)])
    html = (await get(app, "/e/dev/cache")).text
    assert "Prometheus is not configured (DASHBOARD_PROMETHEUS_URL is not set)" in html
    assert "No cache metrics." in html
    chart = (await get(app, "/api/e/dev/series/cache-latency")).json()
    assert chart["source"]["configured"] is False
    assert chart["data"] == [[]]


async def test_before_any_source_answers_panels_wait(config, clock):
    html = (await get(ui_app([hub_for(new_store(config, clock))]), "/e/dev/")).text
    assert "Waiting for the first answer from GitLab." in html
    assert "data-runner-id" not in html


async def test_demo_banner_only_in_demo_mode(store):
    for path in PAGES:
        assert "DEMO — fake data" in (await get(ui_app([hub_for(store)], demo=True), path)).text
        assert "DEMO" not in (await get(ui_app([hub_for(store)]), path)).text


@pytest.mark.parametrize(
    "path",
    ["/e/prod/", "/e/prod/runners/1", "/e/prod/scaling", "/e/prod/cache", "/e/..%2F/"],
)
async def test_unknown_environment_page_is_404(store, path: str):
    assert (await get(ui_app([hub_for(store)]), path)).status_code == 404


@pytest.mark.parametrize(
    "path", ["/api/e/prod/state", "/api/e/prod/series/replicas", "/api/e/prod/events"]
)
async def test_unknown_environment_api_is_404_json(store, path: str):
    response = await get(ui_app([hub_for(store)]), path)
    assert response.status_code == 404
    assert response.json() == {"error": "no such environment"}


async def test_unknown_runner_and_chart_are_404(store):
    app = ui_app([hub_for(store)])
    missing = await get(app, "/e/dev/runners/999")
    assert missing.status_code == 404
    assert "does not list this runner" in missing.text
    assert (await get(app, "/e/dev/runners/abc")).status_code == 404
    assert (await get(app, "/api/e/dev/series/..%2F..%2Fetc")).status_code == 404
    chart = await get(app, "/api/e/dev/series/up")
    assert chart.status_code == 404
    assert "replicas" in chart.json()["charts"]


async def test_home_redirects_to_the_served_environment(store):
    response = await get(ui_app([hub_for(store)]), "/")
    assert response.status_code == 302
    assert response.headers["location"] == "/e/dev/"


async def test_runner_detail_lists_its_jobs_and_its_type_managers(store):
    html = (await get(ui_app([hub_for(store)]), "/e/dev/runners/1")).text
    assert "Runner 1" in html
    assert "gitlab-runner-docker-abc" in html
    assert 'href="https://gitlab.example.com/acme/app/-/jobs/3"' in html
    assert 'hx-trigger="sse:runners, sse:jobs, sse:workloads"' in html


async def test_a_job_link_is_only_ever_http(store):
    bad = (
        store.state()
        .jobs[0]
        .__class__(**{**store.state().jobs[0].__dict__, "web_url": "javascript:alert(1)"})
    )
    store.update("gitlab", runners=store.state().runners, jobs=(bad,))
    html = (await get(ui_app([hub_for(store)]), "/e/dev/")).text
    assert "javascript:" not in html


async def test_scaling_page_shows_time_at_max_and_charts(store):
    app = ui_app([hub_for(store)])
    html = (await get(app, "/e/dev/scaling")).text
    row = re.search(r'<tr data-hpa="attic/attic-api">(.*?)</tr>', html, re.S)
    assert row is not None
    assert "at max" in row[1]
    assert "50 %" in row[1]  # 5 of the 10 points at max 3
    assert 'data-chart="/api/e/dev/series/replicas"' in html
    chart = (await get(app, "/api/e/dev/series/replicas")).json()
    assert chart["labels"] == ["attic/attic-api current"]
    assert len(chart["data"]) == 2
    assert len(chart["data"][0]) == 10


async def test_cache_page_compares_with_the_slo(store):
    app = ui_app([hub_for(store)])
    html = (await get(app, "/e/dev/cache")).text
    p99 = re.search(r'data-stat="p99">(.*?)</div>', html, re.S)
    errors = re.search(r'data-stat="errors">(.*?)</div>', html, re.S)
    assert p99 is not None
    assert errors is not None
    assert "800" in p99[1]
    assert "SLO 500 ms" in p99[1]
    assert "breaching" in p99[1]
    assert "within SLO" in errors[1]
    chart = (await get(app, "/api/e/dev/series/cache-latency")).json()
    assert chart["unit"] == "ms"
    assert chart["threshold"] == 500.0
    assert chart["data"][1] == [800.0]


async def test_state_api_is_the_store_as_json(store):
    state = (await get(ui_app([hub_for(store)]), "/api/e/dev/state")).json()
    assert state["environment"] == "dev"
    assert state["version"] == store.state().version
    assert {row["runner_type"] for row in state["summary"]} >= {"docker", "nix"}
    assert state["runners"][0]["contacted_at"] == "2026-12-01T11:59:40+00:00"
    assert state["cache"]["slo_p99_seconds"] == 0.5
    assert "series" not in state["cache"]
    assert "replicas" in state["charts"]


def test_only_the_changed_fragments_are_rendered_again(store):
    assert [name for name, _ in render_live(store, frozenset({"runners"}))] == [
        "fleet",
        "runners",
    ]
    assert [name for name, _ in render_live(store, frozenset({"cache"}))] == ["cache"]
    everything = [name for name, _ in render_live(store, frozenset({"sources"}))]
    assert everything == [name for name, _ in render_live(store, None)]
    assert len(everything) == 8


async def test_job_chart_and_time_at_max_follow_the_collector_series(store):
    xs = (100.0, 160.0, 220.0, 280.0)
    state = store.state()
    series = {
        "jobs:docker:running": Series(name="r", points=((xs[0], 1.0), (xs[2], 4.0))),
        "jobs:docker:capacity": Series(name="c", points=tuple((x, 10.0) for x in xs)),
        "hpa:attic/attic-api:current": Series(name="h", points=tuple((x, 3.0) for x in xs)),
        # the maximum was raised to 5 for the last two points
        "hpa:attic/attic-api:max": Series(
            name="m", points=tuple((x, 3.0 if x < 200 else 5.0) for x in xs)
        ),
    }
    store.update(
        "prometheus",
        type_metrics=state.type_metrics,
        scaling_series=series,
        cache=state.cache,
    )
    app = ui_app([hub_for(store)])
    chart = (await get(app, "/api/e/dev/series/jobs")).json()
    assert chart["labels"] == ["docker capacity", "docker running"]
    assert chart["data"] == [list(xs), [10.0] * 4, [1.0, None, 4.0, None]]
    replicas = (await get(app, "/api/e/dev/series/replicas")).json()
    assert replicas["labels"] == ["attic/attic-api current", "attic/attic-api max"]
    html = (await get(app, "/e/dev/scaling")).text
    row = re.search(r'<tr data-hpa="attic/attic-api">(.*?)</tr>', html, re.S)
    assert row is not None
    assert "50 %" in row[1]
