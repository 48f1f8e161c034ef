"""The generated site in a real headless Chromium (Debian's, driven by Playwright), from file://.

Needs /usr/bin/chromium (.ci/install-browser.sh installs it). Without it the tests skip, unless
LATENTLAPSE_REQUIRE_BROWSER is set (CI sets it): then they fail, so CI cannot pass by skipping.
Screenshots go to test-artifacts/.
"""

import copy
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from reporter.rules import evaluate
from reporter.site.page import write_site
from reporter.state import SILENT_AFTER_SECONDS, now_iso
from site_fixture import build_output

pytestmark = pytest.mark.e2e  # a real S3 server, browser, training run or reporter process

CHROMIUM = "/usr/bin/chromium"
# Playwright's own browser downloads are never used: it drives the system chromium.
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _require_browser():
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is not installed (run .ci/install-browser.sh)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed (pip install the dev extra)"
    if missing and os.environ.get("LATENTLAPSE_REQUIRE_BROWSER"):
        pytest.fail(f"{missing}, and LATENTLAPSE_REQUIRE_BROWSER is set", pytrace=False)
    if missing:
        pytest.skip(f"{missing}; set LATENTLAPSE_REQUIRE_BROWSER=1 to fail instead of skipping")


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A finished run's site: real MNIST probe images, 6 frames, real GIF."""
    out = tmp_path_factory.mktemp("browser-site") / "site"
    state, run = build_output(out, n_frames=6, n_probe=200, status="finished")
    write_site(out, state, run)
    return out, state, run


class Visit:
    """A page on a file:// URL, recording console errors and every request it makes."""

    def __init__(self, browser, index: Path, **context):
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.errors, self.requests = [], []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.folder = index.parent.resolve().as_uri() + "/"
        self.url = index.resolve().as_uri()

    def open(self, fragment=""):
        self.page.goto(self.url + fragment)
        self.page.wait_for_load_state("load")
        return self.page

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser, site):
    v = Visit(browser, site[0] / "index.html", viewport={"width": 1100, "height": 900})
    yield v
    v.close()


def test_page_opens_from_disk_without_errors_or_outside_requests(visit):
    page = visit.open()
    page.wait_for_timeout(300)  # let the script run and preload the next frame
    # The page's CSP forbids eval, so Playwright's checks use function expressions only.
    assert visit.errors == []
    assert visit.requests, "the page requested nothing: did it load?"
    outside = [u for u in visit.requests if not u.startswith(visit.folder)]
    assert outside == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "site.png"), full_page=True)


def test_gif_and_pictures_load(visit):
    page = visit.open()
    for selector in ("#gif-img", "#frame-img", "#recon-img"):
        page.wait_for_function(f"() => document.querySelector('{selector}').complete")
        assert page.eval_on_selector(selector, "img => img.naturalWidth") > 0, selector


def test_scrubber_changes_the_frame(visit):
    page = visit.open()
    src = lambda: page.get_attribute("#frame-img", "src")  # noqa: E731
    assert src() == "frames/frame-0005.png"
    cursor_before = page.get_attribute("#loss-chart .chart-cursor", "x1")

    page.eval_on_selector("#frame-slider", "s => { s.value = '2'; s.dispatchEvent(new Event('input')); }")
    assert src() == "frames/frame-0001.png"
    assert page.inner_text("#frame-caption").startswith("Frame 2 of 6")
    assert page.get_attribute("#loss-chart .chart-cursor", "x1") != cursor_before
    assert page.evaluate("location.hash") == "#frame=2"
    page.wait_for_function("() => document.getElementById('frame-img').complete")
    assert page.eval_on_selector("#frame-img", "img => img.naturalWidth") > 0

    page.locator("body").press("ArrowRight")
    assert src() == "frames/frame-0002.png"
    page.locator("body").press("Home")
    assert src() == "frames/frame-0000.png"
    page.click("#next")
    assert src() == "frames/frame-0001.png"

    page.click("#play")
    page.wait_for_function(
        "() => document.getElementById('frame-img').getAttribute('src') !== 'frames/frame-0001.png'"
    )
    assert page.get_attribute("#play", "aria-pressed") == "true"
    page.click("#play")
    assert page.get_attribute("#play", "aria-pressed") == "false"
    assert visit.errors == []


def test_curves_and_quality_render(visit):
    page = visit.open()
    for chart in ("#loss-chart", "#quality-chart"):
        widths = page.eval_on_selector_all(f"{chart} .series path", "ps => ps.map(p => p.getBBox().width)")
        assert widths and max(widths) > 100, (chart, widths)
        assert page.locator(f"{chart} circle").count() >= 6
    assert page.is_visible("#no-alerts")


def test_alerts_render_with_their_step(browser, site, tmp_path):
    out, state, run = site
    target = tmp_path / "site"
    shutil.copytree(out, target)
    state = copy.deepcopy(state)
    state["frames"][3]["nonfinite"] = True
    state["alerts"] = evaluate(state["frames"])
    write_site(target, state, run)
    v = Visit(browser, target / "index.html")
    try:
        page = v.open()
        alerts = page.locator("#alerts .alert")
        assert alerts.count() == 1
        assert "fired at step 75" in alerts.first.inner_text()  # EVAL step 3, global step 78
        assert not page.is_visible("#no-alerts")
        assert v.errors == []
    finally:
        v.close()


def test_live_page_reloads_itself_and_keeps_the_frame(browser, site, tmp_path):
    out, state, run = site
    target = tmp_path / "live"
    shutil.copytree(out, target)
    state = dict(state, status="running", updated=now_iso())  # a reporter that saved just now
    write_site(target, state, run)
    v = Visit(browser, target / "index.html")
    try:
        page = v.open("#frame=3")
        assert page.get_attribute("#frame-img", "src") == "frames/frame-0002.png"
        page.click("#numbers summary")  # an open table stays open across the reload
        page.evaluate("window.__beforeReload = true")
        page.wait_for_function("() => window.__beforeReload === undefined", timeout=12000)  # a new document
        assert page.get_attribute("#frame-img", "src") == "frames/frame-0002.png"
        assert page.evaluate("location.hash") == "#frame=3"
        assert page.eval_on_selector("#numbers", "d => d.open") is True
        assert v.errors == []
    finally:
        v.close()


def test_a_running_page_whose_reporter_went_silent_says_so_and_stops_reloading(browser, site, tmp_path):
    # SIGKILL writes nothing: the page itself must notice that "running" is no longer true.
    out, state, run = site
    target = tmp_path / "silent"
    shutil.copytree(out, target)
    silent = datetime.now(timezone.utc) - timedelta(seconds=SILENT_AFTER_SECONDS + 300)
    write_site(target, dict(state, status="running", updated=silent.strftime("%Y-%m-%dT%H:%M:%SZ")), run)
    v = Visit(browser, target / "index.html")
    try:
        page = v.open()
        status = page.inner_text("#status")
        assert status.startswith("No update for 8 min: the reporter may have stopped"), status
        page.evaluate("window.__beforeReload = true")
        page.wait_for_timeout(7000)  # longer than the 5 s reload of a live page
        assert page.evaluate("window.__beforeReload") is True  # the same document: no reload
        assert v.errors == []
    finally:
        v.close()


def test_phone_width_and_dark_mode(browser, site):
    index = site[0] / "index.html"
    v = Visit(browser, index, viewport={"width": 375, "height": 800}, color_scheme="dark", is_mobile=True)
    try:
        page = v.open()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        rgb = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert sum(int(c) for c in rgb[rgb.index("(") + 1 : -1].split(",")[:3]) < 120, rgb
        assert v.errors == []
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "site-phone-dark.png"), full_page=True)
    finally:
        v.close()
