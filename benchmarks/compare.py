"""latentlapse compare (reporter/compare/) measured: time per matched step, alignment, the page in Chromium.

Two real default runs (trainer seeds 0 and 1: 937 steps, 39 frames of 1,000 probe images), each
reported by the reporter (embedding seed 0), and the first run reported again with embedding
seed 1 (the same latents). All cached in ``--cache-dir``. Then, in one process:

* one frame of a single report, measured in the same run: the first run reported again, its
  median ``embed_seconds``, the median time between two frames' publication, and its whole time
  over its frames;
* two runs (seed 0 against seed 1): the whole comparison's time (read, align, site, GIF, MP4,
  figure) and its time per matched step;
* eight runs (the three reports, repeated: the cost does not depend on what the maps show): the
  same figures, then the page in headless Chromium: its load time (until every panel drew its
  first frame) and its frame rate while playing at 8 steps a second;
* the alignment's residual: between the two embeddings of the same latents (embedding seed only),
  and between the two trainer seeds, per step.

    .venv/bin/python benchmarks/compare.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reporter.compare import site  # noqa: E402
from reporter.compare.comparison import compare  # noqa: E402
from reporter.compare.outputs import write_outputs  # noqa: E402
from reporter.compare.reports import read_report  # noqa: E402


def sh(*args, env=None):
    done = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(map(str, args))} failed:\n{done.stderr[-2000:]}")


def prepare(cache: Path) -> list[Path]:
    """The three reports: trainer seed 0 (embedding seeds 0 and 1) and trainer seed 1 (cached)."""
    env = {"OMP_NUM_THREADS": "1", "TRAINER_CACHE_DIR": str(ROOT / ".cache" / "test-data")}
    for seed in (0, 1):
        store = cache / f"store-{seed}"
        if not (store / "latentlapse-run.json").is_file():
            shutil.rmtree(store, ignore_errors=True)
            sh("-m", "trainer", "--out", store, "--seed", seed, "--threads", "1", "--no-progress", env=env)
    reports = []
    for store, seed in ((0, 0), (0, 1), (1, 0)):
        out = cache / f"report-t{store}-e{seed}"
        state = out / "state.json"
        if not state.is_file() or json.loads(state.read_text()).get("status") != "finished":
            shutil.rmtree(out, ignore_errors=True)
            sh("-m", "reporter", "--tensors", cache / f"store-{store}", "--out", out, "--seed", seed, env=env)
        reports.append(out)
    return reports


def timed_comparison(folders, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    reports = [read_report(f, f"{f.name} ({i})") for i, f in enumerate(folders)]
    t1 = time.perf_counter()
    comparison = compare(reports)
    t2 = time.perf_counter()
    outputs = write_outputs(out, comparison, site.titles(comparison))
    t3 = time.perf_counter()
    site.write_site(out, comparison, live=False, outputs=outputs)
    t4 = time.perf_counter()
    # The GIF and MP4 alone (what --follow redraws while a run trains; the figure is made once, at the end).
    write_outputs(out.with_name(out.name + "-no-figure"), comparison, site.titles(comparison), figure=False)
    t5 = time.perf_counter()
    ticks = len(comparison.ticks)
    without_figure = (t4 - t0) - (t3 - t2) + (t5 - t4)
    return {"runs": len(folders), "ticks": ticks, "total": t4 - t0, "per_step": (t4 - t0) / ticks,
            "read": t1 - t0, "align": t2 - t1, "outputs": t3 - t2, "site": t4 - t3, "gif_mp4": t5 - t4,
            "per_step_without_figure": without_figure / ticks,
            "residuals": [r.residuals for r in comparison.runs[1:]]}


def single_frame_seconds(folder: Path) -> dict:
    frames = json.loads((folder / "state.json").read_text())["frames"]
    embed = [f["embed_seconds"] for f in frames if f.get("embed_seconds")]
    published = [f["published"] for f in frames if f.get("published")]
    gaps = [b - a for a, b in zip(published[1:-1], published[2:])]
    return {"embed": statistics.median(embed), "between_frames": statistics.median(gaps) if gaps else None}


def browser(page_path: Path, seconds: float = 5.0) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--headless"])
        page = b.new_page(viewport={"width": 1280, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        t0 = time.perf_counter()
        page.goto(page_path.resolve().as_uri() + "#frame=1")
        page.wait_for_function("() => document.querySelectorAll('#classes button').length > 0")
        page.wait_for_function("""() => [...document.querySelectorAll('.map-wrap canvas')].every(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 3; i < d.length; i += 4 * 97) if (d[i] && (d[i-3] < 200 || d[i-2] < 200)) return true;
            return false; })""", timeout=60000)
        load = time.perf_counter() - t0
        page.select_option("#speed", "8")
        page.click("#play")
        fps = page.evaluate("""(ms) => new Promise(done => {
            let n = 0; const start = performance.now();
            function tick(now) { n++; if (now - start < ms) requestAnimationFrame(tick); else done(n * 1000 / (now - start)); }
            requestAnimationFrame(tick); })""", int(seconds * 1000))
        caption = page.inner_text("#frame-caption")
        b.close()
    return {"load": load, "fps": fps, "errors": errors, "caption_after": caption}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache-dir", default=str(ROOT / ".cache" / "benchmarks" / "compare"))
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    a, a_again, b = prepare(cache)
    work = Path(tempfile.mkdtemp(prefix="compare-bench-"))
    # One frame of a single report, side by side with the comparisons: the first run reported again here.
    started = time.perf_counter()
    sh("-m", "reporter", "--tensors", cache / "store-0", "--out", work / "single", env={"OMP_NUM_THREADS": "1"})
    single = {**single_frame_seconds(work / "single"),
              "whole": (time.perf_counter() - started) / len(json.loads((work / "single" / "state.json").read_text())["frames"])}
    two = timed_comparison([a, b], work / "two")
    eight = timed_comparison([a, b, a_again, a, b, a_again, a, b], work / "eight")
    same = compare([read_report(a, "e0"), read_report(a_again, "e1")]).runs[1].residuals
    trainer = two["residuals"][0]
    page = browser(work / "eight" / "index.html")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"one frame of a single report (made in this run): embedding {single['embed']:.2f} s (median), "
          f"{single['between_frames']:.2f} s between two frames' publication (median), "
          f"{single['whole']:.2f} s (the whole report's time over its frames)")
    print("| runs | steps | total s | s / step | read | align | GIF+MP4+figure | site | GIF+MP4 alone | s / step without the figure |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in (two, eight):
        print(f"| {r['runs']} | {r['ticks']} | {r['total']:.1f} | {r['per_step']:.2f} | {r['read']:.1f} | "
              f"{r['align']:.2f} | {r['outputs']:.1f} | {r['site']:.1f} | {r['gif_mp4']:.1f} | "
              f"{r['per_step_without_figure']:.2f} |")
    print(f"eight runs in Chromium: load {page['load']:.2f} s, {page['fps']:.0f} frames/s while playing "
          f"at 8 steps/s; errors {page['errors']}")
    print(f"residual, the same latents with two embedding seeds: median {statistics.median(same):.4f}, "
          f"max {max(same):.4f}")
    print(f"residual, trainer seeds 0 and 1, per step: {', '.join(f'{r:.3f}' for r in trainer)}")
    print(f"  median {statistics.median(trainer):.4f}; last 10 steps median {statistics.median(trainer[-10:]):.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"single": single, "two": two, "eight": eight, "page": page,
                                               "same_latents": same, "trainer_seeds": trainer}, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
