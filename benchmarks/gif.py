"""Cost of adding frame k to the animated GIF: GifWriter (append) vs re-encoding every frame (naive).

The naive way is what a first version would do: after each new frame, write all frames so far
with ``imageio.imwrite(..., loop=0, duration=...)``; its cost grows with k, so the whole run is
quadratic. GifWriter LZW-encodes only the new frame. Both publish the GIF atomically.

Frames are drawn once beforehand with ``reporter.pictures.render.draw_frame`` (1,000 probe points pulling
apart into ten clusters over the run); drawing is not timed. The naive cost at frame k does not
depend on earlier frames' timings, so it is measured at sample points (``--naive-at``) instead of
every k, which keeps the run to a couple of minutes on two shared cores.

    .venv/bin/python benchmarks/gif.py --frames 60
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latentlapse.atomic import write_bytes  # noqa: E402
from reporter.outputs.gif import GifWriter  # noqa: E402
from reporter.pictures.render import draw_frame  # noqa: E402

DELAY_MS = 250


def iter_frames(n_frames: int, seed: int = 0):
    """Frames of a probe set whose ten clusters separate as training goes on, drawn one by one
    (a run of 25 train steps per frame, ``n_frames`` frames)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), 100)
    angle = labels * 2 * np.pi / 10
    target = 12 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    yy, xx = np.mgrid[0:28, 0:28]
    radius = np.hypot(yy - 14, xx - 14)
    inputs = np.stack([np.exp(-((radius - 4 - k) ** 2) / 3) for k in labels]).astype(np.float32)
    emb = rng.normal(scale=4.0, size=(len(labels), 2))
    for k in range(n_frames):
        emb = 0.9 * emb + 0.1 * target + rng.normal(scale=0.4, size=emb.shape)
        noise = 0.5 / (1 + k) * rng.normal(size=inputs.shape)
        recons = np.clip(inputs + noise, 0, 1)
        yield draw_frame(emb, labels, [str(d) for d in range(10)], inputs, recons,
                         step=25 * k, total_steps=25 * (n_frames - 1),
                         eval_loss=0.05 / (1 + 0.1 * k), train_loss=0.06 / (1 + 0.1 * k))


def make_frames(n_frames: int, seed: int = 0) -> list[np.ndarray]:
    """:func:`iter_frames` as a list."""
    return list(iter_frames(n_frames, seed))


def naive_publish(path: Path, frames: list[np.ndarray]) -> None:
    data = iio.imwrite("<bytes>", np.stack(frames), extension=".gif", loop=0, duration=DELAY_MS)
    write_bytes(path, data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--naive-at", type=str, default="1,2,5,10,20,30,40,50,-3,-2,-1",
                        help="frame numbers k (1-based; negative counts from the end) at which "
                             "to time the naive re-encode; 'all' for every k")
    args = parser.parse_args(argv)
    n = args.frames
    if args.naive_at == "all":
        naive_ks = list(range(1, n + 1))
    else:
        naive_ks = sorted({k if k > 0 else n + 1 + k for k in map(int, args.naive_at.split(","))
                           if 1 <= (k if k > 0 else n + 1 + k) <= n})

    t0 = time.perf_counter()
    frames = make_frames(n)
    print(f"drew {n} frames of {frames[0].shape[1]}x{frames[0].shape[0]} px "
          f"in {time.perf_counter() - t0:.1f} s (not timed below)")

    with tempfile.TemporaryDirectory() as tmp:
        ours_path, naive_path = Path(tmp) / "append.gif", Path(tmp) / "naive.gif"
        # Warm-up: first use imports Pillow's GIF plugin and touches the quantiser's tables.
        GifWriter(Path(tmp) / "warm.gif").append(frames[0])
        naive_publish(Path(tmp) / "warm-naive.gif", frames[:1])
        writer = GifWriter(ours_path, delay_ms=DELAY_MS, expected_frames=n)
        ours, naive = [], {}
        for k in range(1, n + 1):
            t = time.perf_counter()
            writer.append(frames[k - 1])
            ours.append(time.perf_counter() - t)
            # Side by side in one run: the naive writer at the same k, right after ours.
            if k in naive_ks:
                t = time.perf_counter()
                naive_publish(naive_path, frames[:k])
                naive[k] = time.perf_counter() - t
                print(f"k={k:3d}  append {ours[-1] * 1000:7.1f} ms   naive re-encode "
                      f"{naive[k] * 1000:8.1f} ms", flush=True)
        ours_size, naive_size = ours_path.stat().st_size, naive_path.stat().st_size
        ours_back = iio.imread(ours_path, index=None)
        naive_back = iio.imread(naive_path, index=None)

    first, last = ours[:10], ours[-10:]
    tail_ks = [k for k in naive_ks if k > n - 3]
    naive_tail = statistics.median(naive[k] for k in tail_ks)
    ours_tail = statistics.median(ours[k - 1] for k in tail_ks)
    print()
    print(f"GifWriter.append: median {statistics.median(first) * 1000:.1f} ms over frames 1-10, "
          f"{statistics.median(last) * 1000:.1f} ms over frames {n - 9}-{n}; "
          f"first frame {ours[0] * 1000:.0f} ms (chooses the scale); total {sum(ours):.2f} s")
    naive_total = sum(naive.values()) if len(naive) == n else None
    print(f"naive re-encode: {naive[min(naive)] * 1000:.0f} ms at k={min(naive)}, "
          f"median {naive_tail * 1000:.0f} ms at k={tail_ks}"
          + (f"; total {naive_total:.1f} s" if naive_total else ""))
    print(f"ratio naive/append at the last frames (median of k={tail_ks}): {naive_tail / ours_tail:.0f}x")
    print(f"append: {ours_size / 2**20:.2f} MiB, {len(ours_back)} frames read back by imageio, "
          f"scale {writer.scale:.0%}, note: {writer.note}")
    print(f"naive:  {naive_size / 2**20:.2f} MiB, {len(naive_back)} frames read back by imageio "
          f"(a palette per frame)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
