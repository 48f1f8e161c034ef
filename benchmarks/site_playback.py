"""The interactive map in Chromium: playback frame rate, opening a long report, the cost of a frame's data.

Three measurements, each on a report written here by the reporter's own code (reporter.site.explore
for the map's data, reporter.site.page for the page) from real MNIST probe images:

``playback``  for each point count, a report of ``--frames`` frames whose ten clusters drift and
              turn, played at 16 frames/s (interpolated) in headless Chromium; the page's
              requestAnimationFrame callbacks are timed for ``--seconds``. The same page paused is
              the baseline (what the browser gives an idle page), so "fps playing / fps idle" is
              the share of the display rate the map keeps. Once with nothing pinned, once with a
              pinned point (trail over every frame, neighbours) and two classes highlighted.
``open``      a report of ``--long-frames`` frames: time from navigation to the map's first
              drawn frame, and how many frame scripts the page asked for by then.
``write``     :func:`reporter.site.explore.write_frame` timed at every frame of that long report
              (1,000 points with sprites): the first ten against the last ten.

Usage: .venv/bin/python benchmarks/site_playback.py [--points 1000,5000] [--frames 40]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reporter.site import explore  # noqa: E402
from reporter.pictures.png import save_png  # noqa: E402
from reporter.pictures.render import draw_frame  # noqa: E402
from reporter.site.page import write_site  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
CLASSES = [str(d) for d in range(10)]

# Collects requestAnimationFrame timestamps for `ms` milliseconds; resolves with the intervals.
RAF_PROBE = """ms => new Promise(done => {
  const t = []; const start = performance.now();
  function f(now) { t.push(now); if (now - start < ms) requestAnimationFrame(f); else done(t); }
  requestAnimationFrame(f);
})"""


def mnist(n: int):
    """The first ``n`` real MNIST test images (N, 28, 28) in [0, 1] and their labels (repeated past 10,000)."""
    from trainer import data

    root = Path(__file__).resolve().parent.parent
    cache = root / ".cache" / "test-data"
    dataset = data.load("mnist", cache_dir=cache if cache.is_dir() else None, download=False)
    idx = np.arange(n) % len(dataset.test_labels)
    return dataset.test_images[idx].astype(np.float64) / 255.0, dataset.test_labels[idx].astype(np.int64)


def drifting_clusters(labels: np.ndarray, n_frames: int, seed: int = 0) -> np.ndarray:
    """(T, N, 2): ten clusters that start mixed, pull apart and turn slowly, as a training run's map does."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    angle = 2 * np.pi * labels / 10
    home = np.stack([np.cos(angle), np.sin(angle)], axis=1) * 30
    noise = rng.normal(size=(n, 2)) * 6
    out = np.empty((n_frames, n, 2))
    for t in range(n_frames):
        a = t / max(1, n_frames - 1)
        turn = 0.6 * a
        rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        wobble = rng.normal(size=(n, 2)) * 0.8
        out[t] = ((home * a + noise * (1.2 - a)) @ rot.T) + wobble
    return out


def blurred(images: np.ndarray, amount: float) -> np.ndarray:
    """A stand-in for reconstructions: the images smoothed (box blur), sharper as training goes on."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)), mode="edge")
    box = sum(padded[:, dy:dy + 28, dx:dx + 28] for dy in range(3) for dx in range(3)) / 9
    return np.clip((1 - amount) * box + amount * images, 0, 1)


def write_report(folder: Path, n_points: int, n_frames: int, *, pngs: bool = True) -> list[float]:
    """Write a report of ``n_frames`` frames; return the seconds each frame's explore data took."""
    images, labels = mnist(n_points)
    coords = drifting_clusters(labels, n_frames)
    rng = np.random.default_rng(1)
    latents = rng.normal(size=(n_points, 20))
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    picture = draw_frame(coords[-1], labels, CLASSES, images, blurred(images, 0.5), step=n_frames - 1,
                         global_step=(n_frames - 1) * 26, eval_loss=0.03)
    times, records = [], []
    for t in range(n_frames):
        recon = blurred(images, t / max(1, n_frames - 1))
        losses = ((recon - images) ** 2).mean(axis=(1, 2))
        latents = latents + rng.normal(size=latents.shape) * 0.05
        started = time.perf_counter()
        explore.write_frame(folder, t, coords[t], labels, CLASSES, step=t, global_step=t * 26, latents=latents,
                            inputs=images, reconstructions=recon, losses=losses)
        times.append(time.perf_counter() - started)
        png = f"frames/frame-{t:04d}.png"
        if pngs or t == n_frames - 1:
            save_png(folder / png, picture)  # one picture for every frame: its decoding is what counts
        records.append({"index": t, "step": t, "global_step": t * 26, "eval_loss": float(losses.mean()),
                        "png": png, "csv": f"frames/frame-{t:04d}.csv", "npz": f"frames/frame-{t:04d}.npz"})
    state = {"format": 1, "tensors": str(folder / "tensors"), "status": "finished", "frames": records}
    write_site(folder, state, {"dataset": "mnist", "class_names": CLASSES, "probe_size": n_points})
    return times


def measure_playback(browser, index: Path, seconds: float, fragment: str) -> dict:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(index.resolve().as_uri() + fragment)
    page.wait_for_selector("#explore:not([hidden])")
    page.locator("#map").scroll_into_view_if_needed()
    if "pin=" in fragment:
        page.wait_for_selector("#trail", timeout=120000)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    idle = np.diff(page.evaluate(RAF_PROBE, 2000))
    page.click("#play")
    page.wait_for_timeout(3000)  # one loop at 16 frames/s loads every frame's data
    before = _metrics(cdp)
    playing = np.diff(page.evaluate(RAF_PROBE, seconds * 1000))
    after = _metrics(cdp)
    moved = page.inner_text("#frame-caption")
    page.click("#play")
    page.close()
    if errors:
        raise RuntimeError(f"page errors: {errors}")
    return {
        "fps_idle": 1000 / float(np.median(idle)), "fps_playing": 1000 * len(playing) / float(playing.sum()),
        "median_ms": float(np.median(playing)), "p95_ms": float(np.percentile(playing, 95)),
        "over_33ms": int((playing > 1000 / 30).sum()), "intervals": len(playing), "caption": moved,
        # Main-thread work (scripts, style, layout, paint tasks) per displayed frame: what the page
        # costs, less sensitive than the frame rate to other processes taking the CPU.
        "busy_ms_per_frame": 1000 * (after["TaskDuration"] - before["TaskDuration"]) / len(playing),
        "script_ms_per_frame": 1000 * (after["ScriptDuration"] - before["ScriptDuration"]) / len(playing),
    }


def _metrics(cdp) -> dict:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def measure_open(browser, index: Path) -> dict:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    started = time.perf_counter()
    page.goto(index.resolve().as_uri())
    page.wait_for_selector("#explore:not([hidden])")
    page.wait_for_function("() => document.querySelector('#map').width > 0")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    seconds = time.perf_counter() - started
    page.close()
    return {"seconds": seconds, "frame_scripts": sum("/explore/frame-" in u for u in requests),
            "requests": len(requests)}


def folder_bytes(folder: Path, sub: str = "") -> int:
    return sum(p.stat().st_size for p in (folder / sub).rglob("*") if p.is_file())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--points", default="1000,5000", help="point counts to play, comma-separated")
    p.add_argument("--frames", type=int, default=40, help="frames of each playback report")
    p.add_argument("--seconds", type=float, default=6.0, help="seconds of playback timed")
    p.add_argument("--long-frames", type=int, default=375, help="frames of the report opened (0: skip)")
    p.add_argument("--keep", help="write the reports here instead of a temporary folder")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="site-playback-"))
    results = {"playback": {}, "open": None, "write": None}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for n in [int(x) for x in args.points.split(",")]:
                folder = work / f"play-{n}"
                shutil.rmtree(folder, ignore_errors=True)
                write_report(folder, n, args.frames)
                index = folder / "index.html"
                plain = measure_playback(browser, index, args.seconds, "#frame=1&speed=16")
                busy = measure_playback(browser, index, args.seconds, "#frame=1&speed=16&pin=7&classes=2,5")
                results["playback"][n] = {"plain": plain, "pinned": busy,
                                          "explore_bytes": folder_bytes(folder, "explore")}
                for name, r in (("nothing pinned", plain), ("pinned + 2 classes", busy)):
                    print(f"{n:>6} points, {name:<18}: {r['fps_playing']:5.1f} fps playing, "
                          f"{r['fps_idle']:5.1f} idle (ratio {r['fps_playing'] / r['fps_idle']:.2f}); interval "
                          f"median {r['median_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
                          f"{r['over_33ms']}/{r['intervals']} over 33 ms; main thread busy "
                          f"{r['busy_ms_per_frame']:.1f} ms/frame (scripts {r['script_ms_per_frame']:.1f})", flush=True)
            if args.long_frames:
                folder = work / f"long-{args.long_frames}"
                shutil.rmtree(folder, ignore_errors=True)
                times = write_report(folder, 1000, args.long_frames, pngs=False)
                first, last = statistics.median(times[1:11]), statistics.median(times[-10:])
                results["write"] = {"first10_median_s": first, "last10_median_s": last, "ratio": last / first,
                                    "explore_bytes": folder_bytes(folder, "explore"), "frames": len(times)}
                print(f"write_frame, 1,000 points: median {first * 1000:.0f} ms over frames 2-11, "
                      f"{last * 1000:.0f} ms over the last 10 (ratio {last / first:.2f}); explore/ "
                      f"{folder_bytes(folder, 'explore') / 1e6:.1f} MB for {len(times)} frames", flush=True)
                opened = [measure_open(browser, folder / "index.html") for _ in range(3)]
                results["open"] = {"seconds_median": statistics.median(o["seconds"] for o in opened),
                                   "frame_scripts": opened[0]["frame_scripts"], "requests": opened[0]["requests"]}
                print(f"open a {args.long_frames}-frame report: map drawn after "
                      f"{results['open']['seconds_median']:.2f} s (median of 3), "
                      f"{results['open']['frame_scripts']} frame scripts requested", flush=True)
            browser.close()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
