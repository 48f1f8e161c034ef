"""The reporter's loop: new EVAL step -> embedding -> frame -> GIF -> state -> site.

All that a restart needs lives in the output folder: ``state.json`` (written last, atomically,
after each frame) and each frame's exact embedding (``frames/frame-NNNN.npz``). A restarted
reporter continues after the last frame it recorded and ends with the same outputs.
"""

from __future__ import annotations

import io
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from reporter import ReporterError, atomic
from reporter.config import ReporterConfig
from reporter.store import ProbeStep, StepUnreadable, TensorStore

log = logging.getLogger("reporter")

STATE_FILE = "state.json"
GIF_FILE = "latentlapse.gif"
STATE_FORMAT = 1
# Exit codes (docs/architecture.md).
EXIT_OK, EXIT_FAILED = 0, 3
# Files the reporter writes at the top of its folder; any other file there means the folder is not ours.
OWN_ENTRIES = {STATE_FILE, GIF_FILE, "index.html", "assets", "frames", "run.json", "metrics.csv",
               "reconstruction.png"}


def _iso(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# State


def load_state(out: Path, tensors: str) -> dict:
    """The saved state of this report, a new one for an empty folder; refuse someone else's folder."""
    path = out / STATE_FILE
    if path.is_file():
        import json

        try:
            state = json.loads(path.read_text())
        except ValueError:
            raise ReporterError(f"{path} is not valid JSON: move the folder away and start a new report") from None
        if state.get("tensors") != tensors:
            raise ReporterError(f"{out} holds the report of another tensor store ({state.get('tensors')}): "
                                "choose a new --out folder")
        return state
    if out.exists() and not out.is_dir():
        raise ReporterError(f"--out {out} is a file: choose a folder")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in OWN_ENTRIES and not p.name.startswith("."))
        if foreign:
            raise ReporterError(f"--out {out} holds files that are not a latentlapse report "
                                f"({', '.join(foreign[:3])}): choose an empty or new folder")
    return {"format": STATE_FORMAT, "tensors": tensors, "status": "waiting", "status_since": _iso(),
            "updated": _iso(), "frames": [], "skipped": [], "gif": None, "alerts": [],
            "tensors_inventory": []}


def frame_paths(index: int) -> dict[str, str]:
    stem = f"frames/frame-{index:04d}"
    return {"png": stem + ".png", "csv": stem + ".csv", "npz": stem + ".npz"}


def _csv(embedding: np.ndarray, labels: np.ndarray) -> str:
    buf = io.StringIO()
    buf.write("x,y,label\n")
    for (x, y), label in zip(embedding, labels):
        buf.write(f"{x:.6g},{y:.6g},{int(label)}\n")
    return buf.getvalue()


def _npz(embedding: np.ndarray, labels: np.ndarray, step: int, latents: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, embedding=embedding, labels=labels, step=np.int64(step), latents=latents)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# The report


class Report:
    """One output folder being kept up to date from one tensor store."""

    def __init__(self, config: ReporterConfig):
        from reporter.gif import GifWriter

        self.config = config
        self.out = Path(config.out)
        self.state = load_state(self.out, config.tensors)
        self.store = TensorStore(config.tensors, config.names(), retries=config.retries,
                                 retry_delay=config.retry_delay)
        self.run_info: dict | None = None
        self.job = None
        if config.training_job:
            from reporter.sagemaker_job import JobWatcher

            self.job = JobWatcher(config.training_job)
        from reporter.embed import Embedder

        frames = self.state["frames"]
        # The embedding's memory of the last frames (layout, latents, neighbours), from their files.
        self.embedder = Embedder.resume([self.out / f["npz"] for f in frames], config.seed, config.threads)
        self.n_points: int | None = len(self.embedder.layout) if frames else None
        self.gif = GifWriter(self.out / GIF_FILE, delay_ms=config.gif_delay_ms,
                             budget_bytes=int(config.gif_budget_mib * 1024 * 1024))
        if self.gif.frames > len(frames):
            # Killed between publishing the GIF and recording the frame: the state is the truth.
            self.gif.truncate(len(frames))

    # -- bookkeeping ---------------------------------------------------------------------------

    def done_steps(self) -> set[int]:
        return {f["step"] for f in self.state["frames"]} | {s["step"] for s in self.state["skipped"]}

    def set_status(self, status: str, since: float | None = None) -> None:
        if self.state["status"] != status:
            self.state["status"] = status
            self.state["status_since"] = _iso(since)
            log.info("status: %s", status)

    def save(self) -> None:
        """state.json last: everything it names is already on disk. Then the site."""
        from reporter.site import write_site

        self.state["updated"] = _iso()
        atomic.write_json(self.out / STATE_FILE, self.state)
        write_site(self.out, self.state, self.run_info)

    # -- one frame -----------------------------------------------------------------------------

    def class_names(self, labels: np.ndarray) -> list[str]:
        names = (self.run_info or {}).get("class_names")
        n = int(labels.max()) + 1 if len(labels) else 0
        if isinstance(names, list) and len(names) >= n:
            return [str(x) for x in names]
        return [str(i) for i in range(max(n, 1))]

    def add_frame(self, probe: ProbeStep) -> dict:
        """Embed, draw and publish one EVAL step; return its record."""
        from reporter.quality import knn_accuracy, trustworthiness
        from reporter.render import CLASS_COLOURS, draw_frame, save_png
        from reporter.rules import dead_units, evaluate
        from reporter.reconstruction import save_reconstruction_grid
        from reporter.site import RECONSTRUCTION_PNG

        n = probe.latents.shape[0]
        if self.n_points is not None and n != self.n_points:
            raise ReporterError(f"EVAL step {probe.step} holds {n} probe points, earlier frames {self.n_points}: "
                                "the probe set must stay the same; start a new report for a different run")
        self.n_points = n
        index = len(self.state["frames"])
        started = time.perf_counter()
        embedding = self.embedder.embed(probe.latents)
        embed_seconds = time.perf_counter() - started
        nonfinite = embedding is None
        if nonfinite:
            log.warning("EVAL step %d: latents hold NaN/Inf; the frame repeats the last embedding, marked",
                        probe.step)
            embedding = self.embedder.layout if self.embedder.layout is not None else np.zeros((n, 2))
        class_names = self.class_names(probe.labels)
        eval_loss = float(np.mean(probe.losses)) if probe.losses is not None else None
        train_loss = float(np.mean([v for _, v in probe.train_losses])) if probe.train_losses else None
        record = {
            "index": index, "step": probe.step, "global_step": probe.global_step,
            "eval_loss": _finite_or_none(eval_loss), "train_loss": _finite_or_none(train_loss),
            "train_losses": [[g, _finite_or_none(v)] for g, v in probe.train_losses],
            "nonfinite": bool(nonfinite or (eval_loss is not None and not np.isfinite(eval_loss))),
            "embed_seconds": round(embed_seconds, 4),
            "knn_latent": None, "knn_2d": None, "trustworthiness": None,
            **frame_paths(index),
        }
        if not nonfinite:
            record["dead_units"] = dead_units(probe.latents)
            record["knn_latent"] = round(float(knn_accuracy(probe.latents, probe.labels)), 4)
            record["knn_2d"] = round(float(knn_accuracy(embedding, probe.labels)), 4)
            record["trustworthiness"] = round(float(trustworthiness(probe.latents, embedding)), 4)

        rgb = draw_frame(embedding, probe.labels, class_names, probe.inputs, probe.reconstructions,
                         step=probe.step, global_step=probe.global_step, eval_loss=eval_loss,
                         train_loss=train_loss, nonfinite=nonfinite,
                         title=f"latentlapse · {(self.run_info or {}).get('dataset', 'trial')}")
        save_png(self.out / record["png"], rgb)
        atomic.write_text(self.out / record["csv"], _csv(embedding, probe.labels))
        atomic.write_bytes(self.out / record["npz"], _npz(embedding, probe.labels, probe.step, probe.latents))
        save_reconstruction_grid(self.out / RECONSTRUCTION_PNG, probe.inputs, probe.reconstructions,
                                 probe.labels, class_names, colours=CLASS_COLOURS)
        if self.gif.frames == 0 and self.run_info:
            self.gif.expected_frames = self.run_info.get("expected_frames")
        self.gif.append(rgb)
        record["published"] = round(time.time(), 3)

        self.state["frames"].append(record)
        self.state["gif"] = {"path": GIF_FILE, "frames": self.gif.frames, "bytes": self.gif.bytes,
                             "scale": self.gif.scale, "note": self.gif.note}
        self.state["alerts"] = evaluate(self.state["frames"], latents_last=probe.latents)
        self.state["tensors_inventory"] = self.store.inventory()
        log.info("frame %d: EVAL step %d (global %d), embedded in %.2f s, 10-NN 2-D %s, GIF %.2f MB",
                 index, probe.step, probe.global_step, embed_seconds, record["knn_2d"],
                 self.gif.bytes / 1e6)
        return record

    # -- the loop ------------------------------------------------------------------------------

    def catch_up(self) -> int:
        """Make a frame for every complete EVAL step not done yet; return how many were made."""
        made = 0
        for step in sorted(set(self.store.eval_steps()) - self.done_steps()):
            last = self.state["frames"][-1]["global_step"] if self.state["frames"] else None
            try:
                probe = self.store.read_probe_step(step, since_global_step=last)
            except StepUnreadable as exc:
                log.warning("skipping %s (after %d tries)", exc, self.config.retries)
                self.state["skipped"].append({"step": step, "reason": str(exc)})
                self.save()
                continue
            self.add_frame(probe)
            self.save()
            made += 1
        return made

    def run(self) -> int:
        """Follow (or read once) the store; return the exit code."""
        config = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        # ~20 s of imports on a busy 2-core machine: pay them while the trainer starts, not on frame 0.
        import reporter.embed  # noqa: F401
        import reporter.render  # noqa: F401
        import reporter.site  # noqa: F401
        import smdebug.trials  # noqa: F401
        self.store.open(timeout=config.wait_timeout if config.follow else 0, poll=config.poll_interval,
                        on_wait=lambda: log.info("waiting up to %.0f s for a trial at %s",
                                                 config.wait_timeout, config.tensors))
        while not self.store.resolve_names():
            time.sleep(config.poll_interval)
        self.run_info = self.store.run_info()
        self.set_status("running")
        self.save()
        last_growth, last_seen = time.monotonic(), None
        while True:
            # In a SageMaker job smdebug writes no end marker: the job's own status says it ended.
            ended = self.store.training_ended() or (self.job is not None and self.job.ended())
            self.run_info = self.store.run_info() or self.run_info
            self.catch_up()
            seen = (len(self.store.all_steps()), len(self.state["frames"]),
                    (self.run_info or {}).get("progress", {}).get("updated"))
            if seen != last_seen:
                last_seen, last_growth = seen, time.monotonic()
                if self.state["status"] == "stalled":
                    self.set_status("running")
                    self.save()
            if ended:
                # smdebug lists the last step only once it has re-read the index after the end marker.
                if self.catch_up() == 0:
                    if self.job is not None and self.job.status == "Failed":
                        self.set_status("failed")
                        self.save()
                        log.error("training job %s failed (%s); %d frames kept in %s", self.job.job_name,
                                  self.job.failure_reason or "no reason given", len(self.state["frames"]),
                                  self.out)
                        return EXIT_FAILED
                    self.set_status("finished")
                    self.save()
                    log.info("finished: %d frames, GIF at %s", len(self.state["frames"]), self.out / GIF_FILE)
                    return EXIT_OK
                continue
            if not config.follow:
                self.save()
                return EXIT_OK
            quiet = time.monotonic() - last_growth
            if quiet > config.wait_timeout:
                self.set_status("failed")
                self.save()
                log.error("the tensor store has not grown for %.0f s and training has not ended: "
                          "the trainer stopped; %d frames kept in %s", quiet, len(self.state["frames"]), self.out)
                return EXIT_FAILED
            if quiet > config.stall_after and self.state["status"] != "stalled":
                self.set_status("stalled", since=time.time() - quiet)
                self.save()
            time.sleep(config.poll_interval)


def _finite_or_none(value):
    return None if value is None or not np.isfinite(value) else float(value)


def run(config: ReporterConfig) -> int:
    """Keep the report in ``config.out`` up to date from ``config.tensors``; return the exit code."""
    return Report(config).run()
