"""The interactive map in a real headless Chromium, from file:// (see test_browser.py for the setup).

Points are found on screen the way the page places them: coordinates fitted to the box [-1, 1]
(as the PNG frames are), the box [-1.06, 1.06] filling the square canvas, y upwards.
"""

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from reporter.site import explore
from reporter.pictures.render import fit_to_box
from reporter.site.page import write_site
from site_fixture import build_output, mnist_rows
from test_browser import ARTIFACTS, Visit, browser  # noqa: F401  (the module's browser fixture)

pytestmark = pytest.mark.e2e  # a real S3 server, browser, training run or reporter process

BOX = 1.06
N_FRAMES, N_PROBE = 6, 200
HOSTILE = "</script><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore-site") / "site"
    state, run = build_output(out, n_frames=N_FRAMES, n_probe=N_PROBE, status="finished")
    write_site(out, state, run)
    return out


def step_label(frame):
    """The tooltip's frame line as the reporter writes it: frame number, its step, of the run's total."""
    return f"{frame}, step {25 * (frame - 1)} of {25 * (N_FRAMES - 1) + 5}"


@pytest.fixture
def visit(browser, site):  # noqa: F811
    v = Visit(browser, site / "index.html", viewport={"width": 1100, "height": 900})
    yield v
    v.close()


def payload(site: Path, rel: str) -> dict:
    text = (site / rel).read_text()
    assert text.startswith(explore.CALLBACK + "(") and text.endswith(");\n")
    return json.loads(text[len(explore.CALLBACK) + 1 : -3])


def fitted(site: Path, frame: int) -> np.ndarray:
    with np.load(site / f"frames/frame-{frame:04d}.npz") as saved:
        return fit_to_box(saved["embedding"])


def on_screen(page, xy):
    box = page.locator("#map").bounding_box()
    k = min(box["width"], box["height"]) / (2 * BOX)
    return box["x"] + box["width"] / 2 + xy[0] * k, box["y"] + box["height"] / 2 - xy[1] * k


def lonely_point(xy, page, min_px=20.0, among=None):
    """A point with no other point within ``min_px`` on screen, as near the centre as possible."""
    box = page.locator("#map").bounding_box()
    k = min(box["width"], box["height"]) / (2 * BOX)
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)) * k
    np.fill_diagonal(d, np.inf)
    alone = np.flatnonzero((d.min(axis=1) >= min_px) & (True if among is None else among))
    assert len(alone), "no isolated point in the fixture's last frame"
    return int(alone[np.argmin(np.abs(xy[alone]).max(axis=1))])


def open_map(visit, fragment=""):
    page = visit.open(fragment)
    page.wait_for_selector("#explore:not([hidden])")
    page.wait_for_function("() => document.querySelectorAll('#classes button').length > 0")
    page.locator("#map").scroll_into_view_if_needed()
    page.wait_for_timeout(150)  # the frame's data script and one animation frame
    return page


def test_hover_shows_that_points_image_reconstruction_class_and_loss(visit, site):
    page = open_map(visit)
    xy = fitted(site, N_FRAMES - 1)
    i = lonely_point(xy, page)
    page.mouse.move(*on_screen(page, xy[i]))
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible")
    assert tip.locator(".point-index").inner_text() == str(i)
    labels = mnist_rows("test", N_PROBE)[1]
    assert tip.locator(".point-class").inner_text() == str(labels[i])
    frame = payload(site, explore.frame_files(N_FRAMES - 1)["js"])
    loss = np.frombuffer(base64.b64decode(frame["loss"]), "<f4")[i]
    assert tip.locator(".point-loss").inner_text() == page.evaluate(f"() => ({float(loss)!r}).toPrecision(4)")
    # The frame and its training step (EVAL step 5 at global step 130: 125 train steps done, of 130).
    assert tip.locator(".point-frame").inner_text() == step_label(N_FRAMES)

    # The probe picture is cell i of the sprite sheet, and that cell is probe image i.
    sprite = payload(site, explore.PROBES_JS)["sprite"]
    cols, w, h = sprite["cols"], sprite["width"], sprite["height"]
    style = tip.locator(".probe-image").evaluate(
        "e => [e.style.backgroundImage, e.style.backgroundPosition, e.style.backgroundSize]")
    assert "explore/probes.png" in style[0]
    assert style[1] == f"{-(i % cols) * w * 3}px {-(i // cols) * h * 3}px"
    assert style[2] == f"{cols * w * 3}px auto"
    recon_style = tip.locator(".recon-image").evaluate("e => [e.style.backgroundImage, e.style.backgroundPosition]")
    assert f"explore/recon-{N_FRAMES - 1:04d}.png" in recon_style[0] and recon_style[1] == style[1]
    sheet = np.asarray(Image.open(site / explore.PROBES_PNG))
    cell = sheet[(i // cols) * h : (i // cols + 1) * h, (i % cols) * w : (i % cols + 1) * w]
    images = mnist_rows("test", N_PROBE)[0]
    assert np.abs(cell / 255.0 - images[i]).max() < 0.003
    others = [j for j in range(N_PROBE) if j != i]
    assert min(np.abs(cell / 255.0 - images[j]).max() for j in others) > 0.1

    page.mouse.move(5, 5)
    tip.wait_for(state="hidden")
    assert visit.errors == []


def test_pin_draws_a_trail_with_one_vertex_per_frame_and_the_neighbours(visit, site):
    page = open_map(visit)
    xy = fitted(site, N_FRAMES - 1)
    i = lonely_point(xy, page)
    page.mouse.click(*on_screen(page, xy[i]))
    # The trail, the detail and the neighbours are drawn as their data arrive: expect() waits for
    # each (up to its timeout) instead of reading the page right after the click.
    expect(page.locator("#trail .trail-vertex")).to_have_count(N_FRAMES)
    points = page.get_attribute("#trail polyline", "points").split()
    assert len(points) == N_FRAMES
    box = page.locator("#map").bounding_box()
    for f, vertex in enumerate(points):  # vertex f is the point's place in frame f
        x, y = on_screen(page, fitted(site, f)[i])
        vx, vy = (float(v) for v in vertex.split(","))
        assert abs(vx + box["x"] - x) < 0.2 and abs(vy + box["y"] - y) < 0.2, f
    detail = page.locator("#pin-detail")
    expect(detail).to_be_visible()
    expect(detail.locator(".point-index")).to_have_text(str(i))
    nn = payload(site, explore.frame_files(N_FRAMES - 1)["js"])
    expected = np.frombuffer(base64.b64decode(nn["nn"]), "<u2").reshape(-1, nn["k"])[i]
    buttons = page.locator("#neighbours button")
    expect(buttons).to_have_count(explore.NEIGHBOURS)
    shown = [int(b.get_attribute("data-index")) for b in buttons.all()]
    assert shown == expected.tolist()
    expect(page.locator("#map-markers .neighbour:not([hidden])")).to_have_count(explore.NEIGHBOURS)
    assert f"pin={i}" in page.evaluate("location.hash")

    # A neighbour button pins that neighbour; the pin survives a reload through the hash.
    buttons.first.click()
    expect(detail.locator(".point-index")).to_have_text(str(expected[0]))
    page.reload()
    expect(page.locator("#pin-detail .point-index")).to_have_text(str(expected[0]))
    expect(page.locator("#trail")).to_have_count(1)
    page.click("#unpin")
    expect(page.locator("#trail")).to_have_count(0)
    assert "pin=" not in page.evaluate("location.hash")
    assert visit.errors == []


def _pixel(page, x, y):
    return page.evaluate(
        """([x, y]) => { const c = document.getElementById('map'), r = c.getBoundingClientRect();
           const s = c.width / r.width;
           return Array.from(c.getContext('2d').getImageData(Math.round((x - r.left) * s), Math.round((y - r.top) * s), 1, 1).data); }""",
        [x, y],
    )


def test_legend_click_fades_the_other_classes_several_at_once(visit, site):
    page = open_map(visit)
    xy = fitted(site, N_FRAMES - 1)
    labels = mnist_rows("test", N_PROBE)[1]
    i = lonely_point(xy, page)
    # The loneliest point of another class.
    box = page.locator("#map").bounding_box()
    k = min(box["width"], box["height"]) / (2 * BOX)
    d = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)) * k
    np.fill_diagonal(d, np.inf)
    other = int(next(j for j in np.argsort(-d.min(axis=1)) if labels[j] != labels[i]))
    bg = _pixel(page, box["x"] + 3, box["y"] + box["height"] - 3)
    at_i, at_other = on_screen(page, xy[i]), on_screen(page, xy[other])
    before_i, before_other = _pixel(page, *at_i), _pixel(page, *at_other)

    def distance(a, b):
        return sum(abs(p - q) for p, q in zip(a[:3], b[:3]))

    assert distance(before_other, bg) > 60 and distance(before_i, bg) > 60
    page.click(f"#classes button[data-class='{labels[i]}']")
    page.wait_for_timeout(100)
    assert page.get_attribute(f"#classes button[data-class='{labels[i]}']", "aria-pressed") == "true"
    assert distance(_pixel(page, *at_i), before_i) < 40          # the highlighted class as before
    assert distance(_pixel(page, *at_other), bg) < distance(before_other, bg) * 0.3   # the others faded
    assert f"classes={labels[i]}" in page.evaluate("location.hash")

    page.click(f"#classes button[data-class='{labels[other]}']")  # a second class lights up too
    page.wait_for_timeout(100)
    assert distance(_pixel(page, *at_other), before_other) < 40
    pressed = page.eval_on_selector_all("#classes button[aria-pressed='true']", "bs => bs.length")
    assert pressed == 2
    page.click("#classes-clear")
    page.wait_for_timeout(100)
    assert page.eval_on_selector_all("#classes button[aria-pressed='true']", "bs => bs.length") == 0
    assert visit.errors == []


def test_zoom_and_reset_move_the_view_not_the_axes(visit, site):
    page = open_map(visit)
    xy = fitted(site, N_FRAMES - 1)
    i = lonely_point(xy, page)
    box = page.locator("#map").bounding_box()
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    x, y = on_screen(page, xy[i])
    page.click("#zoom-in")
    assert float(page.get_attribute("#explore", "data-zoom")) == pytest.approx(1.5)
    zoomed = (centre[0] + (x - centre[0]) * 1.5, centre[1] + (y - centre[1]) * 1.5)
    page.mouse.move(*zoomed)
    page.locator("#tooltip").wait_for(state="visible")
    assert page.locator("#tooltip .point-index").inner_text() == str(i)

    page.mouse.move(centre[0], centre[1])  # drag-pan by 30 px to the right: the point follows
    page.mouse.down()
    page.mouse.move(centre[0] + 15, centre[1], steps=3)
    page.mouse.move(centre[0] + 30, centre[1], steps=3)
    page.mouse.up()
    page.mouse.move(zoomed[0] + 30, zoomed[1])
    page.locator("#tooltip").wait_for(state="visible")
    assert page.locator("#tooltip .point-index").inner_text() == str(i)

    assert "view=1.500," in page.evaluate("location.hash")  # a live page's reload keeps the view
    page.reload()
    page.wait_for_selector("#explore:not([hidden])")
    assert float(page.get_attribute("#explore", "data-zoom")) == pytest.approx(1.5)
    page.click("#zoom-reset")
    assert page.get_attribute("#explore", "data-zoom") == "1.000"
    assert "view=" not in page.evaluate("location.hash")
    page.mouse.move(x, y)
    page.locator("#tooltip").wait_for(state="visible")
    assert page.locator("#tooltip .point-index").inner_text() == str(i)
    # A frame change keeps the axes: the point is where frame 3 puts it in the same box.
    page.locator("#tooltip").evaluate("t => t.hidden = true")
    page.eval_on_selector("#frame-slider", "s => { s.value = '3'; s.dispatchEvent(new Event('input')); }")
    page.wait_for_timeout(150)
    page.mouse.move(*on_screen(page, fitted(site, 2)[i]))
    page.wait_for_function("() => !document.getElementById('tooltip').hidden")
    assert page.locator("#tooltip .point-frame").inner_text() == step_label(3)
    page.mouse.wheel(0, -300)  # the wheel zooms in about the pointer
    assert float(page.get_attribute("#explore", "data-zoom")) > 1.2
    assert visit.errors == []


def marker_x(page):
    """x of the pinned point's marker in the canvas (the marker is moved by a CSS translate)."""
    transform = page.eval_on_selector("#map-markers .pinned-marker", "m => m.style.transform")
    return float(transform.split("(")[1].split("px")[0])


def test_playback_moves_points_smoothly_between_frames(visit, site):
    page = open_map(visit, "#frame=1&speed=1")
    assert page.input_value("#speed") == "1"
    xy0, xy1 = fitted(site, 0), fitted(site, 1)
    i = int(np.argmax(np.abs(xy1 - xy0).sum(axis=1)))  # the point that moves most
    page.fill("#pin-input", str(i))
    page.press("#pin-input", "Enter")
    page.wait_for_selector("#map-markers .pinned-marker")
    box = page.locator("#map").bounding_box()
    start = on_screen(page, xy0[i])[0] - box["x"]
    end = on_screen(page, xy1[i])[0] - box["x"]
    assert abs(marker_x(page) - start) < 0.5
    page.click("#play")
    seen = set()
    for _ in range(12):
        page.wait_for_timeout(60)
        seen.add(round(marker_x(page), 1))
        if page.inner_text("#frame-caption").startswith("Frame 2"):
            break
    page.click("#play")
    lo, hi = sorted((start, end))
    between = [x for x in seen if lo + 0.5 < x < hi - 0.5]
    assert len(between) >= 3, (start, end, sorted(seen))  # in-between positions, not a jump
    assert visit.errors == []


def test_keyboard_alone_zooms_pins_and_unpins(visit, site):
    page = open_map(visit)
    page.focus("#map")
    page.keyboard.press("+")
    assert float(page.get_attribute("#explore", "data-zoom")) == pytest.approx(1.5)
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("0")
    assert page.get_attribute("#explore", "data-zoom") == "1.000"
    caption = page.inner_text("#frame-caption")
    page.keyboard.press("ArrowLeft")  # without Shift the arrows still step through frames
    assert page.inner_text("#frame-caption") != caption
    page.focus("#pin-input")
    page.keyboard.type("17")
    page.keyboard.press("Enter")
    assert page.locator("#pin-detail .point-index").inner_text() == "17"
    page.wait_for_selector("#trail")
    page.focus("#map")
    page.keyboard.press("Escape")
    assert not page.is_visible("#pin-detail")
    page.focus("#classes button[data-class='3']")
    page.keyboard.press("Enter")
    assert page.get_attribute("#classes button[data-class='3']", "aria-pressed") == "true"
    assert visit.errors == []


def test_opens_lazily_and_stays_inside_its_folder(visit, site):
    page = open_map(visit)
    frame_scripts = [u for u in visit.requests if "/explore/frame-" in u]
    assert 1 <= len(frame_scripts) <= 2, frame_scripts  # the frame shown, not all of them
    page.fill("#pin-input", "4")
    page.press("#pin-input", "Enter")
    page.wait_for_selector("#trail")  # pinning loads every frame for the trail
    frame_scripts = {u for u in visit.requests if "/explore/frame-" in u}
    assert len(frame_scripts) == N_FRAMES
    assert [u for u in visit.requests if not u.startswith(visit.folder)] == []
    assert visit.errors == []


def test_hostile_class_names_stay_text_in_the_data_files_and_the_page(browser, tmp_path):  # noqa: F811
    out = tmp_path / "site"
    names = [HOSTILE, "a\u2028b & <c>", "\"quoted\" 'single'"] + [str(d) for d in range(3, 10)]
    state, run = build_output(out, n_frames=2, n_probe=40, class_names=names)
    write_site(out, state, run)
    probes_js = (out / explore.PROBES_JS).read_text()
    assert "<" not in probes_js and ">" not in probes_js and "\u2028" not in probes_js
    assert payload(out, explore.PROBES_JS)["classes"] == names
    v = Visit(browser, out / "index.html", viewport={"width": 1100, "height": 900})
    dialogs = []
    v.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page = open_map(v)
        assert page.inner_text("#classes button[data-class='0']") == HOSTILE
        assert page.inner_text("#classes button[data-class='1']") == "a\u2028b & <c>"
        assert page.locator("img[src='x']").count() == 0
        page.fill("#pin-input", "0")
        page.press("#pin-input", "Enter")
        assert page.inner_text("#pin-detail .point-class") in names
        page.wait_for_timeout(200)
        assert dialogs == [] and v.errors == []
    finally:
        v.close()


def test_phone_width_dark_mode_and_tap(browser, site):  # noqa: F811
    v = Visit(browser, site / "index.html", viewport={"width": 375, "height": 800}, color_scheme="dark",
              is_mobile=True, has_touch=True)
    try:
        page = open_map(v)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        map_box = page.locator("#map").bounding_box()
        assert map_box["width"] >= 300 and map_box["x"] + map_box["width"] <= 375
        xy = fitted(site, N_FRAMES - 1)
        i = lonely_point(xy, page, min_px=12)
        page.touchscreen.tap(*on_screen(page, xy[i]))
        page.wait_for_selector("#pin-detail:not([hidden])")
        assert page.inner_text("#pin-detail .point-index") == str(i)
        page.wait_for_selector("#trail")
        bg = _pixel(page, map_box["x"] + 3, map_box["y"] + map_box["height"] - 3)
        assert sum(bg[:3]) < 150, bg  # the map follows dark mode
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "explore-phone-dark.png"), full_page=True)
        assert v.errors == []
    finally:
        v.close()


def test_desktop_screenshot_with_a_pinned_point(visit, site):
    page = open_map(visit, "#frame=4&pin=11&classes=1,7")
    page.wait_for_selector("#trail")
    xy = fitted(site, 3)
    labels = mnist_rows("test", N_PROBE)[1]
    page.mouse.move(*on_screen(page, xy[lonely_point(xy, page, 12, among=np.isin(labels, [1, 7]))]))
    page.locator("#tooltip").wait_for(state="visible")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#scrubber").screenshot(path=str(ARTIFACTS / "explore-desktop.png"))
    assert page.get_attribute("#classes button[data-class='7']", "aria-pressed") == "true"
    assert visit.errors == []


def test_a_missing_frame_file_leaves_that_frame_out(browser, site, tmp_path):  # noqa: F811
    import shutil

    target = tmp_path / "site"
    shutil.copytree(site, target)
    (target / explore.frame_files(2)["js"]).unlink()  # e.g. a folder copied in part
    v = Visit(browser, target / "index.html", viewport={"width": 1100, "height": 900})
    try:
        page = open_map(v, "#frame=1&speed=16")
        page.fill("#pin-input", "4")
        page.press("#pin-input", "Enter")
        page.wait_for_selector("#trail")
        assert page.locator("#trail .trail-vertex").count() == N_FRAMES - 1
        page.click("#play")  # playback passes the gap instead of waiting for it
        page.wait_for_function("() => document.getElementById('frame-caption').textContent.startsWith('Frame 5')")
        page.click("#play")
        # Chromium reports the missing file (once, without its name on the console); nothing else.
        assert [e for e in v.errors if "frame-0002.js" not in e] == ["Failed to load resource: net::ERR_FILE_NOT_FOUND"]
    finally:
        v.close()
