"""The final cut (reporter/embedding/final_cut.py) against the seed's per-frame t-SNE and the live frames.

On the runs and seeds of benchmarks/embedding.py (its cached real training runs, its seed method,
its summary; nothing copied): per run and embedder seed, the seed's sklearn t-SNE from scratch
on every frame, the live frames (``reporter.embedding.embed.Embedder``, one frame after the
other) and the final cut of those live frames. Per method the medians over frames of 10-NN
accuracy in 2-D, trustworthiness, jitter (frames 1..n) and seconds per frame (the cut: its
whole time over its frames). Then a cost line: the cut of a longer run, made by repeating the
run's frames (the cost does not depend on what the latents are; linear in frames by design),
in seconds per frame, and with ``--cost-points`` at a larger probe set. ``--variant`` (and
``--spring``, its shorthand) measures other cut settings on every run's first seed, e.g.
``--variant spring=0.3,reach=0.25`` (a large ``reach`` makes the spring quadratic).

    .venv/bin/python benchmarks/final_cut.py --run mnist:0 --run fashion-mnist:1 --run mnist:2 \
        --steps 937 --eval-every 25 --seeds 0,1 --long-frames 376 --cost-points 5000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import embedding as base  # noqa: E402  benchmarks/embedding.py: the runs, the seed, the summary

from threadpoolctl import threadpool_limits  # noqa: E402

from reporter.embedding.embed import Embedder  # noqa: E402
from reporter.embedding.final_cut import CutSettings, final_cut  # noqa: E402
from reporter.embedding.quality import jitter, knn_accuracy, trustworthiness  # noqa: E402


def rows_of(latents, labels, layouts, seconds):
    rows, previous = [], None
    for f, (x, y) in enumerate(zip(latents, layouts)):
        rows.append({"frame": f, "wall": seconds[f], "cpu": seconds[f],
                     "jitter": jitter(previous, y) if previous is not None else None,
                     "knn_2d": knn_accuracy(y, labels), "trustworthiness": trustworthiness(x, y)})
        previous = y
    return rows


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def one(frames, seed, settings, n, variants=()):
    """Seed, live and cut rows of one run and embedder seed; then the cut with each of ``variants``
    (CutSettings) of the same live frames, as "final <i>"."""
    from threadpoolctl import threadpool_limits

    latents, labels = frames["latents"][:n], frames["labels"]
    with threadpool_limits(1):
        seed_layouts, seed_seconds = zip(*(timed(lambda x=x: base.seed_method(x, seed)) for x in latents))
        embedder = Embedder(seed)
        live, live_seconds = zip(*(timed(lambda x=x: embedder.embed(x).copy()) for x in latents))
        cuts = [timed(lambda v=v: final_cut(list(latents), list(live), v)) for v in (settings, *variants)]
    result = {"rows": {
        "seed": rows_of(latents, labels, seed_layouts, seed_seconds),
        "live": rows_of(latents, labels, live, live_seconds),
        **{("final" if i == 0 else f"final {i}"): rows_of(latents, labels, cut, [total / len(latents)] * len(latents))
           for i, (cut, total) in enumerate(cuts)},
    }}
    return base.summary(result), list(live)


def variant(text):
    """CutSettings from "field=value,field=value" (the defaults for the rest)."""
    fields = {f.name: f.type for f in dataclasses.fields(CutSettings)}
    kwargs = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"--variant: {key!r} is not a setting of the cut: use {', '.join(fields)}")
        kwargs[key] = (int if fields[key] in (int, "int") else float)(value)
    return CutSettings(**kwargs)


def cost(frames, live, seed, settings, n_frames):
    """Seconds per frame of the cut of ``n_frames`` frames (the run's frames repeated)."""
    from threadpoolctl import threadpool_limits

    k = len(live)
    latents = [frames["latents"][i % k] for i in range(n_frames)]
    layouts = [live[i % k] for i in range(n_frames)]
    with threadpool_limits(1):
        _, seconds = timed(lambda: final_cut(latents, layouts, settings))
    return seconds / n_frames


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", metavar="DATASET:SEED", help="as benchmarks/embedding.py")
    p.add_argument("--steps", type=int, default=937)
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--probe-size", type=int, default=1000)
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--train-threads", type=int, default=1)
    p.add_argument("--cache-dir", default=str(base.ROOT / ".cache" / "benchmarks"))
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--seeds", default="0,1", help="embedder seeds, comma-separated")
    p.add_argument("--frames", type=int, default=0, help="only the first N frames (0: all)")
    p.add_argument("--long-frames", type=int, default=376, help="frames of the cost line (0: skip it)")
    p.add_argument("--cost-points", type=int, default=0,
                   help="also the cut's cost at this probe size (the first run trained again with it; 0: skip)")
    p.add_argument("--spring", default="", help="springs to sweep on every run's first seed, e.g. 0.003,0.01,0.1")
    p.add_argument("--variant", action="append", default=[], metavar="FIELD=VALUE,...",
                   help="other cut settings to measure on every run's first seed, e.g. early_iterations=50,"
                        "early_exaggeration=4 (repeatable)")
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    settings = CutSettings()
    variants = [CutSettings(spring=float(v)) for v in args.spring.split(",") if v] + [variant(v) for v in args.variant]
    sweep = ["| run | seed | cut settings | 10-NN final - seed | trustworthiness final - seed | jitter final / seed |",
             "| --- | --- | --- | --- | --- | --- |"]
    table = ["| run | seed | method | 10-NN 2-D | trustworthiness | jitter | s / frame |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    versus = ["| run | seed | 10-NN final - seed | trustworthiness final - seed | jitter final / seed "
              "| jitter live / seed | s / frame (final cut) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    out, first = {}, None
    for spec in args.run or ["mnist:0"]:
        dataset, _, train_seed = spec.partition(":")
        run_args = argparse.Namespace(**{**vars(args), "dataset": dataset, "train_seed": int(train_seed)})
        frames = base.load_frames(run_args)
        n = min(len(frames["latents"]), args.frames) if args.frames else len(frames["latents"])
        for seed in seeds:
            s, live = one(frames, seed, settings, n, variants if seed == seeds[0] else ())
            for i, v in enumerate(variants, 1):
                sd, fc = s["seed"], s[f"final {i}"]
                changed = ", ".join(f"{k}={w:g}" for k, w in dataclasses.asdict(v).items()
                                    if w != getattr(settings, k)) or "the defaults"
                sweep.append(f"| {spec} | {seed} | {changed} | {fc['knn_2d'] - sd['knn_2d']:+.4f} | "
                             f"{fc['trustworthiness'] - sd['trustworthiness']:+.4f} | {fc['jitter'] / sd['jitter']:.2f} |")
                print(sweep[-1], flush=True)
            out[f"{spec} seed {seed}"] = s
            first = first or (frames, live, seed, n)
            for name in ("seed", "live", "final"):
                m = s[name]
                table.append(f"| {spec} | {seed} | {name} | {m['knn_2d']:.4f} | {m['trustworthiness']:.4f} | "
                             f"{m['jitter']:.4f} | {m['wall']:.2f} |")
            sd, fc, lv = s["seed"], s["final"], s["live"]
            versus.append(f"| {spec} | {seed} | {fc['knn_2d'] - sd['knn_2d']:+.4f} | "
                          f"{fc['trustworthiness'] - sd['trustworthiness']:+.4f} | {fc['jitter'] / sd['jitter']:.2f} | "
                          f"{lv['jitter'] / sd['jitter']:.2f} | {fc['wall']:.2f} |")
            print(table[-3], table[-2], table[-1], versus[-1], sep="\n", flush=True)
    print(f"\n{n} frames x {first[0]['latents'].shape[1]} points, one thread, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}\n")
    print("\n".join(table), "\n")
    print("\n".join(versus), "\n")
    if args.long_frames:
        frames, live, seed, n = first
        short = cost(frames, live, seed, settings, n)
        long = cost(frames, live, seed, settings, args.long_frames)
        out["cost"] = {"frames": [n, args.long_frames], "seconds_per_frame": [short, long]}
        print(f"cost: {short:.2f} s a frame at {n} frames, {long:.2f} s a frame at {args.long_frames} "
              f"({long / short:.2f}x)\n", flush=True)
    if args.cost_points:
        spec = (args.run or ["mnist:0"])[0]
        dataset, _, train_seed = spec.partition(":")
        run_args = argparse.Namespace(**{**vars(args), "dataset": dataset, "train_seed": int(train_seed),
                                         "probe_size": args.cost_points})
        big = base.load_frames(run_args)
        big["latents"] = big["latents"][:first[3]]
        with threadpool_limits(1):
            embedder = Embedder(first[2])
            big_live = [embedder.embed(x).copy() for x in big["latents"]]
        per_frame = cost(big, big_live, first[2], settings, len(big_live))
        out["cost_points"] = {"points": big["latents"].shape[1], "frames": len(big_live), "seconds_per_frame": per_frame}
        print(f"cost: {per_frame:.2f} s a frame at {big['latents'].shape[1]:,} points ({len(big_live)} frames)\n",
              flush=True)
    if variants:
        print("\n".join(sweep), "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
