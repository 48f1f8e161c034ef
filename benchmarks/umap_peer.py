"""The AlignedUMAP peer of benchmarks/embedding.py, run in its own virtual environment.

umap-learn (with numba) needs a newer numpy than mxnet allows, so it never enters the project's
environment: benchmarks/embedding.py runs this script with the Python of a separate venv (made
by ``make_venv`` there, pinned in benchmarks/umap-requirements.txt). It imports only numpy and
umap-learn, reads the frames' latents from an .npz, and embeds them as a reporter would:
AlignedUMAP fitted on the first two frames (it needs two slices) with identity relations (the
probe points are the same at every frame), then ``update()`` with one new frame at a time.
Writes every frame's embedding and the time each call took; the quality figures are computed
by benchmarks/embedding.py, the same way for every method.

    .cache/umap-venv/bin/python benchmarks/umap_peer.py latents.npz out.npz --frames 39
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

# One thread, like the other methods: numba and BLAS read these when they load.
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("latents", help=".npz with 'latents' (frames, N, d)")
    parser.add_argument("out", help=".npz to write: 'embeddings' (frames, N, 2), 'wall', 'cpu'")
    parser.add_argument("--frames", type=int, default=0, help="first N frames only (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="AlignedUMAP random_state")
    args = parser.parse_args(argv)

    import numba
    import umap
    from umap import AlignedUMAP

    with np.load(args.latents) as saved:
        latents = saved["latents"].astype(np.float32)
    if args.frames:
        latents = latents[:args.frames]
    n_points = latents.shape[1]
    identity = {i: i for i in range(n_points)}
    # numba compiles on first use (tens of seconds): pay it on a small random run, not on frame 0.
    warm = np.random.RandomState(0).normal(size=(2, 200, latents.shape[2])).astype(np.float32)
    AlignedUMAP(random_state=0).fit(list(warm), relations=[{i: i for i in range(200)}])

    embeddings, wall, cpu = [], [], []
    model = AlignedUMAP(random_state=args.seed)
    started, started_cpu = time.perf_counter(), time.process_time()
    model.fit([latents[0], latents[1]], relations=[identity])
    # The fit made frames 0 and 1 at once: half its time each.
    spent, spent_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    embeddings += [np.array(model.embeddings_[0]), np.array(model.embeddings_[1])]
    wall += [spent / 2] * 2
    cpu += [spent_cpu / 2] * 2
    for f in range(2, len(latents)):
        started, started_cpu = time.perf_counter(), time.process_time()
        model.update(latents[f], relations=identity)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        embeddings.append(np.array(model.embeddings_[-1]))
        print(f"AlignedUMAP frame {f}: {wall[-1]:.2f} s", file=sys.stderr, flush=True)
    versions = {"umap-learn": umap.__version__, "numba": numba.__version__, "numpy": np.__version__,
                "python": sys.version.split()[0]}
    np.savez(args.out, embeddings=np.stack(embeddings).astype(np.float64), wall=np.array(wall),
             cpu=np.array(cpu), versions=np.asarray(json.dumps(versions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
