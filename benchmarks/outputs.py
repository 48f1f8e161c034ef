"""What people take away, at 39, 375 and 1,000 frames: GIF and MP4 sizes and scales, and their cost.

One run draws frames one by one with ``reporter.pictures.render.draw_frame`` (1,000 probe points pulling
apart into ten clusters: ``benchmarks/gif.py``'s frames) and writes them as the reporter does:

- GIF: one ``GifWriter`` per run length, told the expected frame count as the trainer's run file
  tells the reporter (39, 375, 1,000), plus one for 1,000 frames NOT told the length (the worst
  case: it must re-choose scale and subset as it goes). Reported: scale, size, "N of M frames",
  the cost of ``append`` per frame in windows along the run (flat = constant cost per frame),
  how many times all kept frames were re-encoded (scale changes) and how many times the subset
  was re-chosen (stride doublings, which re-encode nothing).
- MP4: one ``VideoWriter`` (``--mp4-every`` 25) per run length, told the length (it sets the
  run's x264 quality from its first segment to stay under 10 MB): the cost of each update of the
  longest (one segment encoded + the join), and each final video: size, CRF, frame count and
  codec read back with imageio.

Drawing and PNG writing are not timed.

    .venv/bin/python benchmarks/outputs.py            # ~10 min on 2 shared cores
    .venv/bin/python benchmarks/outputs.py --frames 100 --lengths 39,100   # a quick look
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import imageio.v2 as iio2  # noqa: E402

from gif import iter_frames  # noqa: E402
from reporter.outputs.gif import GifWriter  # noqa: E402
from reporter.pictures.png import save_png  # noqa: E402
from reporter.outputs.video import VideoWriter  # noqa: E402

DELAY_MS = 250
EVERY = 25


def windows(n: int, first: int = 2) -> list[tuple[int, int]]:
    """Ranges (1-based, inclusive) of the first, middle and last ~fifth (at most 50) of 1..n,
    from ``first`` on (the first frame of a GIF chooses its scale: not an append like the rest)."""
    size = max(1, min(50, (n - first + 1) // 5))
    starts = sorted({first, max(first, (first + n) // 2 - size // 2), max(first, n - size + 1)})
    return [(a, min(n, a + size - 1)) for a in starts if a <= n]


def mp4_facts(path: Path) -> str:
    reader = iio2.get_reader(path, "FFMPEG")
    try:
        meta, count = reader.get_meta_data(), reader.count_frames()
    finally:
        reader.close()
    return (f"{path.stat().st_size / 1e6:.2f} MB, {count} frames read back, {meta['codec']} "
            f"{meta['pix_fmt'].split('(')[0]}, {meta['size'][0]}x{meta['size'][1]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--lengths", default="39,375,1000", help="run lengths to report (frames)")
    args = parser.parse_args(argv)
    n = args.frames
    lengths = [m for m in map(int, args.lengths.split(",")) if m <= n]

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        writers = {m: GifWriter(out / f"told-{m}.gif", delay_ms=DELAY_MS, expected_frames=m)
                   for m in lengths}
        unknown = GifWriter(out / "unknown.gif", delay_ms=DELAY_MS)
        writers["unknown"] = unknown
        appends = {key: [] for key in writers}
        history = {key: [] for key in writers}  # (size, stride) after each append
        videos = {}
        for m in lengths:  # one video per run length, told it as the reporter is (the run file)
            (out / f"video-{m}").mkdir()
            (out / f"video-{m}" / "frames").symlink_to(out / "frames")
            videos[m] = VideoWriter(out / f"video-{m}", fps=1000 / DELAY_MS, every=EVERY, threads=1,
                                    expected_frames=m)
        updates, finals, pngs = [], {}, []
        started = time.perf_counter()
        for k, rgb in enumerate(iter_frames(n)):
            pngs.append(f"frames/frame-{k:04d}.png")
            save_png(out / pngs[-1], rgb)
            for key, writer in writers.items():
                if key != "unknown" and k >= key:
                    continue
                t = time.perf_counter()
                writer.append(rgb)
                appends[key].append(time.perf_counter() - t)
                history[key].append((writer.size, writer.stride))
            for m, video in videos.items():
                if k >= m:
                    continue
                t = time.perf_counter()
                updated = video.update(pngs, final=k + 1 == m)
                if updated and m == max(lengths) and (k + 1) % EVERY == 0:
                    updates.append((k + 1, time.perf_counter() - t))
                if k + 1 == m:
                    finals[m] = (time.perf_counter() - t, video.path, video.crf)
            if (k + 1) % 100 == 0:
                print(f"  {k + 1} frames ({time.perf_counter() - started:.0f} s)", flush=True)

        print(f"\nGIF (budget 5 MiB, floor 75 %, {DELAY_MS} ms per frame of the run)")
        for key, writer in writers.items():
            sizes = [s for s, _ in history[key]]
            rescales = sum(1 for a, b in zip(sizes, sizes[1:]) if a != b)
            strides = [s for _, s in history[key]]
            doublings = sum(1 for a, b in zip(strides, strides[1:]) if a != b)
            told = f"told {key}" if key != "unknown" else f"not told ({n})"
            cost = "; ".join(
                f"frames {a}-{b}: median {statistics.median(appends[key][a - 1:b]) * 1000:.0f} ms"
                for a, b in windows(len(appends[key])))
            print(f"- {told}: {writer.frames_text}, {writer.size[0]}x{writer.size[1]} px "
                  f"(scale {writer.scale:.0%}, stride {writer.stride}), {writer.bytes / 2**20:.2f} MiB; "
                  f"all kept frames re-encoded {rescales}x, subset re-chosen {doublings}x; "
                  f"append {cost}; max {max(appends[key]) * 1000:.0f} ms; note: {writer.note}")
        print(f"\nMP4 (every frame at full size, an update every {EVERY} frames)")
        times = [t for _, t in updates]
        for a, b in windows(len(updates), first=1):
            part = updates[a - 1:b]
            print(f"- updates {a}-{b} (at frames {part[0][0]}-{part[-1][0]}): median "
                  f"{statistics.median(t for _, t in part):.2f} s")
        print(f"- all {len(updates)} updates: median {statistics.median(times):.2f} s, "
              f"max {max(times):.2f} s, i.e. {statistics.median(times) / EVERY * 1000:.0f} ms per frame")
        for m, (elapsed, path, crf) in finals.items():
            print(f"- {m} frames (told): {mp4_facts(path)}, CRF {crf}; last update {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
