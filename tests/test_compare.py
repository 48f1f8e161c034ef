"""latentlapse compare on real reports of real training runs (tests/conftest.py: two_reports)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import PYTHON, ROOT, SMALL_RUN, run_reporter, run_trainer, trainer_env
from latentlapse import report_layout as layout
from reporter.compare.comparison import compare
from reporter.compare.reports import read_report
from reporter.embedding.align import similarity
from reporter.site import explore

FASHION = Path("/usr/share/datasets/fashion-mnist")


def latentlapse(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "latentlapse", *map(str, args)], cwd=ROOT, env=trainer_env(),
                          capture_output=True, text=True, timeout=timeout)


def coordinates(folder: Path, run: int, frame: int) -> np.ndarray:
    payload = explore.read_data_script(folder / layout.COMPARE_DATA / f"run-{run}" / f"frame-{frame:04d}.js")
    return explore.unpack(payload["xy"], "<i2").reshape(-1, 2)


def store_with(tmp_path, name, *changes) -> Path:
    """A finished real report of a small run with some trainer options changed."""
    options = list(SMALL_RUN)
    for flag, value in changes:
        if flag in options:
            options[options.index(flag) + 1] = value
        else:
            options += [flag, value]
    store = tmp_path / name / "tensors"
    done = run_trainer("--out", str(store), *options)
    assert done.returncode == 0, done.stderr
    site = tmp_path / name / "site"
    done = run_reporter("--tensors", str(store), "--out", str(site))
    assert done.returncode == 0, done.stderr
    return site


def test_two_trainer_seeds_give_one_aligned_comparison_site(two_reports, tmp_path):
    a, b = two_reports
    out = tmp_path / "cmp"
    done = latentlapse("compare", a, b, "--out", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"latentlapse compare: site at {out / layout.PAGE}"
    info = json.loads((out / layout.COMPARE_INFO).read_text())
    state_a = json.loads((a / layout.STATE).read_text())
    assert info["shared_points"] == 100 and info["match"] == "step"
    assert [r["name"] for r in info["runs"]] == ["seed-3", "seed-4"]
    assert info["ticks"] == [float(f["train_step"]) for f in state_a["frames"]]
    # Every frame of run B is turned onto A's at its step; the residual is what the fit leaves.
    residuals = info["runs"][1]["residuals"]
    assert len(residuals) == len(state_a["frames"]) and all(0 <= r <= np.sqrt(2) + 1e-9 for r in residuals)
    for f, residual in enumerate(residuals):
        xa, xb = coordinates(out, 0, f).astype(float), coordinates(out, 1, f).astype(float)
        with np.load(b / f"frames/frame-{f:04d}.npz") as saved:
            raw = saved["embedding"]
        # The written panel is a rotated, scaled copy of B's own map (shape kept exactly) ...
        assert similarity(raw, xb)[1] < 1e-3
        # ... and as near to A's as the fit says.
        assert abs(np.linalg.norm(xb - xa) / np.linalg.norm(xa - xa.mean(0)) - residual) < 1e-3
    page = (out / layout.PAGE).read_text()
    assert "trainer seed" in page and "seed-3" in page and "seed-4" in page
    assert page.count('class="map-wrap"') == 2


def test_a_report_compared_with_itself_gives_panels_that_coincide_exactly(two_reports, tmp_path):
    a, _ = two_reports
    out = tmp_path / "self"
    done = latentlapse("compare", a, a, "--out", out)
    assert done.returncode == 0, done.stderr
    info = json.loads((out / layout.COMPARE_INFO).read_text())
    assert [r["name"] for r in info["runs"]] == ["seed-3", "seed-3 (2)"]
    for f in range(len(info["ticks"])):
        assert np.array_equal(coordinates(out, 0, f), coordinates(out, 1, f))
    assert max(info["runs"][1]["residuals"]) < 1e-9


def test_partly_shared_probe_sets_are_aligned_on_the_shared_images(two_reports, tmp_path):
    a, _ = two_reports
    bigger = store_with(tmp_path, "probe-200", ("--probe-size", "200"))
    reports = [read_report(a), read_report(bigger)]
    comparison = compare(reports)
    assert comparison.shared == 100  # the trainer's 100 probes are among its 200 (trainer/train.py)
    big = comparison.runs[1]
    assert np.array_equal(reports[1].labels[big.take], reports[0].labels)
    out = tmp_path / "partial"
    assert latentlapse("compare", a, bigger, "--out", out).returncode == 0
    page = (out / layout.PAGE).read_text()
    assert "(of 100, 200: the maps show only the images every run has)" in page


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_mnist_against_fashion_mnist_is_refused_with_one_line(two_reports, tmp_path):
    a, _ = two_reports
    fashion = store_with(tmp_path, "fashion", ("--dataset", "fashion-mnist"))
    out = tmp_path / "refused"
    done = latentlapse("compare", a, fashion, "--out", out)
    assert done.returncode == 1
    assert done.stderr.strip() == ("latentlapse compare: error: seed-3 and fashion share no probe image (checked by "
                                   "content): compare runs of the same probe set, e.g. the same dataset and --probe-size")
    assert not out.exists()


def test_bad_inputs_get_one_line_and_nothing_is_overwritten(two_reports, tmp_path):
    a, b = two_reports
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    cases = [
        ([a], 2, "takes 2 to 8 report folders, got 1"),
        ([a, tmp_path / "nowhere"], 1, "is not a folder"),
        ([a, tmp_path], 1, "is not a report (no state.json)"),
        ([a, b, "--out", mine], 1, "is not empty and holds no comparison"),
        ([a, b, "--match", "epoch"], 2, "--match"),
    ]
    for args, code, words in cases:
        done = latentlapse("compare", *args)
        assert done.returncode == code, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (args, done.stderr)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"


def test_hostile_run_names_and_settings_stay_text(two_reports, tmp_path):
    a, b = two_reports
    hostile = tmp_path / "<img src=x onerror=alert(1)>"
    shutil.copytree(b, hostile)
    run = json.loads((hostile / layout.RUN).read_text())
    run["config"]["lr"] = "</script><script>alert(2)</script>"
    (hostile / layout.RUN).write_text(json.dumps(run))
    out = tmp_path / "hostile-cmp"
    done = latentlapse("compare", a, hostile, "--out", out)
    assert done.returncode == 0, done.stderr
    page = (out / layout.PAGE).read_text()
    assert "<img src=x" not in page and "<script>alert" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page
    data = page.split('<script type="application/json" id="site-data">')[1].split("</script>")[0]
    assert json.loads(data)["panels"][1]["name"] == "<img src=x onerror=alert(1)>"


def test_follow_updates_while_a_run_trains_and_ends_with_it(two_reports, tmp_path):
    a, _ = two_reports
    store, site = tmp_path / "live" / "tensors", tmp_path / "live" / "site"
    options = list(SMALL_RUN)
    options[options.index("--steps") + 1] = "60"
    env = {**trainer_env(), "OMP_NUM_THREADS": "1"}
    trainer = subprocess.Popen([PYTHON, "-m", "trainer", "--out", str(store), *options], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    reporter = subprocess.Popen([PYTHON, "-m", "reporter", "--tensors", str(store), "--out", str(site), "--follow",
                                 "--poll-interval", "0.2"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    out = tmp_path / "live-cmp"
    try:
        deadline = time.monotonic() + 120
        while not (site / explore.PROBES_JS).is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        follower = subprocess.Popen([PYTHON, "-m", "latentlapse", "compare", str(a), str(site), "--out", str(out),
                                     "--follow", "--poll-interval", "0.2"], cwd=ROOT, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = set()
        while follower.poll() is None and time.monotonic() < deadline:
            if (out / layout.COMPARE_INFO).is_file():
                info = json.loads((out / layout.COMPARE_INFO).read_text())
                seen.add((info["live"], info["runs"][1]["frames"]))
            time.sleep(0.1)
        assert follower.wait(timeout=60) == 0, follower.stderr.read()
        assert trainer.wait(timeout=60) == 0 and reporter.wait(timeout=60) == 0
    finally:
        for proc in (trainer, reporter):
            if proc.poll() is None:
                proc.kill()
    info = json.loads((out / layout.COMPARE_INFO).read_text())
    final_frames = len(json.loads((site / layout.STATE).read_text())["frames"])
    assert info["live"] is False and info["runs"][1]["frames"] == final_frames == 7
    assert any(live for live, _ in seen), seen                    # it said "live" while the run trained
    assert len({frames for _, frames in seen}) > 1, seen           # and grew with the run's frames
    assert "complete: no run is training" in (out / layout.PAGE).read_text()


def test_the_runs_index_links_a_comparison_made_beside_its_runs_and_shows_the_command(two_reports, tmp_path):
    from reporter.site.runs_index import write_runs_index

    index_folder = tmp_path / "runs"
    for report in two_reports:
        shutil.copytree(report, index_folder / report.parent.name / "site")
    write_runs_index(index_folder / layout.PAGE)
    done = subprocess.run([PYTHON, "-m", "latentlapse", "compare", "runs/seed-3/site", "runs/seed-4/site"],
                          cwd=tmp_path, env=trainer_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    made = index_folder / layout.COMPARISONS / "seed-3-vs-seed-4"
    assert (made / layout.PAGE).is_file()
    index = (index_folder / layout.PAGE).read_text()  # rebuilt by compare: it lists the comparison
    assert f'href="{layout.COMPARISONS}/seed-3-vs-seed-4/index.html"' in index
    assert "seed-3, seed-4 · 100 shared probe images" in index
    command = index.split('id="compare-command"')[1].split(">", 1)[1].split("</textarea>")[0]
    assert sorted(command.split()[2:]) == ["runs/seed-3/site", "runs/seed-4/site"]


def test_match_by_share_of_training_puts_frames_at_their_share_and_says_so(two_reports, tmp_path):
    reports = [read_report(r) for r in two_reports]
    comparison = compare(reports, "share")
    total = reports[0].frames[-1].record.total_steps
    assert comparison.ticks == [round(f.record.train_step / total, 6) for f in reports[0].frames]
    assert comparison.tick_label(comparison.ticks[-1]) == "100% of training"
    out = tmp_path / "share"
    assert latentlapse("compare", *two_reports, "--match", "share", "--out", out).returncode == 0
    assert "the share of each run&#39;s training done" in (out / layout.PAGE).read_text()


def test_the_settings_table_takes_what_the_run_file_says_where_the_config_left_a_default(two_reports, tmp_path):
    a, b = two_reports
    other = tmp_path / "epochs" / "site"
    shutil.copytree(b, other)
    run = json.loads((other / layout.RUN).read_text())
    run["config"]["steps"], run["steps"] = None, 24  # `--epochs 1`: the trainer worked the steps out
    (other / layout.RUN).write_text(json.dumps(run))
    from reporter.compare.site import run_settings

    rows, _ = run_settings(compare([read_report(a), read_report(other)]))
    steps = next(r for r in rows if r["name"] == "training steps")
    assert steps["values"] == ["24", "24"] and not steps["differs"]
