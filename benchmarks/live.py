"""Live run: how far the reporter trails the trainer, and how much it slows the trainer down.

Kinds of run, interleaved round by round (A B A B ..., or A B C A B C ...), each in a fresh folder:

    A  trainer alone:      python -m trainer --out RUN/tensors --steps S --eval-every E --threads 1
    B  trainer + reporter, started together as scripts/demo.sh (``make demo``) starts them:
                           python -m trainer  --out RUN/tensors ... --threads 1
                           python -m reporter --tensors RUN/tensors --out RUN/site --follow --threads 1
    C  (with ``--variant-env NAME=VALUE``) as B, with that setting in the reporter's environment:
       to measure a proposed change of the reporter before anyone makes it

Trainer speed: ``progress.images_per_second`` of the run file the trainer writes
(``latentlapse-run.json``; training images over the time of the loop, EVAL passes included), and
the trainer process's wall time (start-up included). Slowdown = 1 - B / A, per round (paired)
and of the medians.

Reporter lag, per frame: ``published`` (epoch time in the reporter's ``state.json``: the frame is in
the GIF) minus the modification time of smdebug's index file of that EVAL step,
``tensors/index/{global_step // 1000:09d}/{global_step:012d}_worker_0.json``. smdebug writes a
step's index only when the next step starts (the last one at ``hook.close()``), i.e. the moment
the step becomes readable, so the lag is the reporter's own delay. Frame 0 is listed on its own:
it also pays the reporter's start-up and a full t-SNE. End: from the modification time of
``training_job_end.ts`` to the last frame's ``published`` and to the final ``state.json`` (status
"finished").

``--phases`` adds one more B run (not counted above) whose reporter runs under
``live.py timed-reporter``: the same CLI with timers around its stages, to show where a
frame's time goes (reading, embedding, quality figures, drawing, files, GIF, state, site).

    .venv/bin/python benchmarks/live.py --steps 400 --eval-every 20 --rounds 3 --phases
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable

from latentlapse.contract import END_MARKER, RUN_FILE  # noqa: E402
# Issue 3, point 8 and DESIGN.md: at most 15% slower; the final frame within seconds of the end.
SLOWDOWN_TARGET = 0.15
KINDS = {"A": "A trainer alone", "B": "B trainer + reporter", "C": "C trainer + reporter (variant env)"}


# ---------------------------------------------------------------------------------------------
# Running the two processes


def clean_env() -> dict:
    """The caller's environment without TRAINER_*/REPORTER_* settings that would change the runs."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TRAINER_", "REPORTER_"))}


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def wait_all(procs: dict[str, subprocess.Popen], poll: float = 0.1) -> dict[str, dict]:
    """Wait for every process; per name its exit code, end time (epoch) and CPU seconds (wait4)."""
    done: dict[str, dict] = {}
    while len(done) < len(procs):
        for name, proc in procs.items():
            if name in done:
                continue
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                done[name] = {"code": proc.returncode, "end": time.time(),
                              "cpu": round(usage.ru_utime + usage.ru_stime, 2)}
        time.sleep(poll)
    return done


def trainer_command(store: Path, args) -> list[str]:
    return [PY, "-m", "trainer", "--out", str(store), "--steps", str(args.steps),
            "--eval-every", str(args.eval_every), "--threads", "1"]


def reporter_command(store: Path, site: Path, phases_file: Path | None = None) -> list[str]:
    head = [PY, "-m", "reporter"] if phases_file is None else \
        [PY, str(Path(__file__).resolve()), "timed-reporter", str(phases_file)]
    return [*head, "--tensors", str(store), "--out", str(site), "--follow", "--threads", "1"]


def run_once(folder: Path, args, kind: str, phases_file: Path | None = None) -> dict:
    """One run of ``kind`` (see KINDS) in ``folder``: the trainer's speed and, with the reporter, its lag."""
    with_reporter = kind != "A"
    reporter_env = {**clean_env(), **(dict(args.variant_env) if kind == "C" else {})}
    folder.mkdir(parents=True)
    store, site = folder / "tensors", folder / "site"
    load_before = load1()
    started = time.time()
    procs = {"trainer": subprocess.Popen(trainer_command(store, args), cwd=ROOT, env=clean_env(),
                                         stdout=open(folder / "trainer.log", "w"), stderr=subprocess.STDOUT)}
    if with_reporter:
        procs["reporter"] = subprocess.Popen(reporter_command(store, site, phases_file), cwd=ROOT,
                                             env=reporter_env, stdout=open(folder / "reporter.log", "w"),
                                             stderr=subprocess.STDOUT)
    ended = wait_all(procs)
    for name, result in ended.items():
        if result["code"] != 0:
            raise SystemExit(f"{name} exited with {result['code']}: see {folder / (name + '.log')}")
    info = json.loads((store / RUN_FILE).read_text())
    row = {"kind": kind, "folder": str(folder), "load_before": load_before,
           "load_after": load1(), "images_per_second": info["progress"]["images_per_second"],
           "trainer_wall": round(ended["trainer"]["end"] - started, 2), "trainer_cpu": ended["trainer"]["cpu"],
           "expected_frames": info["expected_frames"]}
    if with_reporter:
        row.update(reporter_figures(store, site))
        row["reporter_cpu"] = ended["reporter"]["cpu"]
        row["reporter_wall"] = round(ended["reporter"]["end"] - started, 2)
    if not args.keep:
        shutil.rmtree(store)  # ~140 MB per 400-step run; the figures are read already
    return row


# ---------------------------------------------------------------------------------------------
# Reading the figures from the files the two processes left


def index_file(store: Path, global_step: int, worker: str = "worker_0") -> Path:
    """smdebug's index file of a global step (1,000 steps per index folder)."""
    return store / "index" / f"{global_step // 1000:09d}" / f"{global_step:012d}_{worker}.json"


def reporter_figures(store: Path, site: Path) -> dict:
    """Per-frame lag and the end-of-training delays, from state.json and the store's file times."""
    state_path = site / "state.json"
    state = json.loads(state_path.read_text())
    if state["status"] != "finished":
        raise SystemExit(f"{state_path}: status {state['status']!r}, expected 'finished'")
    if state.get("skipped"):
        raise SystemExit(f"{state_path}: the reporter skipped steps: {state['skipped']}")
    lags = []
    for frame in state["frames"]:
        index = index_file(store, frame["global_step"])
        if not index.is_file():
            raise SystemExit(f"no index file {index} for frame {frame['index']}: has smdebug's layout changed?")
        lags.append(round(frame["published"] - index.stat().st_mtime, 3))
    end = (store / END_MARKER).stat().st_mtime
    rest = lags[1:] or lags
    return {"frames": len(state["frames"]), "lags": lags, "lag_first": lags[0],
            "lag_median": round(statistics.median(rest), 3), "lag_max": round(max(rest), 3),
            "end_to_last_frame": round(state["frames"][-1]["published"] - end, 3),
            "end_to_finished": round(state_path.stat().st_mtime - end, 3)}


# ---------------------------------------------------------------------------------------------
# Summary


def median_of(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def summarize(rows: list[dict], kind: str = "B") -> dict:
    """Medians of the runs of ``kind`` against the trainer alone (A), paired by round."""
    alone = [r for r in rows if r["kind"] == "A"]
    live = [r for r in rows if r["kind"] == kind]
    paired = [1 - b["images_per_second"] / a["images_per_second"] for a, b in zip(alone, live)]
    paired_wall = [b["trainer_wall"] / a["trainer_wall"] - 1 for a, b in zip(alone, live)]
    summary = {
        "ips_alone": median_of(alone, "images_per_second"), "ips_live": median_of(live, "images_per_second"),
        "wall_alone": median_of(alone, "trainer_wall"), "wall_live": median_of(live, "trainer_wall"),
        "cpu_alone": median_of(alone, "trainer_cpu"), "cpu_live": median_of(live, "trainer_cpu"),
        "paired_slowdowns": [round(s, 4) for s in paired], "paired_wall": [round(s, 4) for s in paired_wall],
        "lag_first": median_of(live, "lag_first"), "lag_median": median_of(live, "lag_median"),
        "lag_max": max(r["lag_max"] for r in live),
        "end_to_last_frame": median_of(live, "end_to_last_frame"),
        "end_to_finished": median_of(live, "end_to_finished"),
        "end_to_finished_max": max(r["end_to_finished"] for r in live),
        "reporter_cpu": median_of(live, "reporter_cpu"),
    }
    summary["slowdown"] = 1 - summary["ips_live"] / summary["ips_alone"]
    summary["slowdown_wall"] = summary["wall_live"] / summary["wall_alone"] - 1
    return summary


def markdown(rows: list[dict], s: dict, variant: dict | None = None) -> str:
    lines = ["| round | run | images/s | trainer wall | trainer CPU | frames | lag frame 0 | lag median (1..n) "
             "| lag max (1..n) | end -> last frame | end -> finished | reporter CPU | load 1-min before/after |",
             "|" + " --- |" * 13]
    for r in rows:
        def cell(key, unit=" s", digits=2):
            return f"{r[key]:.{digits}f}{unit}" if key in r else ""

        cells = [str(r["round"]), KINDS[r["kind"]], cell("images_per_second", "", 1), cell("trainer_wall", digits=1),
                 cell("trainer_cpu", digits=1), str(r.get("frames", "")), cell("lag_first"), cell("lag_median"),
                 cell("lag_max"), cell("end_to_last_frame"), cell("end_to_finished"), cell("reporter_cpu", digits=1),
                 f"{r['load_before']:.2f} / {r['load_after']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    verdict = "met" if s["slowdown"] <= SLOWDOWN_TARGET else "NOT met"
    lines += [
        "",
        "| figure (median over rounds) | value | target |",
        "| --- | --- | --- |",
        f"| trainer images/s alone / with reporter | {s['ips_alone']:.1f} / {s['ips_live']:.1f} | |",
        f"| trainer slowdown (images/s) | {100 * s['slowdown']:.1f}% (per round: "
        f"{', '.join(f'{100 * x:.1f}%' for x in s['paired_slowdowns'])}) | <= 15% ({verdict}) |",
        f"| trainer wall time alone / with reporter | {s['wall_alone']:.1f} s / {s['wall_live']:.1f} s "
        f"(+{100 * s['slowdown_wall']:.1f}%) | |",
        f"| trainer CPU time alone / with reporter | {s['cpu_alone']:.1f} s / {s['cpu_live']:.1f} s | |",
        f"| reporter lag, frame 0 (start-up + full t-SNE) | {s['lag_first']:.2f} s | |",
        f"| reporter lag, frames 1..n: median / max of all rounds | {s['lag_median']:.2f} s / {s['lag_max']:.2f} s "
        "| |",
        f"| training end -> last frame in the GIF | {s['end_to_last_frame']:.2f} s | within seconds |",
        f"| training end -> state.json 'finished' (max of rounds) | {s['end_to_finished']:.2f} s "
        f"({s['end_to_finished_max']:.2f} s) | within seconds |",
        f"| reporter CPU time per run | {s['reporter_cpu']:.1f} s | |",
    ]
    if variant is not None:
        lines += ["", f"C (reporter with {variant['env']}): trainer {variant['ips_live']:.1f} images/s, slowdown "
                  f"{100 * variant['slowdown']:.1f}% (per round: "
                  f"{', '.join(f'{100 * x:.1f}%' for x in variant['paired_slowdowns'])}), wall "
                  f"+{100 * variant['slowdown_wall']:.1f}%; lag median {variant['lag_median']:.2f} s, max "
                  f"{variant['lag_max']:.2f} s; end -> finished {variant['end_to_finished']:.2f} s."]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Where the reporter's time goes (an instrumented reporter, for --phases)

# Stage -> the functions timed for it (module, attribute path). Only the outermost timed call counts,
# so a stage's time never includes another's (the site writes files through atomic.* too).
STAGES = {
    "read": [("reporter.trial.store", "TensorStore.read_probe_step")],
    "inventory": [("reporter.trial.store", "TensorStore.inventory")],
    "embed": [("reporter.embedding.embed", "Embedder.embed")],
    "quality": [("reporter.embedding.quality", "knn_accuracy"), ("reporter.embedding.quality", "trustworthiness"),
                ("reporter.rules", "dead_units")],
    "alerts": [("reporter.rules", "evaluate")],
    "draw": [("reporter.pictures.render", "draw_frame")],
    "frame files": [("reporter.pictures.png", "save_png"), ("reporter.pictures.reconstruction", "save_reconstruction_grid"),
                    ("reporter.frame", "_csv"), ("reporter.frame", "_npz"),
                    ("latentlapse.atomic", "write_text"), ("latentlapse.atomic", "write_bytes")],
    "gif": [("reporter.outputs.gif", "GifWriter.append")],
    "state": [("latentlapse.atomic", "write_json")],
    "site": [("reporter.site.page", "write_site")],
    "poll": [("reporter.trial.store", "TensorStore.eval_steps"), ("reporter.trial.store", "TensorStore.all_steps"),
             ("reporter.trial.store", "TensorStore.training_ended"), ("reporter.trial.store", "TensorStore.run_info")],
}


def timed_reporter(phases_file: str, argv: list[str]) -> int:
    """Run the reporter CLI with timers around its stages; write per-frame stage times as JSON."""
    import importlib

    threads = argv[argv.index("--threads") + 1] if "--threads" in argv else "1"
    os.environ.setdefault("OMP_NUM_THREADS", threads)  # as reporter.cli does, before the imports below
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    from reporter import cli, pipeline

    frames: list[dict] = []
    outside: dict[str, float] = {}
    active = {"stage": None, "frame": None}

    def start_frame():
        frames.append({"stages": {}, "start": time.perf_counter()})
        active["frame"] = len(frames) - 1

    def timer(stage, fn):
        @functools.wraps(fn)
        def timed(*a, **k):
            if active["stage"] is not None:
                return fn(*a, **k)
            if stage == "read" and active["frame"] is None:
                start_frame()  # a frame starts with reading its step
            active["stage"], start = stage, time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent = time.perf_counter() - start
                target = frames[active["frame"]]["stages"] if active["frame"] is not None else outside
                target[stage] = target.get(stage, 0.0) + spent
                active["stage"] = None
        return timed

    # Unlike the plain CLI, this imports every stage's module (openTSNE, matplotlib, ...) before the
    # trial exists, so frame 0 does not wait for those imports here: its lag is not comparable.
    for stage, targets in STAGES.items():
        for module_name, path in targets:
            owner = importlib.import_module(module_name)
            *parents, attr = path.split(".")
            for p in parents:
                owner = getattr(owner, p)
            setattr(owner, attr, timer(stage, getattr(owner, attr)))

    add_frame, save = pipeline.Report.add_frame, pipeline.Report.save

    def timed_add_frame(self, probe):
        # A frame is reading its step, add_frame, and the save() that follows (state.json, the site).
        if active["frame"] is None:
            start_frame()
        frames[active["frame"]].update(step=probe.step, global_step=probe.global_step)
        return add_frame(self, probe)

    def timed_save(self):
        try:
            return save(self)
        finally:
            if active["frame"] is not None:
                frame = frames[active["frame"]]
                frame["total"] = time.perf_counter() - frame.pop("start")
                active["frame"] = None

    pipeline.Report.add_frame, pipeline.Report.save = timed_add_frame, timed_save
    imports = time.perf_counter() - started
    try:
        return cli.main(argv)
    finally:
        Path(phases_file).write_text(json.dumps({"frames": frames, "outside_frames": outside, "imports": imports,
                                                 "wall": time.perf_counter() - started}, indent=1))


def phase_table(phases: dict) -> str:
    """Median seconds per stage over frames 1..n, frame 0 apart, and the run's totals."""
    frames = phases["frames"]
    later = frames[1:] or frames
    stages = list(STAGES)[:-1] + ["other"]
    for f in frames:
        f["stages"]["other"] = f["total"] - sum(f["stages"].values())
    lines = ["| stage | frame 0 | median of frames 1..n | share of frames 1..n |", "| --- | --- | --- | --- |"]
    total_later = sum(f["total"] for f in later)
    for stage in stages:
        values = [f["stages"].get(stage, 0.0) for f in later]
        lines.append(f"| {stage} | {frames[0]['stages'].get(stage, 0.0):.3f} s | {statistics.median(values):.3f} s "
                     f"| {100 * sum(values) / total_later:.0f}% |")
    lines.append(f"| **whole frame** | {frames[0]['total']:.3f} s | "
                 f"{statistics.median(f['total'] for f in later):.3f} s | 100% |")
    busy = sum(f["total"] for f in frames)
    out = phases["outside_frames"]
    lines += ["", f"{len(frames)} frames; the reporter spent {busy:.1f} s making frames, "
              f"{out.get('poll', 0.0):.1f} s polling the store between them, of {phases['wall']:.1f} s "
              f"running (start-up and waiting for the trial are the rest); importing the stages' modules "
              f"took {phases.get('imports', float('nan')):.1f} s, at start-up (see timed_reporter)."]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def wait_for_quiet(threshold: float, longest: float, every: float = 60.0) -> None:
    """Wait (up to ``longest`` seconds) for the 1-minute load to fall below ``threshold``."""
    deadline = time.monotonic() + longest
    while load1() >= threshold and time.monotonic() < deadline:
        print(f"waiting for a quieter machine: {uptime()}", flush=True)
        time.sleep(every)
    print(("machine quiet enough: " if load1() < threshold else "load still high, running anyway: ") + uptime(),
          flush=True)


def env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["timed-reporter"]:
        return timed_reporter(argv[1], argv[2:])
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=400, help="training steps per run")
    p.add_argument("--eval-every", type=int, default=20, help="steps between EVAL passes (frames)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of A (alone) then B (with the reporter)")
    p.add_argument("--variant-env", type=env_pair, action="append", default=[], metavar="NAME=VALUE",
                   help="add a run C per round: trainer + reporter with this in the reporter's environment")
    p.add_argument("--phases", action="store_true", help="one more B run with the reporter's stages timed")
    p.add_argument("--work-dir", default=str(ROOT / "runs" / "bench-live"),
                   help="folder for the runs (a new sub-folder per invocation)")
    p.add_argument("--keep", action="store_true", help="keep each run's tensor store (deleted by default)")
    p.add_argument("--wait-load", type=float, default=0.0,
                   help="first wait for the 1-minute load to fall below this (0: do not wait)")
    p.add_argument("--wait-max", type=float, default=1200.0, help="longest wait for that, in seconds")
    args = p.parse_args(argv)

    if args.wait_load > 0:
        wait_for_quiet(args.wait_load, args.wait_max)
    work = Path(args.work_dir) / time.strftime("%Y%m%dT%H%M%S")
    command = "python benchmarks/live.py " + " ".join(argv)
    print(f"{command}\nruns in {work}\nbefore: {uptime()}", flush=True)
    before = uptime()
    rows = []
    kinds = ["A", "B", "C"] if args.variant_env else ["A", "B"]
    for r in range(args.rounds):
        for kind in kinds:
            row = run_once(work / f"round{r + 1}-{kind}", args, kind)
            row["round"] = r + 1
            rows.append(row)
            extra = (f", lag median {row['lag_median']:.2f} s max {row['lag_max']:.2f} s, end -> finished "
                     f"{row['end_to_finished']:.2f} s" if kind != "A" else "")
            print(f"round {r + 1} {row['kind']}: {row['images_per_second']:.1f} images/s, trainer "
                  f"{row['trainer_wall']:.1f} s{extra} (load {row['load_before']} -> {row['load_after']})",
                  flush=True)
    phases = None
    if args.phases:
        phases_file = work / "phases.json"
        row = run_once(work / "phases-B", args, "B", phases_file=phases_file)
        phases = json.loads(phases_file.read_text())
        phases["run"] = row
    after = uptime()
    summary = summarize(rows)
    variant = None
    if args.variant_env:
        variant = {**summarize(rows, "C"), "env": " ".join(f"{k}={v}" for k, v in args.variant_env)}
    report = markdown(rows, summary, variant)
    print(f"\nafter: {after}\n\n{report}")
    if phases is not None:
        print(f"\nReporter stages (instrumented run, {phases['run']['images_per_second']:.1f} images/s, lag median "
              f"{phases['run']['lag_median']:.2f} s):\n\n{phase_table(phases)}")
    (work / "results.json").write_text(json.dumps({"command": command, "uptime_before": before,
                                                   "uptime_after": after, "rows": rows, "summary": summary, "variant": variant,
                                                   "phases": phases}, indent=1))
    print(f"\nall figures: {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
