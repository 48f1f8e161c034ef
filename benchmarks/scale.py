"""The reporter at 1,000 and 10,000 probe points: every stage of a frame, timed on real tensor stores.

A real training run per probe size (``python -m trainer --probe-size N``; the store is kept under
``--cache-dir``, keyed by the trainer options, so later runs skip training). Then, round by round
and alternating the sizes, the real reporter (``python -m reporter --tensors STORE --out SITE
--threads 1``) makes every frame of each store under ``benchmarks/live.py timed-reporter``, which
times its stages (read, embed, quality, draw, frame files, GIF, state, site, ...) per frame; the
time no stage claims is "other". Per size: the median of every stage over the warm frames (1..n),
frame 0 apart, the ratio 10,000 / 1,000 per stage, and the reporter process's peak memory (its
maximum resident set, from the kernel's accounting of the child).

The machine may be shared and busy: absolute times are inflated by the load printed beside
them; the ratios between sizes, measured in one run, say more.

    .venv/bin/python benchmarks/scale.py --sizes 1000 10000 --rounds 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
sys.path.insert(0, str(ROOT))
from latentlapse.contract import END_MARKER  # noqa: E402
# Issue 15: a warm frame at 10,000 points in 1.5 s, at 1,000 in 0.3 s, frame 0 at 10,000 in 8 s,
# and at most 12x the cost for 10x the points.
TARGETS = {1000: 0.3, 10000: 1.5}
FRAME0_TARGET_10K = 8.0
RATIO_TARGET = 12.0


def trainer_options(args, size: int) -> list[str]:
    return ["--dataset", args.dataset, "--steps", str(args.steps), "--eval-every", str(args.eval_every),
            "--probe-size", str(size), "--seed", str(args.train_seed), "--threads", "1", "--no-progress"]


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINER_", "REPORTER_"))}
    env["OMP_NUM_THREADS"] = "1"
    return env


def store_for(args, size: int) -> Path:
    """A finished tensor store of a real run with ``size`` probe images: cached, or trained now."""
    options = trainer_options(args, size)
    key = hashlib.sha256(" ".join(options).encode()).hexdigest()[:12]
    folder = Path(args.cache_dir) / f"store-{size}-{key}"
    if (folder / "tensors" / END_MARKER).is_file():
        print(f"store of {size} probe points from cache {folder}", flush=True)
        return folder / "tensors"
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    command = [PY, "-m", "trainer", "--out", str(partial / "tensors"), *options]
    print("training:", " ".join(command[1:]), flush=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=clean_env(), check=True)
    (partial / "command.txt").write_text("python " + " ".join(command[1:]) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    print(f"trained in {time.perf_counter() - started:.0f} s", flush=True)
    return folder / "tensors"


def timed_report(store: Path, work: Path, env: dict | None = None) -> dict:
    """Run the instrumented reporter over a finished store; its per-frame stage times and peak memory.
    ``env``: variables to set for the reporter beside :func:`clean_env`'s (e.g. LATENTLAPSE_ENGINE)."""
    site, phases = work / "site", work / "phases.json"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    command = [PY, str(ROOT / "benchmarks" / "live.py"), "timed-reporter", str(phases),
               "--tensors", str(store), "--out", str(site), "--threads", "1"]
    proc = subprocess.Popen(command, cwd=ROOT, env={**clean_env(), **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=open(work / "reporter.log", "w"))
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"the reporter failed ({proc.returncode}); see {work / 'reporter.log'}")
    result = json.loads(phases.read_text())
    result["max_rss_mib"] = usage.ru_maxrss / 1024  # Linux: kilobytes
    return result


def stage_medians(result: dict) -> dict:
    """Median seconds per stage over frames 1..n, and frame 0's; "other" is what no stage claims."""
    frames = result["frames"]
    for f in frames:
        f["stages"]["other"] = f["total"] - sum(v for k, v in f["stages"].items() if k != "other")
    stages = sorted({s for f in frames for s in f["stages"]})
    warm = frames[1:]
    return {
        "warm": {s: statistics.median(f["stages"].get(s, 0.0) for f in warm) for s in stages},
        "warm_total": statistics.median(f["total"] for f in warm),
        "frame0": {s: frames[0]["stages"].get(s, 0.0) for s in stages},
        "frame0_total": frames[0]["total"],
        "frames": len(frames),
    }


def markdown(by_size: dict, memory: dict) -> str:
    sizes = sorted(by_size)
    small, large = sizes[0], sizes[-1]
    stages = sorted({s for m in by_size.values() for s in m["warm"]}, key=lambda s: (s == "other", s))
    head = " | ".join(f"{n:,} warm" for n in sizes)
    lines = [f"| stage | {head} | {large:,} / {small:,} | {large:,} frame 0 |",
             "| --- |" + " --- |" * (len(sizes) + 2)]
    for s in stages:
        cells = " | ".join(f"{by_size[n]['warm'].get(s, 0.0):.3f} s" for n in sizes)
        a, b = by_size[small]["warm"].get(s, 0.0), by_size[large]["warm"].get(s, 0.0)
        ratio = f"{b / a:.1f}x" if a > 0.0005 else "-"
        lines.append(f"| {s} | {cells} | {ratio} | {by_size[large]['frame0'].get(s, 0.0):.3f} s |")
    totals = " | ".join(f"**{by_size[n]['warm_total']:.3f} s**" for n in sizes)
    ratio = by_size[large]["warm_total"] / by_size[small]["warm_total"]
    lines.append(f"| **whole frame** | {totals} | **{ratio:.1f}x** (target <= {RATIO_TARGET:.0f}x) | "
                 f"**{by_size[large]['frame0_total']:.2f} s** (target <= {FRAME0_TARGET_10K:.0f} s) |")
    lines.append("| reporter peak memory (max RSS) | " + " | ".join(f"{memory[n]:.0f} MiB" for n in sizes)
                 + f" | {memory[large] / memory[small]:.1f}x | |")
    targets = ", ".join(f"{n:,}: {by_size[n]['warm_total']:.3f} s (target {TARGETS[n]} s)"
                        for n in sizes if n in TARGETS)
    return "\n".join(lines) + f"\n\nWarm frame medians: {targets}."


def sampled_trustworthiness_error(site: Path) -> str:
    """Per frame of a report: the trustworthiness the frame shows (estimated) against the exact figure."""
    from threadpoolctl import threadpool_limits

    from reporter.embedding.quality import FRAME_SAMPLE, trustworthiness

    rows = []
    with threadpool_limits(1):
        for path in sorted((site / "frames").glob("frame-*.npz")):
            with np.load(path) as saved:
                X, Y = saved["latents"].astype(np.float64), saved["embedding"]
            t = [time.process_time()]
            exact = trustworthiness(X, Y)
            t.append(time.process_time())
            estimate = trustworthiness(X, Y, sample=FRAME_SAMPLE)
            t.append(time.process_time())
            rows.append((exact, estimate, t[1] - t[0], t[2] - t[1]))
    errors = [abs(a - b) for a, b, _, _ in rows]
    return (f"Trustworthiness of the {len(rows)} frames at {len(X):,} points, estimated from {FRAME_SAMPLE:,} "
            f"points' neighbourhoods as a frame shows it, against the exact figure (sklearn's, computed "
            f"without its N x N sort): error median {statistics.median(errors):.5f}, max {max(errors):.5f} "
            f"(exact figures {min(r[0] for r in rows):.4f}-{max(r[0] for r in rows):.4f}); CPU per frame "
            f"exact {statistics.median(r[2] for r in rows):.2f} s, estimated {statistics.median(r[3] for r in rows):.2f} s.")


def method_table(store: Path, sizes=(1000, 2000, 5000, 10000), iterations=30) -> str:
    """CPU ms per warm iteration of each gradient (openTSNE's Barnes-Hut at the theta the reporter
    used before, openTSNE's FFT, the reporter's exact one in C and its FFT interpolation (C and
    SciPy's FFT), and the neighbour searches, on real latents (the last two EVAL steps of ``store``,
    first N points)."""
    from openTSNE import TSNEEmbedding
    from openTSNE.affinity import PerplexityBasedNN, PrecomputedAffinities
    from threadpoolctl import threadpool_limits

    from reporter.embedding.affinity import affinities
    from reporter.embedding.gradients import exact_kl, fft_kl
    from reporter.embedding.neighbours import nearest_neighbours

    before, latest = store_latents(store)[0][-2:]
    gradients = (("openTSNE BH (theta 0.8)", "bh", {"theta": 0.8}), ("openTSNE FFT", "fft", {}),
                 ("exact, C (the reporter's below 5,000)", exact_kl, {}),
                 ("FFT, C + SciPy (the reporter's from 5,000)", fft_kl, {}))
    lines = ["| points | " + " | ".join(name for name, _, _ in gradients) + " | exact neighbours, from last "
             "frame's | exact, from scratch | openTSNE's Annoy affinities |", "| --- |" + " --- |" * (len(gradients) + 3)]

    def cpu(action):
        started = time.process_time()
        result = action()
        return time.process_time() - started, result

    with threadpool_limits(1):
        for n in sizes:
            a, b = before[:n], latest[:n]
            P, _ = affinities(b)
            layout = TSNEEmbedding(np.random.RandomState(0).normal(size=(n, 2)) * 1e-4,
                                   PrecomputedAffinities(P, normalize=False), random_state=0, n_jobs=1)
            start = np.array(layout.optimize(250, exaggeration=12, inplace=False)) / 3
            per_it = []
            for _, method, extra in gradients:
                e = TSNEEmbedding(start, PrecomputedAffinities(P, normalize=False), negative_gradient_method=method,
                                  random_state=0, n_jobs=1, **extra)
                per_it.append(cpu(lambda: e.optimize(iterations, inplace=True))[0] / iterations * 1000)
            guess, _ = nearest_neighbours(a, 90)
            warm = cpu(lambda: nearest_neighbours(b, 90, guess))[0]
            cold = cpu(lambda: nearest_neighbours(b, 90))[0]
            annoy = cpu(lambda: PerplexityBasedNN(b, perplexity=30, method="annoy", n_jobs=1, random_state=0))[0]
            lines.append(f"| {n:,} | " + " | ".join(f"{ms:.1f} ms/it" for ms in per_it)
                         + f" | {warm:.2f} s | {cold:.2f} s | {annoy:.2f} s |")
    return "\n".join(lines)


def fft_error_table(store: Path, sizes=(5000, 10000)) -> str:
    """How far the FFT repulsion is from the exact one, and the reporter's from openTSNE's, at a
    converged layout of real latents (the last EVAL step of ``store``, first N points; 250
    exaggerated + 250 plain iterations of openTSNE): the largest difference in any coordinate of
    the repulsion (the gradient less the exact attraction, which all three share) over the largest
    coordinate of the exact repulsion. At a converged layout the gradient itself is the small
    difference of the two terms, so its relative error says little."""
    from openTSNE import TSNEEmbedding
    from openTSNE.affinity import PrecomputedAffinities
    from openTSNE.tsne import kl_divergence_fft
    from threadpoolctl import threadpool_limits

    from reporter.embedding.accelerator import KERNELS as _kernels
    from reporter.embedding.affinity import affinities
    from reporter.embedding.gradients import FFT_GRID, _csr_arrays, exact_kl, fft_kl

    latest = store_latents(store)[0][-1]
    lines = ["| points | openTSNE's FFT vs exact | the reporter's FFT vs exact | the reporter's vs openTSNE's |",
             "| --- | --- | --- | --- |"]
    with threadpool_limits(1):
        for n in sizes:
            P, _ = affinities(latest[:n])
            start = TSNEEmbedding(np.random.RandomState(0).normal(size=(n, 2)) * 1e-4,
                                  PrecomputedAffinities(P, normalize=False), random_state=0, n_jobs=1)
            layout = np.ascontiguousarray(start.optimize(250, exaggeration=12).optimize(250), dtype=np.float64)
            attraction = np.zeros_like(layout)
            _kernels.add_attraction(layout, *_csr_arrays(P), attraction, with_error=False)
            exact, theirs, ours = (gradient - attraction for gradient in (
                exact_kl(layout, P)[1], kl_divergence_fft(layout, P, 1, FFT_GRID)[1], fft_kl(layout, P, FFT_GRID)[1]))
            scale = np.abs(exact).max()
            lines.append(f"| {n:,} | {np.abs(theirs - exact).max() / scale:.1e} | "
                         f"{np.abs(ours - exact).max() / scale:.1e} | {np.abs(ours - theirs).max() / scale:.1e} |")
    return "\n".join(lines)


def store_latents(store: Path, count: int | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """The first ``count`` EVAL steps' latents of a store (all without a count), and the labels."""
    from smdebug import modes
    from smdebug.trials import create_trial

    from probe_tensors import tensor_name

    trial = create_trial(str(store))
    latent, labels = (trial.tensor(tensor_name(trial, role)) for role in ("latent", "labels"))
    steps = latent.steps(mode=modes.EVAL)[:count]
    return ([latent.value(s, mode=modes.EVAL).astype(np.float64) for s in steps],
            np.asarray(labels.value(steps[0], mode=modes.EVAL)).astype(np.int64).ravel())


def frame0_table(store: Path, schedules: list[tuple[int, int]], frames: int = 3) -> str:
    """Frame 0's schedule at FFT sizes (exaggerated + plain iterations): CPU of frames 0..frames-1
    as the reporter's embedder makes them, and their 10-NN accuracy in 2-D and trustworthiness."""
    from threadpoolctl import threadpool_limits

    import reporter.embedding.embed as embed
    from reporter.embedding.quality import FRAME_SAMPLE, knn_accuracy, trustworthiness

    latents, labels = store_latents(store, frames)
    kept = embed.LARGE_EARLY_EXAGGERATION_ITER, embed.LARGE_FIRST_FRAME_ITER
    head = " | ".join(f"frame {i}: CPU, 10-NN 2-D, trustworthiness" for i in range(frames))
    lines = [f"| frame 0 schedule (exaggerated + plain) | {head} |", "| --- |" + " --- |" * frames]
    try:
        with threadpool_limits(1):
            for exaggerated, plain in schedules:
                embed.LARGE_EARLY_EXAGGERATION_ITER, embed.LARGE_FIRST_FRAME_ITER = exaggerated, plain
                embedder, cells = embed.Embedder(seed=0), []
                for x in latents:
                    started = time.process_time()
                    y = embedder.embed(x)
                    cpu = time.process_time() - started
                    cells.append(f"{cpu:.2f} s, {knn_accuracy(y, labels):.3f}, "
                                 f"{trustworthiness(x, y, sample=FRAME_SAMPLE):.4f}")
                mark = " (the reporter's)" if (exaggerated, plain) == kept else ""
                lines.append(f"| {exaggerated} + {plain}{mark} | " + " | ".join(cells) + " |")
    finally:
        embed.LARGE_EARLY_EXAGGERATION_ITER, embed.LARGE_FIRST_FRAME_ITER = kept
    return "\n".join(lines)


def uptime() -> str:
    load = os.getloadavg()
    return f"load average {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="probe sizes")
    parser.add_argument("--rounds", type=int, default=1, help="reporter runs per size, alternating sizes")
    parser.add_argument("--dataset", default="mnist", help="trainer --dataset")
    parser.add_argument("--steps", type=int, default=937, help="trainer --steps")
    parser.add_argument("--eval-every", type=int, default=100, help="trainer --eval-every (one frame each)")
    parser.add_argument("--train-seed", type=int, default=0, help="trainer --seed")
    parser.add_argument("--cache-dir", default=str(ROOT / ".cache" / "benchmarks"),
                        help="where the tensor stores are kept (not in git)")
    parser.add_argument("--work-dir", default=str(ROOT / "runs" / "bench-scale"), help="where the reports go")
    parser.add_argument("--train-only", action="store_true", help="only make (or find) the stores")
    parser.add_argument("--no-methods", action="store_true", help="skip the gradient / neighbour search table")
    parser.add_argument("--json", help="also write every per-frame figure to this JSON file")
    parser.add_argument("--frame0-schedules", default="", metavar="E:P,...",
                        help="also time frame 0's FFT schedules on the largest store, e.g. 100:150,50:75,40:60")
    args = parser.parse_args(argv)

    stores = {n: store_for(args, n) for n in args.sizes}
    if args.train_only:
        return 0
    before = uptime()
    runs = {n: [] for n in args.sizes}
    for r in range(args.rounds):
        for n in args.sizes:
            result = timed_report(stores[n], Path(args.work_dir) / f"{n}-round{r + 1}")
            runs[n].append(result)
            m = stage_medians(result)
            print(f"round {r + 1}, {n:,} points: warm frame {m['warm_total']:.3f} s, frame 0 "
                  f"{m['frame0_total']:.2f} s, peak memory {result['max_rss_mib']:.0f} MiB ({uptime()})", flush=True)
    after = uptime()
    # Every warm frame of every round counts: the rounds' frames are pooled before the medians.
    pooled = {n: {"frames": [runs[n][0]["frames"][0]] + [f for run in runs[n] for f in run["frames"][1:]]}
              for n in args.sizes}
    by_size = {n: stage_medians(pooled[n]) for n in args.sizes}
    memory = {n: max(run["max_rss_mib"] for run in runs[n]) for n in args.sizes}
    command = "python benchmarks/scale.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"\n{command}\n{before} before, {after} after; one thread; stores: "
          + ", ".join(f"{n:,} points {by_size[n]['frames']} frames" for n in args.sizes) + "\n")
    print(markdown(by_size, memory))
    largest = max(args.sizes)
    print("\n" + sampled_trustworthiness_error(Path(args.work_dir) / f"{largest}-round1" / "site"))
    if not args.no_methods:
        print(f"\nGradient and neighbour search on real latents (CPU time, one thread; {uptime()}):\n")
        print(method_table(stores[largest]))
        print(f"\nThe FFT repulsion's error at a converged layout ({uptime()}):\n")
        print(fft_error_table(stores[largest]))
    if args.frame0_schedules:
        schedules = [tuple(int(v) for v in pair.split(":")) for pair in args.frame0_schedules.split(",")]
        print(f"\nFrame 0's schedule at {largest:,} points (CPU time, one thread; {uptime()}):\n")
        print(frame0_table(stores[largest], schedules))
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
