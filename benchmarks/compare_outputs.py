"""A comparison's GIF, MP4 and figure: their cost per tick, and their sizes, for 2 to 8 runs.

Reads real report folders (the reporter's ``--out``), compares them (the first is the reference;
a folder may be given more than once to make more runs: the outputs' cost does not depend on
what the maps show), and times, for each run count asked for: building the side-by-side canvas,
painting a tick, and ``write_outputs`` as a whole with and without the figure. Prints one line per
run count.

    .venv/bin/python benchmarks/compare_outputs.py REPORT_A REPORT_B --runs 2,4,8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reporter.compare.comparison import compare  # noqa: E402
from reporter.compare.outputs import write_outputs  # noqa: E402
from reporter.compare.panels import ComparisonCanvas  # noqa: E402
from reporter.compare.reports import read_report  # noqa: E402


def measure(folders: list[Path], n_runs: int) -> str:
    reports = [read_report(folders[i % len(folders)], name=f"run-{i}") for i in range(n_runs)]
    comparison = compare(reports)
    titles = [f"run-{i} \u00b7 trainer seed {i}" for i in range(n_runs)]
    n_ticks = len(comparison.ticks)
    start = time.perf_counter()
    canvas = ComparisonCanvas(comparison, titles, "benchmark")
    built = time.perf_counter() - start
    start = time.perf_counter()
    for tick in range(n_ticks):
        canvas.paint(tick)
    paint = (time.perf_counter() - start) / n_ticks
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_outputs(Path(tmp) / "a", comparison, titles, figure=False)
        moving = time.perf_counter() - start
        start = time.perf_counter()
        result = write_outputs(Path(tmp) / "b", comparison, titles)
        whole = time.perf_counter() - start
    gif, video, figure = result["gif"], result["video"], result["figure"]
    return (f"{n_runs} runs, {comparison.shared} points, {n_ticks} ticks: canvas {built:.2f} s, "
            f"paint {paint * 1000:.0f} ms/tick; GIF+MP4 {moving:.2f} s ({moving / n_ticks * 1000:.0f} ms/tick), "
            f"with the figure {whole:.2f} s | GIF {gif['kept']} of {gif['frames']} at {gif['width']}x{gif['height']}, "
            f"{gif['bytes'] / 2**20:.2f} MiB; MP4 {video.get('bytes', 0) / 1e6:.2f} MB (CRF {video.get('crf')}); "
            f"figure PDF {figure.get('bytes', 0) / 1024:.0f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--runs", default="2,4,8", help="run counts, e.g. 2,4,8")
    args = parser.parse_args()
    for n in (int(v) for v in args.runs.split(",")):
        print(measure(args.reports, n), flush=True)


if __name__ == "__main__":
    main()
