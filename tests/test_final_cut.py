"""The final cut of a real finished report: made at the end, the same frames, deterministic, kill-safe."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
import pytest

from conftest import PYTHON, ROOT, trainer_env
from latentlapse import report_layout as layout
from reporter.config import from_args
from reporter.embedding.quality import knn_accuracy, trustworthiness
from reporter.final_cut import main as cut_main
from reporter.pipeline import run
from reporter.site import explore
from test_browser import ARTIFACTS, Visit, browser  # noqa: F401  (the module's browser fixture)
from test_browser_compare import canvas_box, lonely, marker_at, on_screen, open_page

pytestmark = pytest.mark.e2e

LIVE_OUTPUTS = (layout.GIF, layout.MP4, *layout.FIGURES, layout.RECONSTRUCTION)


def report(tensors, out, *extra) -> int:
    return run(from_args(["--tensors", str(tensors), "--out", str(out), "--retry-delay", "0.2", "--final-cut", "on",
                          *extra],
                         environ={}))


def state_of(out: Path) -> dict:
    return json.loads((out / layout.STATE).read_text())


def digests(folder: Path, names=None) -> dict:
    """Every file under ``folder`` (or the ``names`` in it) by its SHA-256."""
    paths = [folder / n for n in names] if names else sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def live_digests(out: Path) -> dict:
    return {**digests(out, LIVE_OUTPUTS), **digests(out / layout.FRAMES)}


def video_frames(path: Path) -> list:
    reader = iio2.get_reader(path, "FFMPEG")
    try:
        return [frame for frame in reader]
    finally:
        reader.close()


@pytest.fixture(scope="module")
def finished(small_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cut") / "site"
    assert report(small_run, out) == 0
    return out


def test_a_finished_report_gets_its_final_cut_with_the_live_frames_and_steps(finished):
    state = state_of(finished)
    assert state["status"] == layout.FINISHED and state["final"]["status"] == "made", state["final"]
    final = finished / layout.FINAL
    info = json.loads((final / layout.FINAL_INFO).read_text())
    live_steps = [f["step"] for f in state["frames"]]
    assert info["steps"] == live_steps and info["frames"] == len(live_steps) >= 3
    # The GIF and the MP4: as many frames as the live ones, of the same size.
    live_gif, final_gif = iio.imread(finished / layout.GIF, index=None), iio.imread(final / layout.GIF, index=None)
    assert final_gif.shape == live_gif.shape and not np.array_equal(final_gif, live_gif)
    live_mp4, final_mp4 = video_frames(finished / layout.MP4), video_frames(final / layout.MP4)
    assert len(final_mp4) == len(live_mp4) == len(live_steps) and final_mp4[0].shape == live_mp4[0].shape
    # The figure shows the same training steps.
    assert info["figure"]["steps"] == state["figure"]["steps"]
    assert all((final / name).is_file() for name in layout.FIGURES)
    # Every frame's files and the map's data, in final/ as in the live folder.
    assert sorted(p.name for p in (final / layout.FRAMES).iterdir()) == \
        sorted(p.name for p in (finished / layout.FRAMES).iterdir())
    assert sorted(p.name for p in (final / layout.EXPLORE).iterdir()) == \
        sorted(p.name for p in (finished / layout.EXPLORE).iterdir())
    # No work folder is left, and the site links both versions and says which is which.
    assert not (finished / layout.FINAL_PARTIAL).exists() and not (finished / layout.FINAL_OLD).exists()
    page = (finished / layout.PAGE).read_text()
    assert 'id="final-versions"' in page and 'href="final/latentlapse.gif"' in page
    assert 'href="final/latentlapse.mp4"' in page and 'href="latentlapse.mp4"' in page
    assert "shows both, side by side and in step: the live frames and the final cut" in page


def test_the_cut_is_as_good_as_the_live_frames(finished):
    # Measured here, from the files: 10-NN accuracy in 2-D and trustworthiness of every frame.
    def medians(folder):
        knn, trust = [], []
        for npz in sorted((folder / layout.FRAMES).glob("*.npz")):
            with np.load(npz) as saved:
                knn.append(knn_accuracy(saved["embedding"], saved["labels"]))
                trust.append(trustworthiness(saved["latents"], saved["embedding"]))
        return float(np.median(knn)), float(np.median(trust))

    knn_live, trust_live = medians(finished)
    knn_cut, trust_cut = medians(finished / layout.FINAL)
    # Margins: 0.02 of 10-NN accuracy is 2 of the 100 probe points; trustworthiness 0.005.
    assert knn_cut >= knn_live - 0.02, (knn_cut, knn_live)
    assert trust_cut >= trust_live - 0.005, (trust_cut, trust_live)
    info = json.loads((finished / layout.FINAL / layout.FINAL_INFO).read_text())
    assert info["quality"]["final"]["knn_2d"] == pytest.approx(knn_cut, abs=0.006)


def test_the_same_store_gives_the_same_bytes_by_the_pipeline_and_by_the_subcommand(finished, small_run, tmp_path):
    again = tmp_path / "site"
    assert report(small_run, again) == 0
    assert digests(again / layout.FINAL) == digests(finished / layout.FINAL)
    before = live_digests(finished)
    assert cut_main(["--tensors", str(small_run), "--out", str(finished)]) == 0
    assert digests(finished / layout.FINAL) == digests(again / layout.FINAL)
    assert live_digests(finished) == before
    assert state_of(finished)["status"] == layout.FINISHED
    assert not (finished / layout.RESERVE).exists()


def signal_during_the_cut(tensors, out, signum):
    """Run the reporter as a user would, send ``signum`` once its final cut has begun; return it ended, and its stderr."""
    proc = subprocess.Popen([PYTHON, "-m", "reporter", "--tensors", str(tensors), "--out", str(out)],
                            cwd=ROOT, env=trainer_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / layout.FINAL_PARTIAL).exists():
            assert proc.poll() is None, "the reporter ended before its final cut started"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    return proc, err


def test_killed_during_the_cut_keeps_the_live_outputs_and_a_rerun_makes_the_same_cut(finished, small_run, tmp_path):
    out = tmp_path / "site"
    signal_during_the_cut(small_run, out, signal.SIGKILL)
    assert state_of(out)["status"] == layout.FINISHING
    assert not (out / layout.FINAL).exists()
    assert live_digests(out) == live_digests(finished)  # the live outputs are whole
    assert report(small_run, out) == 0
    assert state_of(out)["status"] == layout.FINISHED and state_of(out)["final"]["status"] == "made"
    assert not (out / layout.FINAL_PARTIAL).exists()
    assert digests(out / layout.FINAL) == digests(finished / layout.FINAL)


def test_sigterm_during_the_cut_ends_it_keeps_the_finished_report_and_a_rerun_makes_the_same_cut(
        finished, small_run, tmp_path):
    # docker compose down while the reporter is "finishing": the cut ends at once, not after it.
    out = tmp_path / "site"
    proc, err = signal_during_the_cut(small_run, out, signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM
    state = state_of(out)
    assert state["status"] == layout.FINISHED and state["reason"] is None  # training ended: the report is whole
    assert state["final"]["status"] == "stopped"
    line = state["final"]["error"]
    assert line.startswith("the final cut was stopped by SIGTERM") and "latentlapse cut --tensors" in line
    assert f"reporter: {line}" in err.splitlines()
    assert not (out / layout.FINAL_PARTIAL).exists() and not (out / layout.FINAL).exists()
    assert live_digests(out) == live_digests(finished)
    assert "the final cut was stopped by SIGTERM" in (out / layout.PAGE).read_text()
    # The same command again: the cut is made, the same bytes as an uninterrupted one.
    assert report(small_run, out) == 0
    assert state_of(out)["final"]["status"] == "made"
    assert digests(out / layout.FINAL) == digests(finished / layout.FINAL)


def test_final_cut_off_makes_no_final_folder(small_run, tmp_path):
    out = tmp_path / "site"
    assert report(small_run, out, "--final-cut", "off") == 0
    assert not (out / layout.FINAL).exists()
    assert state_of(out)["final"]["status"] == "off"
    assert 'id="final"' not in (out / layout.PAGE).read_text()


def test_a_failed_cut_keeps_the_finished_live_report_and_says_why(small_run, finished, tmp_path, capsys):
    out = tmp_path / "site"
    out.mkdir()
    # A file where the cut builds its folder: a real failure of the cut, before any of it is written.
    (out / layout.FINAL_PARTIAL).write_text("in the way\n")
    assert report(small_run, out) == 0
    state = state_of(out)
    assert state["status"] == layout.FINISHED and state["reason"] is None
    assert state["final"]["status"] == "failed"
    line = state["final"]["error"]
    assert line.startswith("the final cut failed, the live outputs are kept: NotADirectoryError") and "\n" not in line
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"reporter: {line}"]
    assert not (out / layout.FINAL).exists()
    assert live_digests(out) == live_digests(finished)
    assert line.split(": ", 1)[0] in (out / layout.PAGE).read_text()
    # The subcommand says so too, with a non-zero exit; the report stays finished.
    assert cut_main(["--tensors", str(small_run), "--out", str(out)]) == 3
    assert state_of(out)["status"] == layout.FINISHED
    shutil.rmtree(out / layout.FINAL, ignore_errors=True)


def test_the_page_shows_the_final_cut_beside_the_live_outputs_in_a_browser(browser, finished):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1280, 375):
        visit = Visit(browser, finished / layout.PAGE, viewport={"width": width, "height": 900})
        page = visit.open()
        page.wait_for_function("() => document.querySelector('#final-gif-img').complete")
        assert page.eval_on_selector("#final-gif-img", "img => img.naturalWidth") > 0
        assert page.eval_on_selector("#final-gif-img", "img => img.getAttribute('src')") == \
            f"{layout.FINAL}/{layout.GIF}"
        # Each version's links open its own files: the cut's in final/, the live ones beside the page.
        rows = page.eval_on_selector_all(
            "#final-versions tbody tr",
            "rows => rows.map(r => [...r.querySelectorAll('td a')].map(a => a.getAttribute('href')))")
        assert rows and all(len(links) == 2 for links in rows), rows
        for cut, live in rows:
            assert cut == f"{layout.FINAL}/{live}" and (finished / cut).is_file() and (finished / live).is_file()
            assert (finished / cut).read_bytes() != (finished / live).read_bytes()
        caption = page.inner_text("#final-gif-caption")
        assert "10-NN accuracy" in caption and "(live " in caption
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        assert visit.errors == []
        assert [u for u in visit.requests if not u.startswith(visit.folder)] == []
        page.locator("#final").screenshot(path=str(ARTIFACTS / f"final-{width}.png"))
        visit.close()


def test_the_map_shows_the_live_frames_and_the_final_cut_in_step(browser, finished):  # noqa: F811
    # The report's map has two panels with a final cut: pointing at a probe in the live panel
    # marks the same probe where the cut put it (the data files' coordinates, as explore.js draws them).
    last = len(state_of(finished)["frames"]) - 1

    def world(folder):
        payload = explore.read_data_script(folder / explore.frame_files(last)["js"])
        return explore.unpack(payload["xy"], "<i2").reshape(-1, 2) / explore.COORD_SCALE

    live, cut = world(finished), world(finished / layout.FINAL)
    assert not np.allclose(live, cut)
    visit = Visit(browser, finished / layout.PAGE, viewport={"width": 1280, "height": 1000})
    page = open_page(visit)
    assert page.locator(".map-wrap").count() == 2
    assert page.locator(".panel-title").all_inner_texts() == ["live", "final cut"]
    box0, box1 = canvas_box(page, 0), canvas_box(page, 1)
    i = lonely([live, cut], box0)
    page.mouse.move(*on_screen(box0, live[i]))
    tip = page.locator('.map-wrap[data-panel="0"] .tooltip')
    tip.wait_for(state="visible")
    assert tip.locator(".point-index").inner_text() == str(i)
    x, y = on_screen(box1, cut[i])
    at = marker_at(page, 1, "hover-marker")
    assert at is not None and abs(at[0] - (x - box1["x"])) < 1.5 and abs(at[1] - (y - box1["y"])) < 1.5
    assert visit.errors == []
    visit.close()
