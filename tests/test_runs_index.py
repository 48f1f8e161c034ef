"""The index of runs: listing, order, statuses, escaping, two writers at once, and a real reporter keeping it."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

import pytest

from reporter import ReporterError
from reporter.config import from_args
from reporter.site.runs_index import LOCK_FILE, RunsIndex, build_rows, write_runs_index
from reporter.site.page import write_site
from site_fixture import build_output
from test_browser import ARTIFACTS, Visit, browser  # noqa: F401  (the module's browser fixture)

HOSTILE = "<img src=x onerror=alert(1)>"


def make_report(folder: Path, *, status: str, started: str, dataset: str = "mnist", n_frames: int = 2) -> Path:
    """A real report (real MNIST frames, GIF, site) in ``folder``."""
    state, run = build_output(folder, n_frames=n_frames, n_probe=40, status=status)
    run = dict(run, started=started, dataset=dataset)
    state["status"] = status
    (folder / "state.json").write_text(json.dumps(state))
    write_site(folder, state, run)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two reports as compose lays them out (out/<run>/) and one as the demo does (runs/<run>/site/)."""
    out = tmp_path_factory.mktemp("runs") / "out"
    make_report(out / "20261126T140300Z", status="finished", started="2026-11-26T14:03:00Z", n_frames=3)
    make_report(out / "20261127T090000Z" / "site", status="failed", started="2026-11-27T09:00:00Z")
    make_report(out / HOSTILE, status="running", started="2026-11-25T08:00:00Z", dataset=HOSTILE)
    (out / "notes").mkdir()  # a folder that is not a report is left out
    (out / "latest").symlink_to("20261126T140300Z")  # the demo's link to the latest run: not listed twice
    write_runs_index(out / "index.html")
    return out


def test_rows_newest_first_with_their_facts(runs):
    rows = build_rows(runs)
    assert [r.name for r in rows] == ["20261127T090000Z", "20261126T140300Z", HOSTILE]
    assert [r.status for r in rows] == ["failed", "finished", "running"]
    failed, finished, _ = rows
    assert failed.href == "20261127T090000Z/site/index.html"
    assert finished.frames == 3 and finished.thumbnail == "20261126T140300Z/frames/frame-0002.png"
    state = json.loads((runs / "20261126T140300Z" / "state.json").read_text())
    assert finished.final_loss == f"{state['frames'][-1]['eval_loss']:.4g}"
    assert finished.knn == f"{state['frames'][-1]['knn_latent']:.3g}"
    assert finished.dataset == "MNIST" and finished.steps == f"{state['frames'][-1]['global_step']:,} of {state['frames'][-1]['global_step']:,}"


def test_index_in_chromium_lists_the_runs_and_opens_them(browser, runs):  # noqa: F811
    v = Visit(browser, runs / "index.html", viewport={"width": 1000, "height": 900})
    dialogs = []
    v.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page = v.open()
        names = page.locator("#runs .name").all_inner_texts()
        assert names == ["20261127T090000Z", "20261126T140300Z", HOSTILE]  # the name stays text
        assert page.locator("#runs .status").all_inner_texts() == ["failed", "finished", "running"]
        assert page.locator("#runs .dataset").all_inner_texts() == ["MNIST", "MNIST", HOSTILE]
        assert page.locator("img[src='x']").count() == 0 and dialogs == []
        for img in page.locator("#runs img").all():
            img.scroll_into_view_if_needed()
            page.wait_for_function("i => i.complete", arg=img.element_handle())
            assert img.evaluate("i => i.naturalWidth") > 0
        assert page.get_attribute("meta[http-equiv='refresh']", "content") == "15"  # one run is live
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "runs-index.png"), full_page=True)
        assert [u for u in v.requests if not u.startswith(v.folder)] == []
        assert v.errors == []
        page.click(f"#runs .name >> text={HOSTILE}")  # the percent-encoded link reaches that run's site
        page.wait_for_load_state("load")
        assert page.url.split("#")[0].endswith("%3E/index.html") and "%3Cimg" in page.url
        assert page.locator("#scrubber").count() == 1
    finally:
        v.close()


def test_index_at_phone_width_in_dark_mode(browser, runs):  # noqa: F811
    v = Visit(browser, runs / "index.html", viewport={"width": 375, "height": 800}, color_scheme="dark", is_mobile=True)
    try:
        page = v.open()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        rgb = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert sum(int(c) for c in rgb[rgb.index("(") + 1 : -1].split(",")[:3]) < 120, rgb
        page.screenshot(path=str(ARTIFACTS / "runs-index-phone-dark.png"), full_page=True)
        assert v.errors == []
    finally:
        v.close()


def _finish_together(folder: str, name: str, rounds: int, barrier) -> None:
    """One 'reporter': each round, write its own state.json, then rebuild the index."""
    state_path = Path(folder) / name / "state.json"
    for k in range(rounds):
        state = json.loads(state_path.read_text())
        state["status"] = ("running", "stalled", "finished")[k % 3]
        state_path.write_text(json.dumps(state))
        barrier.wait()  # both wrote their state; now both rebuild the index at the same moment
        write_runs_index(Path(folder) / "index.html")
        barrier.wait()  # the test reads the index
        barrier.wait()


def test_two_reporters_finishing_at_once_leave_both_statuses(tmp_path):
    for name in ("a", "b"):
        make_report(tmp_path / name, status="running", started=f"2026-11-26T14:0{'ab'.index(name)}:00Z")
    rounds = 9
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_finish_together, args=(str(tmp_path), n, rounds, barrier)) for n in ("a", "b")]
    for p in procs:
        p.start()
    try:
        for k in range(rounds):
            barrier.wait()
            barrier.wait()
            html = (tmp_path / "index.html").read_text()
            want = ("running", "stalled", "finished")[k % 3]
            assert html.count(f'class="status status-{want}"') == 2, k
            barrier.wait()
    finally:
        for p in procs:
            p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    assert not list(tmp_path.glob(".index.html.*.tmp"))


def test_runs_index_refreshes_on_status_changes_and_now_and_then(tmp_path):
    make_report(tmp_path / "r", status="running", started="2026-11-26T14:00:00Z")
    index = RunsIndex(tmp_path / "index.html", refresh_every=3600)
    assert index.update("running") is True
    assert index.update("running") is False  # nothing changed and not due
    assert index.update("finished") is True
    assert RunsIndex(tmp_path / "index.html", refresh_every=0).update("finished") is True
    gone = RunsIndex(tmp_path / "removed" / "index.html")  # the folder went away: a warning, no failure
    assert gone.update("finished") is False


def test_an_index_folder_it_cannot_write_is_said_once_and_the_report_goes_on(tmp_path, caplog):
    # Tests run as root, which may write anywhere: a folder where the lock file should be stands in
    # for another user's out/ (seen in Docker: PermissionError on /out/.latentlapse-index.lock).
    make_report(tmp_path / "r", status="running", started="2026-11-26T14:00:00Z")
    (tmp_path / LOCK_FILE).mkdir()
    index = RunsIndex(tmp_path / "index.html", refresh_every=0)
    with caplog.at_level("WARNING", logger="reporter.site.runs_index"):
        assert index.update("running") is False
        assert index.update("finished") is False
    warnings = [r for r in caplog.records if "cannot write the runs index" in r.getMessage()]
    assert len(warnings) == 1 and "IsADirectoryError" in warnings[0].getMessage()
    assert not (tmp_path / "index.html").exists()
    (tmp_path / LOCK_FILE).rmdir()
    assert index.update("finished") is True and (tmp_path / "index.html").is_file()


def test_bad_runs_index_paths_say_what_to_do(tmp_path):
    with pytest.raises(ReporterError, match="index page"):
        from_args(["--tensors", str(tmp_path), "--runs-index", str(tmp_path)], environ={})
    with pytest.raises(ReporterError, match="does not exist"):
        from_args(["--tensors", str(tmp_path), "--runs-index", str(tmp_path / "no" / "index.html")], environ={})
    config = from_args(["--tensors", str(tmp_path)], environ={"REPORTER_RUNS_INDEX": str(tmp_path / "index.html")})
    assert config.runs_index == str(tmp_path / "index.html")


def test_unreadable_report_is_listed_with_the_reason(tmp_path):
    make_report(tmp_path / "good", status="finished", started="2026-11-26T14:00:00Z")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "state.json").write_text("{not json")
    write_runs_index(tmp_path / "index.html")
    rows = {r.name: r for r in build_rows(tmp_path)}
    assert rows["broken"].status == "unreadable" and "state.json" in rows["broken"].problem
    assert rows["good"].status == "finished"


@pytest.mark.e2e
def test_a_real_reporter_keeps_the_index_beside_its_report(tmp_path, small_run):
    from test_reporter import report

    other = tmp_path / "older"
    make_report(other, status="failed", started="2020-01-01T00:00:00Z")
    out = tmp_path / "new-run"
    assert report(small_run, out, "--runs-index", str(tmp_path / "index.html")) == 0
    rows = build_rows(tmp_path)
    assert [(r.name, r.status) for r in rows] == [("new-run", "finished"), ("older", "failed")]
    assert rows[0].frames == 4 and rows[0].thumbnail == "new-run/frames/frame-0003.png"
    shutil.rmtree(other)  # rebuilt from the listing: a removed run disappears at the next write
    write_runs_index(tmp_path / "index.html")
    assert [r.name for r in build_rows(tmp_path)] == ["new-run"]
    assert "older/index.html" not in (tmp_path / "index.html").read_text()
