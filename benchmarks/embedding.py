"""Per-frame embedding: the seed's method (sklearn t-SNE from scratch) against ours, side by side.

The latent frames come from a real training run: the trainer (``python -m trainer``) is run
once as a subprocess, every EVAL step's bottleneck tensor and labels are read back with
``smdebug.trials.create_trial``, and the frames are cached as an ``.npz`` (keyed by the trainer
options) under ``--cache-dir``, so later runs of this script skip training.

Then, frame by frame and interleaved (the order of the methods rotates every frame so none
always runs on a warmer or a busier machine), three methods embed the same latents:

- seed: ``sklearn.manifold.TSNE(perplexity=40, max_iter=300, random_state=seed)`` from scratch
  on every frame, with today's sklearn defaults otherwise (PCA init, automatic learning rate,
  Barnes-Hut). The stronger baseline: the PCA init makes consecutive frames similar.
- notebook: the same call as the seed notebook wrote it (``TSNE(perplexity=40, n_iter=300)``)
  with the defaults sklearn had then (random init, learning rate 200) and, like the unseeded
  notebook, a new random state every frame;
- ours: ``reporter.embedding.embed.Embedder`` (frame 0 from scratch, then warm-started and aligned).

A fourth, after them and on the first ``--umap-frames`` frames only (its cost per frame grows
with the run): umap-learn's AlignedUMAP used incrementally as a reporter would, ``update()`` with
one new frame and identity relations (benchmarks/umap_peer.py, in a separate venv made from
benchmarks/umap-requirements.txt, since umap-learn's numba needs a newer numpy than mxnet).

All run under the same thread limit (``--threads``, applied to BLAS/OpenMP pools and to
openTSNE). Per frame: wall and CPU time, jitter against the previous frame (after Procrustes
for both; see ``reporter.embedding.quality.jitter``), 10-NN label accuracy in 2-D, trustworthiness (k=10).
Medians are over frames 1..n for time and jitter (frame 0 of ours is a full t-SNE and is
reported on its own) and over all frames for the quality figures. Prints a Markdown table.
The machine may be shared and busy: compare the methods within one run, not across runs.

    .venv/bin/python benchmarks/embedding.py --run mnist:0 --run fashion-mnist:1 --run mnist:2 \
        --steps 937 --eval-every 25
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from latentlapse.atomic import write_bytes  # noqa: E402
from reporter.embedding.embed import Embedder, EmbedSettings  # noqa: E402
from reporter.embedding.quality import jitter, knn_accuracy, trustworthiness  # noqa: E402
from reporter.trial.store import DEFAULT_NAMES  # noqa: E402

SEED_PERPLEXITY = 40
SEED_ITERATIONS = 300
# Targets of issue 15 (DESIGN.md's quality bar).
SPEEDUP_TARGET = 10.0
JITTER_TARGET = 0.25
UMAP_VENV = ROOT / ".cache" / "umap-venv"


def trainer_options(args) -> list[str]:
    dataset = [] if args.dataset == "mnist" else ["--dataset", args.dataset]  # keeps older cache keys
    return [*dataset, "--steps", str(args.steps), "--eval-every", str(args.eval_every),
            "--probe-size", str(args.probe_size), "--seed", str(args.train_seed),
            "--warmup-steps", str(args.warmup_steps),
            "--threads", str(args.train_threads), "--no-progress"]


def train_and_read(args, cache_file: Path) -> dict:
    """Run the real trainer into a scratch store and read every EVAL step's latents and labels."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINER_", "REPORTER_"))}
    env.update({"MXNET_STORAGE_FALLBACK_LOG_VERBOSE": "0"})
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_file.parent, prefix="run-") as scratch:
        store = Path(scratch) / "tensors"
        command = [sys.executable, "-m", "trainer", "--out", str(store), *trainer_options(args)]
        print("training:", " ".join(command[1:]), flush=True)
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, check=True)
        print(f"trained in {time.perf_counter() - started:.0f} s; reading the store", flush=True)
        from smdebug.trials import create_trial
        from smdebug.core.modes import ModeKeys

        trial = create_trial(str(store))
        latent_name = _one_name(trial, DEFAULT_NAMES["latent"])
        labels_name = _one_name(trial, DEFAULT_NAMES["labels"])
        steps = trial.tensor(latent_name).steps(mode=ModeKeys.EVAL)
        latents = np.stack([trial.tensor(latent_name).value(s, mode=ModeKeys.EVAL) for s in steps])
        labels = [trial.tensor(labels_name).value(s, mode=ModeKeys.EVAL) for s in steps]
        if any(not np.array_equal(labels[0], lab) for lab in labels):
            raise SystemExit("the probe labels differ between EVAL steps: not one probe set")
    data = {"latents": latents.astype(np.float64), "labels": labels[0].astype(np.int64),
            "steps": np.asarray(steps, dtype=np.int64),
            "command": np.asarray(" ".join(["python -m trainer", *trainer_options(args)]))}
    buf = io.BytesIO()
    np.savez_compressed(buf, **data)
    write_bytes(cache_file, buf.getvalue())
    return data


def _one_name(trial, pattern: str) -> str:
    import re

    names = [n for n in trial.tensor_names() if re.match(pattern, n)]
    if len(names) != 1:
        raise SystemExit(f"expected one tensor matching {pattern}, found {names}")
    return names[0]


def load_frames(args) -> dict:
    key = hashlib.sha256(" ".join(trainer_options(args)).encode()).hexdigest()[:12]
    cache_file = Path(args.cache_dir) / f"latents-{key}.npz"
    if cache_file.is_file() and not args.retrain:
        print(f"latents from cache {cache_file.relative_to(ROOT) if cache_file.is_relative_to(ROOT) else cache_file}")
        with np.load(cache_file) as saved:
            return {k: saved[k] for k in saved.files}
    return train_and_read(args, cache_file)


def seed_method(latents: np.ndarray, random_state: int, notebook: bool = False) -> np.ndarray:
    """The seed's t-SNE. ``notebook``: the defaults sklearn had when the notebook was written."""
    from sklearn.manifold import TSNE

    era = {"init": "random", "learning_rate": 200.0} if notebook else {}
    return TSNE(perplexity=SEED_PERPLEXITY, max_iter=SEED_ITERATIONS, random_state=random_state,
                **era).fit_transform(latents).astype(np.float64)


def run(frames: dict, args) -> dict:
    from threadpoolctl import threadpool_limits

    latents, labels = frames["latents"], frames["labels"]
    n = min(len(latents), args.frames) if args.frames else len(latents)
    embedder = Embedder(seed=args.seed)
    variants = {f"ours:{name}": Embedder(seed=args.seed, settings=settings)
                for name, settings in args.variant or []}
    methods = {
        "seed": lambda f, x, prev: seed_method(x, args.seed),
        # The notebook did not seed t-SNE: every frame started from a new random layout.
        "notebook": lambda f, x, prev: seed_method(x, args.seed + f, notebook=True),
        # As the reporter calls it: one embedder remembers the frames before.
        "ours": lambda f, x, prev: embedder.embed(x),
        # --variant: the reporter's embedder with other settings, on the same frames.
        **{name: (lambda f, x, prev, e=e: e.embed(x)) for name, e in variants.items()},
    }
    names = list(methods)
    rows = {name: [] for name in methods}
    previous = {name: None for name in methods}
    with threadpool_limits(args.threads):
        for f in range(n):
            x = latents[f]
            # Rotate the order every frame so no method always runs first (warm caches, load).
            order = names[f % len(names):] + names[:f % len(names)]
            for name in order:
                wall, cpu = time.perf_counter(), time.process_time()
                y = methods[name](f, x, previous[name])
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if y is None:
                    raise SystemExit(f"frame {f}: latents are not finite; this run cannot be compared")
                rows[name].append({
                    "frame": f, "wall": wall, "cpu": cpu,
                    "jitter": jitter(previous[name], y) if previous[name] is not None else None,
                    "knn_2d": knn_accuracy(y, labels), "trustworthiness": trustworthiness(x, y),
                })
                previous[name] = y
            print(f"frame {f:2d}: " + " | ".join(
                f"{name} {r[-1]['wall']:.2f} s jitter {r[-1]['jitter'] or 0:.4f} knn {r[-1]['knn_2d']:.3f} "
                f"tw {r[-1]['trustworthiness']:.4f}" for name, r in rows.items()), flush=True)
    knn_latent = statistics.median(knn_accuracy(latents[f], labels) for f in range(n))
    return {"rows": rows, "frames": n, "knn_latent": knn_latent}


def make_umap_venv(venv: Path) -> Path:
    """The benchmark-only venv of the AlignedUMAP peer (made once with uv, from the pins)."""
    python = venv / "bin" / "python"
    if not python.is_file():
        uv = Path(sys.executable).with_name("uv")
        print(f"making the AlignedUMAP venv {venv} (benchmarks/umap-requirements.txt)", flush=True)
        subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        subprocess.run([str(uv), "pip", "install", "-q", "--python", str(python), "-r",
                        str(ROOT / "benchmarks" / "umap-requirements.txt")], check=True)
    return python


def umap_rows(frames: dict, args) -> tuple[list[dict], dict]:
    """AlignedUMAP on the first ``--umap-frames`` frames, in its own venv; per-frame rows as run() makes."""
    from threadpoolctl import threadpool_limits

    python = make_umap_venv(Path(args.umap_venv))
    latents, labels = frames["latents"][:args.umap_frames], frames["labels"]
    with tempfile.TemporaryDirectory() as scratch:
        given, taken = Path(scratch) / "latents.npz", Path(scratch) / "umap.npz"
        np.savez(given, latents=latents)
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "NUMBA_NUM_THREADS": str(args.threads)}
        subprocess.run([str(python), str(ROOT / "benchmarks" / "umap_peer.py"), str(given), str(taken),
                        "--seed", str(args.seed)], check=True, env=env)
        with np.load(taken) as saved:
            embeddings, wall, cpu = saved["embeddings"], saved["wall"], saved["cpu"]
            versions = json.loads(str(saved["versions"]))
    rows = []
    with threadpool_limits(args.threads):
        for f, y in enumerate(embeddings):
            rows.append({"frame": f, "wall": float(wall[f]), "cpu": float(cpu[f]),
                         "jitter": jitter(embeddings[f - 1], y) if f else None,
                         "knn_2d": knn_accuracy(y, labels), "trustworthiness": trustworthiness(latents[f], y)})
    return rows, versions


def summary(result: dict) -> dict:
    out = {}
    for name, rows in result["rows"].items():
        # AlignedUMAP's frames 0 and 1 are one fit: its time per new frame is that of update().
        warm = rows[2:] if name == "aligned_umap" else rows[1:]
        jitters = [r["jitter"] for r in rows[1:]]
        out[name] = {
            "wall": statistics.median(r["wall"] for r in warm),
            "cpu": statistics.median(r["cpu"] for r in warm),
            "jitter": statistics.median(jitters),
            "jitter_p90": float(np.percentile(jitters, 90)),
            "knn_2d": statistics.median(r["knn_2d"] for r in rows),
            "trustworthiness": statistics.median(r["trustworthiness"] for r in rows),
            "frame0_wall": rows[0]["wall"],
        }
    return out


def markdown(s: dict, result: dict) -> str:
    ours = s["ours"]

    def ok(flag):
        return "yes" if flag else "**no**"

    def versus(base):
        b = s[base]
        speed, cpu = b["wall"] / ours["wall"], b["cpu"] / ours["cpu"]
        jit = ours["jitter"] / b["jitter"]
        return {
            "wall": f"{speed:.1f}x faster ({ok(speed >= SPEEDUP_TARGET)})",
            "cpu": f"{cpu:.1f}x less",
            "jitter": f"{jit:.2f} ({ok(jit <= JITTER_TARGET)})",
            "jitter_p90": f"{ours['jitter_p90'] / b['jitter_p90']:.2f}",
            "knn_2d": f"{ours['knn_2d'] - b['knn_2d']:+.3f} ({ok(ours['knn_2d'] >= b['knn_2d'])})",
            "trustworthiness": f"{ours['trustworthiness'] - b['trustworthiness']:+.4f} "
                               f"({ok(ours['trustworthiness'] >= b['trustworthiness'])})",
            "frame0_wall": "",
        }

    vs_seed, vs_notebook = versus("seed"), versus("notebook")
    last = result["frames"] - 1
    metrics = [
        ("wall", f"wall time per frame, frames 1-{last}", "{:.3f} s", f">= {SPEEDUP_TARGET:.0f}x faster"),
        ("cpu", f"CPU time per frame, frames 1-{last}", "{:.3f} s", "(steadier than wall on a busy machine)"),
        ("jitter", "jitter: median displacement / diameter", "{:.4f}", f"<= {JITTER_TARGET} of the seed's"),
        ("jitter_p90", "jitter, 90th percentile (jumps)", "{:.4f}", "(no target)"),
        ("knn_2d", "10-NN label accuracy in 2-D", "{:.3f}", "not lower"),
        ("trustworthiness", "trustworthiness (k=10)", "{:.4f}", "not lower"),
        ("frame0_wall", "frame 0 wall time (ours: full t-SNE)", "{:.2f} s", ""),
    ]
    umap = s.get("aligned_umap")
    lines = [
        "| median over frames | seed (today's sklearn defaults) | seed as the notebook ran it | ours "
        "| ours vs seed | ours vs notebook | target |" + (" AlignedUMAP, incremental (first frames) |" if umap else ""),
        "| --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if umap else ""),
    ]
    for key, label, fmt, target in metrics:
        extra = f" {fmt.format(umap[key])} |" if umap else ""
        lines.append(f"| {label} | {fmt.format(s['seed'][key])} | {fmt.format(s['notebook'][key])} | "
                     f"{fmt.format(ours[key])} | {vs_seed[key]} | {vs_notebook[key]} | {target} |{extra}")
    return "\n".join(lines)


def variant_table(s: dict) -> str:
    """--variant rows: each against the seed on the four targets, ours (the defaults) first."""
    seed = s["seed"]
    lines = ["| embedder settings | CPU per frame | seed CPU / this | jitter / seed's | 10-NN 2-D - seed's "
             "| trustworthiness - seed's |", "| --- | --- | --- | --- | --- | --- |"]
    for name in ["ours"] + sorted(k for k in s if k.startswith("ours:")):
        v = s[name]
        lines.append(f"| {'defaults' if name == 'ours' else name[5:]} | {v['cpu']:.3f} s | {seed['cpu'] / v['cpu']:.1f}x "
                     f"| {v['jitter'] / seed['jitter']:.2f} | {v['knn_2d'] - seed['knn_2d']:+.3f} "
                     f"| {v['trustworthiness'] - seed['trustworthiness']:+.4f} |")
    return "\n".join(lines)


def one_run(args) -> dict:
    """Every method on one cached training run; prints its table and returns its summary."""
    frames = load_frames(args)
    n_frames, n_points, dims = frames["latents"].shape
    if n_frames < 2:
        raise SystemExit("need at least two EVAL frames")
    load_before = os.getloadavg()
    result = run(frames, args)
    versions = {}
    if args.umap_frames >= 3:
        try:
            result["rows"]["aligned_umap"], versions = umap_rows(frames, args)
        except (subprocess.CalledProcessError, OSError) as exc:
            print(f"AlignedUMAP peer failed ({exc}); the table leaves it out", flush=True)
    load_after = os.getloadavg()
    s = summary(result)
    import openTSNE
    import sklearn

    print()
    print(f"Latents: {result['frames']} EVAL frames x {n_points} probe points x {dims} dims, from "
          f"`{frames['command']}`; 10-NN accuracy in the latent space (median) {result['knn_latent']:.3f}.")
    print(f"Python {platform.python_version()}, openTSNE {openTSNE.__version__}, scikit-learn "
          f"{sklearn.__version__}, {os.cpu_count()} cores, threads per method {args.threads}, "
          f"load average {load_before[0]:.1f} before / {load_after[0]:.1f} after."
          + (f" AlignedUMAP on frames 0-{args.umap_frames - 1}: "
             + ", ".join(f"{k} {v}" for k, v in versions.items()) + "." if versions else ""))
    print()
    print(markdown(s, result))
    if any(k.startswith("ours:") for k in s):
        print("\nThe embedder with other settings (--variant), same frames, same run:\n")
        print(variant_table(s))
    return {"summary": s, "rows": result["rows"], "command": str(frames["command"]), "versions": versions}


def overview(runs: dict) -> str:
    """One line per run: ours against the seed on every target."""
    lines = ["| run | speed (seed / ours, wall) | jitter (ours / seed) | 10-NN 2-D ours - seed "
             "| trustworthiness ours - seed |",
             "| --- | --- | --- | --- | --- |"]
    for name, r in runs.items():
        seed, ours = r["summary"]["seed"], r["summary"]["ours"]
        lines.append(f"| {name} | {seed['wall'] / ours['wall']:.1f}x | {ours['jitter'] / seed['jitter']:.2f} | "
                     f"{ours['knn_2d'] - seed['knn_2d']:+.3f} | {ours['trustworthiness'] - seed['trustworthiness']:+.4f} |")
    return "\n".join(lines)


def variant_spec(text: str) -> tuple[str, EmbedSettings]:
    name, _, settings = text.partition("=")
    try:
        return name, EmbedSettings(**json.loads(settings))
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME={{JSON of EmbedSettings fields}} ({exc})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", default=str(ROOT / ".cache" / "benchmarks"),
                        help="where the trained latents are cached (not in git)")
    parser.add_argument("--retrain", action="store_true", help="ignore the cache and train again")
    parser.add_argument("--run", action="append", metavar="DATASET:SEED",
                        help="a training run to compare on (repeatable; default mnist:0, or --dataset/--train-seed)")
    parser.add_argument("--dataset", default="mnist", help="trainer --dataset (mnist or fashion-mnist)")
    parser.add_argument("--steps", type=int, default=500, help="trainer --steps")
    parser.add_argument("--eval-every", type=int, default=20, help="trainer --eval-every (one frame each)")
    parser.add_argument("--probe-size", type=int, default=1000, help="trainer --probe-size")
    parser.add_argument("--train-seed", type=int, default=0, help="trainer --seed")
    parser.add_argument("--warmup-steps", type=int, default=200, help="trainer --warmup-steps")
    parser.add_argument("--train-threads", type=int, default=1, help="trainer --threads (the trainer's default)")
    parser.add_argument("--frames", type=int, default=0, help="use only the first N frames (0: all)")
    parser.add_argument("--threads", type=int, default=1, help="threads for every embedding method")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the embedding methods")
    parser.add_argument("--umap-frames", type=int, default=8,
                        help="AlignedUMAP on the first N frames (its cost per frame grows; 0: skip it)")
    parser.add_argument("--umap-venv", default=str(UMAP_VENV), help="the AlignedUMAP venv (made if missing)")
    parser.add_argument("--train-only", action="store_true", help="only train (or find) the cached runs")
    parser.add_argument("--json", help="also write every per-frame figure to this JSON file")
    parser.add_argument("--variant", action="append", type=variant_spec, metavar="NAME=JSON",
                        help='also the embedder with these EmbedSettings, e.g. iter40=\'{"warm_iter": 40}\'')
    args = parser.parse_args(argv)

    specs = args.run or [f"{args.dataset}:{args.train_seed}"]
    runs = {}
    for spec in specs:
        dataset, _, seed = spec.partition(":")
        if not seed.isdigit():
            raise SystemExit(f"--run {spec!r}: write DATASET:SEED, e.g. fashion-mnist:1")
        run_args = argparse.Namespace(**{**vars(args), "dataset": dataset, "train_seed": int(seed)})
        if args.train_only:
            load_frames(run_args)
            continue
        print(f"\n## {spec}", flush=True)
        runs[spec] = one_run(run_args)
    if runs:
        print("\nAll runs, ours against the seed (targets: >= 10x, <= 0.25, not lower, not lower):\n")
        print(overview(runs))
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
