"""A comparison site of two real runs in a real headless Chromium, from file:// (setup: test_browser.py).

A point's place in a panel is where explore.js draws it: the panel's data file's coordinates
(aligned onto the reference run), the box [-1.06, 1.06] filling the square canvas, y upwards.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from playwright.sync_api import expect

from latentlapse import report_layout as layout
from reporter.site import explore
from test_browser import ARTIFACTS, Visit, browser  # noqa: F401  (the module's browser fixture)
from test_compare import coordinates, latentlapse

pytestmark = pytest.mark.e2e

BOX = 1.06


@pytest.fixture(scope="module")
def comparison(two_reports, tmp_path_factory):
    out = tmp_path_factory.mktemp("browser-compare") / "cmp"
    done = latentlapse("compare", *two_reports, "--out", out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def visit(browser, comparison):  # noqa: F811
    v = Visit(browser, comparison / layout.PAGE, viewport={"width": 1280, "height": 1000})
    yield v
    v.close()


def world(out, run, frame) -> np.ndarray:
    return coordinates(out, run, frame) / explore.COORD_SCALE


def canvas_box(page, panel):
    return page.locator(f'.map-wrap[data-panel="{panel}"] canvas').bounding_box()


def on_screen(box, xy):
    k = min(box["width"], box["height"]) / (2 * BOX)
    return box["x"] + box["width"] / 2 + xy[0] * k, box["y"] + box["height"] / 2 - xy[1] * k


def lonely(xys, box, min_px=14.0):
    """A point with no other within ``min_px`` in every panel, nearest the centre."""
    k = min(box["width"], box["height"]) / (2 * BOX)
    ok = np.ones(len(xys[0]), dtype=bool)
    for xy in xys:
        d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)) * k
        np.fill_diagonal(d, np.inf)
        ok &= d.min(axis=1) >= min_px
    alone = np.flatnonzero(ok)
    assert len(alone), "no point stands alone in every panel"
    return int(alone[np.argmin(np.abs(xys[0][alone]).max(axis=1))])


def marker_at(page, panel, cls):
    transform = page.eval_on_selector(f'.map-wrap[data-panel="{panel}"] .{cls}', "m => m.hidden ? '' : m.style.transform")
    found = re.match(r"translate\(([-\d.]+)px,\s*([-\d.]+)px\)", transform or "")
    return (float(found.group(1)), float(found.group(2))) if found else None


def open_page(visit, fragment=""):
    page = visit.open(fragment)
    page.wait_for_selector("#explore:not([hidden])")
    page.wait_for_function("() => document.querySelectorAll('#classes button').length > 0")
    page.locator("#map").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    return page


def test_the_comparison_opens_from_disk_without_errors_or_outside_requests(visit, comparison):
    page = open_page(visit)
    assert visit.errors == []
    outside = [u for u in visit.requests if not u.startswith(visit.folder)]
    assert visit.requests and outside == []
    assert page.locator(".map-wrap").count() == 2
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compare-1280.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "compare-375.png"), full_page=True)
    assert visit.errors == []


def test_pointing_at_a_dot_marks_the_same_probe_image_in_the_other_panel(visit, comparison):
    info = json.loads((comparison / layout.COMPARE_INFO).read_text())
    last = len(info["ticks"]) - 1
    page = open_page(visit)
    box0, box1 = canvas_box(page, 0), canvas_box(page, 1)
    xy0, xy1 = world(comparison, 0, last), world(comparison, 1, last)
    i = lonely([xy0, xy1], box0)
    page.mouse.move(*on_screen(box0, xy0[i]))
    tip = page.locator('.map-wrap[data-panel="0"] .tooltip')
    tip.wait_for(state="visible")
    assert tip.locator(".point-index").inner_text() == str(i)
    losses = tip.locator(".point-losses li").all_inner_texts()
    assert [t.split(":")[0] for t in losses] == ["seed-3", "seed-4"] and all("loss " in t for t in losses)
    x, y = on_screen(box1, xy1[i])
    at = marker_at(page, 1, "hover-marker")
    assert at is not None and abs(at[0] - (x - box1["x"])) < 1.5 and abs(at[1] - (y - box1["y"])) < 1.5


def test_the_slider_moves_every_panel_and_a_pin_draws_a_trail_in_each(visit, comparison):
    info = json.loads((comparison / layout.COMPARE_INFO).read_text())
    page = open_page(visit)
    page.locator("#pin-input").fill("5")
    page.locator("#pin-form button[type=submit]").click()
    expect(page.locator(".trail")).to_have_count(2)
    for panel, run in enumerate(info["runs"]):
        expect(page.locator(f'.map-wrap[data-panel="{panel}"] .trail-vertex')).to_have_count(run["frames"])
    page.focus("#frame-slider")
    page.keyboard.press("Home")
    page.wait_for_timeout(300)
    assert page.locator("#frame-caption").inner_text().startswith("step 0 ")
    for panel in (0, 1):
        box = canvas_box(page, panel)
        x, y = on_screen(box, world(comparison, panel, 0)[5])
        at = marker_at(page, panel, "pinned-marker")
        assert at is not None and abs(at[0] - (x - box["x"])) < 1.5 and abs(at[1] - (y - box["y"])) < 1.5


def test_a_class_highlight_fades_the_other_classes_in_every_panel(visit, comparison):
    info = json.loads((comparison / layout.COMPARE_INFO).read_text())
    last = len(info["ticks"]) - 1
    labels = np.array(explore.read_data_script(comparison / layout.COMPARE_DATA / "probes.js")["labels"])
    page = open_page(visit)
    box0 = canvas_box(page, 0)
    xy0, xy1 = world(comparison, 0, last), world(comparison, 1, last)
    i = lonely([xy0, xy1], box0)
    other = (labels[i] + 1) % 10

    def ink(panel, xy):  # how far the canvas pixel at xy is from the background, 0..255
        box = canvas_box(page, panel)
        x, y = on_screen(box, xy)
        return page.evaluate(
            """([panel, x, y]) => {
                 const c = document.querySelector('.map-wrap[data-panel="' + panel + '"] canvas');
                 const r = c.getBoundingClientRect(), d = c.width / r.width;
                 const p = c.getContext('2d').getImageData(Math.round((x - r.left) * d), Math.round((y - r.top) * d), 1, 1).data;
                 const b = c.getContext('2d').getImageData(2, 2, 1, 1).data;
                 return Math.max(Math.abs(p[0] - b[0]), Math.abs(p[1] - b[1]), Math.abs(p[2] - b[2]));
               }""", [panel, x, y])

    before = [ink(0, xy0[i]), ink(1, xy1[i])]
    page.locator(f'#classes button[data-class="{other}"]').click()
    page.wait_for_timeout(300)
    after = [ink(0, xy0[i]), ink(1, xy1[i])]
    assert min(before) > 60, before          # drawn in its class colour
    assert max(after) < 0.3 * min(before), (before, after)  # faded (alpha 0.12) in both panels
    assert visit.errors == []


def test_the_runs_index_builds_the_command_of_the_runs_ticked(browser, two_reports, tmp_path):  # noqa: F811
    import shutil

    from reporter.site.runs_index import write_runs_index

    folder = tmp_path / "out"
    for name in ("run-a", "run-b", "run-c"):
        shutil.copytree(two_reports[0], folder / name)
    write_runs_index(folder / layout.PAGE)
    visit = Visit(browser, folder / layout.PAGE, viewport={"width": 1000, "height": 900})
    try:
        page = visit.open()
        boxes = page.locator("#pick input[type=checkbox]")
        assert boxes.count() == 3
        for i in range(3):
            boxes.nth(i).set_checked(True)
        assert page.input_value("#compare-command").split()[2:] == [f"out/{n}" for n in
                                                                   page.eval_on_selector_all("#pick input", "b => b.map(x => x.dataset.name)")]
        assert page.input_value("#compare-compose").endswith("reporter compare " + " ".join(
            page.eval_on_selector_all("#pick input", "b => b.map(x => x.dataset.name)")))
        boxes.nth(0).set_checked(False)
        boxes.nth(1).set_checked(False)
        assert page.inner_text("#pick-note") == "Tick at least two runs."
        assert visit.errors == []  # the inline script ran: the CSP's hash is its own
    finally:
        visit.close()
