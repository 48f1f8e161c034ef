"""openTSNE's path against the C accelerator: the same real stores reported by both, side by side.

For each probe size, a real training run (cached as ``benchmarks/scale.py`` caches it), then per
round the real reporter over it once per engine (``LATENTLAPSE_ENGINE=c`` and ``=opentsne``,
alternating), timed stage by stage by ``benchmarks/live.py timed-reporter`` on one thread. Printed:
per size and engine, the median warm frame and its embedding stage, frame 0, and the frames'
median 10-NN accuracy in 2-D and trustworthiness as the report shows them; then openTSNE / C.

    .venv/bin/python benchmarks/engines.py --sizes 1000 10000 --steps 400 --eval-every 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import scale  # noqa: E402  (the stores, the timed reporter and the stage medians)

ENGINES = ("c", "opentsne")


def quality(site: Path) -> tuple[float, float]:
    """Median 10-NN accuracy in 2-D and trustworthiness over a report's frames, as its state.json says."""
    frames = json.loads((site / "state.json").read_text())["frames"]
    return (statistics.median(f["knn_2d"] for f in frames), statistics.median(f["trustworthiness"] for f in frames))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=str(ROOT / ".cache" / "benchmarks"))
    parser.add_argument("--work-dir", default=str(ROOT / "runs" / "bench-engines"))
    args = parser.parse_args(argv)

    stores = {n: scale.store_for(args, n) for n in args.sizes}
    before = scale.uptime()
    pooled = {(n, e): {"frames": []} for n in args.sizes for e in ENGINES}
    figures = {}
    for r in range(args.rounds):
        for n in args.sizes:
            for engine in ENGINES if r % 2 == 0 else ENGINES[::-1]:
                work = Path(args.work_dir) / f"{n}-{engine}-round{r + 1}"
                result = scale.timed_report(stores[n], work, {"LATENTLAPSE_ENGINE": engine})
                frames = result["frames"]
                pooled[n, engine]["frames"] += frames if r == 0 else frames[1:]
                figures[n, engine] = quality(work / "site")
                print(f"round {r + 1}, {n:,} points, {engine}: {len(frames)} frames ({scale.uptime()})", flush=True)
    after = scale.uptime()
    command = "python benchmarks/engines.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"\n{command}\n{before} before, {after} after; one thread\n")
    print("| points | engine | warm frame | its embedding | frame 0 | 10-NN in 2-D | trustworthiness |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in args.sizes:
        m = {e: scale.stage_medians(pooled[n, e]) for e in ENGINES}
        for e in ENGINES:
            knn, trust = figures[n, e]
            print(f"| {n:,} | {'C accelerator' if e == 'c' else 'openTSNE'} | {m[e]['warm_total']:.3f} s | "
                  f"{m[e]['warm'].get('embed', 0.0):.3f} s | {m[e]['frame0_total']:.2f} s | {knn:.3f} | {trust:.4f} |")
        ratio = m["opentsne"]["warm_total"] / m["c"]["warm_total"]
        embed = m["opentsne"]["warm"].get("embed", 0.0) / max(m["c"]["warm"].get("embed", 0.0), 1e-9)
        frame0 = m["opentsne"]["frame0_total"] / m["c"]["frame0_total"]
        print(f"| {n:,} | openTSNE / C | {ratio:.1f}x | {embed:.1f}x | {frame0:.1f}x | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
