"""The reporter's loop: new EVAL step -> frame -> GIF -> state -> site.

All that a restart needs lives in the output folder: ``state.json`` (written last, atomically,
after each frame; see reporter/state.py) and each frame's exact embedding
(``frames/frame-NNNN.npz``). A restarted reporter continues after the last frame it recorded and
ends with the same outputs.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from reporter import ReporterError, atomic
from reporter.config import ReporterConfig
from reporter.frame import make_frame, resume_embedder, write_frame_files
from reporter.runs_index import RunsIndex
from reporter.state import (FAILED, FINISHED, RUNNING, STALLED, STATE_FILE, FrameRecord, GifInfo, ReportState,
                            SkippedStep, now_iso)
from reporter.state import load as load_saved_state
from reporter.store import ProbeStep, StepUnreadable, TensorStore

log = logging.getLogger("reporter")

GIF_FILE = "latentlapse.gif"
# Exit codes (docs/architecture.md).
EXIT_OK, EXIT_FAILED = 0, 3
# Files the reporter writes at the top of its folder; any other file there means the folder is not ours.
OWN_ENTRIES = {STATE_FILE, GIF_FILE, "index.html", "assets", "frames", "run.json", "metrics.csv",
               "reconstruction.png", "explore", "latentlapse.mp4", "figure.pdf", "figure.svg", "figure.png"}


def load_state(out: Path, tensors: str) -> ReportState:
    """The saved state of this report, a new one for an empty folder; refuse someone else's folder."""
    state = load_saved_state(out / STATE_FILE)
    if state is not None:
        if state.tensors != tensors:
            raise ReporterError(f"{out} holds the report of another tensor store ({state.tensors}): "
                                "choose a new --out folder")
        return state
    if out.exists() and not out.is_dir():
        raise ReporterError(f"--out {out} is a file: choose a folder")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in OWN_ENTRIES and not p.name.startswith("."))
        if foreign:
            raise ReporterError(f"--out {out} holds files that are not a latentlapse report "
                                f"({', '.join(foreign[:3])}): choose an empty or new folder")
    return ReportState.new(tensors)


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
        self.runs_index = RunsIndex(config.runs_index) if config.runs_index else None
        self.job = None
        if config.training_job:
            from reporter.sagemaker_job import JobWatcher

            self.job = JobWatcher(config.training_job)
        # The embedding's memory of the last frames (layout, latents, neighbours), from their files.
        self.embedder = resume_embedder(self.out, self.state.frames, config.seed, config.threads)
        self.n_points: int | None = len(self.embedder.layout) if self.state.frames else None
        self.gif = GifWriter(self.out / GIF_FILE, delay_ms=config.gif_delay_ms,
                             budget_bytes=int(config.gif_budget_mib * 1024 * 1024))
        if self.gif.frames > len(self.state.frames):
            # Killed between publishing the GIF and recording the frame: the state is the truth.
            self.gif.truncate(len(self.state.frames))
        from reporter.video import VideoWriter

        self.video = VideoWriter(self.out, fps=1000.0 / config.gif_delay_ms, every=config.mp4_every,
                                 threads=config.threads)

    # -- status and saving ---------------------------------------------------------------------

    def set_status(self, status: str, since: float | None = None) -> None:
        if self.state.status != status:
            self.state.status = status
            self.state.status_since = now_iso(since)
            log.info("status: %s", status)

    def save(self) -> None:
        """state.json last: everything it names is already on disk. Then the site."""
        from reporter.site import write_site

        self.state.updated = now_iso()
        atomic.write_json(self.out / STATE_FILE, self.state.to_json())
        write_site(self.out, self.state, self.run_info)
        if self.runs_index is not None:  # after state.json: the index is rebuilt from the folders
            self.runs_index.update(self.state.status)

    def end(self, status: str, code: int, reason: str | None = None) -> int:
        """Record the final ``status`` (and the one-line ``reason``), save, and return ``code``."""
        self.publish_outputs(complete=True)
        self.set_status(status)
        self.state.reason = reason
        self.save()
        return code

    # -- one frame -----------------------------------------------------------------------------

    def add_frame(self, probe: ProbeStep) -> FrameRecord:
        """Make one EVAL step's frame, write its files, then publish it (GIF, state); return its record."""
        from reporter.rules import evaluate

        n = probe.latents.shape[0]
        if self.n_points is not None and n != self.n_points:
            raise ReporterError(f"EVAL step {probe.step} holds {n} probe points, earlier frames {self.n_points}: "
                                "the probe set must stay the same; start a new report for a different run")
        self.n_points = n
        frame = make_frame(probe, self.embedder, index=len(self.state.frames), run_info=self.run_info)
        write_frame_files(self.out, frame, probe)
        if self.gif.frames == 0 and self.run_info:
            self.gif.expected_frames = self.run_info.get("expected_frames")
        self.gif.append(frame.picture)
        record = frame.record
        record.published = round(time.time(), 3)

        self.state.frames.append(record)
        self.state.gif = GifInfo(path=GIF_FILE, frames=self.gif.frames, bytes=self.gif.bytes,
                                 scale=self.gif.scale, note=self.gif.note, kept=self.gif.kept,
                                 width=self.gif.size[0], height=self.gif.size[1])
        self.publish_outputs(complete=False)
        self.state.alerts = evaluate(self.state.frame_dicts(), latents_last=probe.latents)
        self.state.tensors_inventory = self.store.inventory()
        log.info("frame %d: EVAL step %d (global %d), embedded in %.2f s, 10-NN 2-D %s, GIF %.2f MB",
                 record.index, probe.step, probe.global_step, record.embed_seconds, record.knn_2d,
                 self.gif.bytes / 1e6)
        return record

    def publish_outputs(self, complete: bool) -> None:
        """The MP4 and, once ``complete``, the paper figure (reporter/outputs.py)."""
        from reporter.outputs import publish

        publish(self.out, self.state, self.video, self.run_info, complete=complete,
                figure_frames=self.config.figure_frames, figure_width=self.config.figure_width)

    # -- the loop ------------------------------------------------------------------------------

    def catch_up(self) -> int:
        """Make a frame for every complete EVAL step not done yet; return how many were made."""
        made = 0
        for step in sorted(set(self.store.eval_steps()) - self.state.done_steps()):
            last = self.state.frames[-1].global_step if self.state.frames else None
            try:
                probe = self.store.read_probe_step(step, since_global_step=last)
            except StepUnreadable as exc:
                log.warning("skipping %s", exc)
                self.state.skipped.append(SkippedStep(step=step, reason=exc.reason,
                                                      global_step=self.store.global_step_of(step),
                                                      position=len(self.state.frames)))
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
        self.set_status(RUNNING)
        self.save()
        last_growth, last_seen = time.monotonic(), None
        while True:
            # In a SageMaker job smdebug writes no end marker: the job's own status says it ended.
            ended = self.store.training_ended() or (self.job is not None and self.job.ended())
            self.run_info = self.store.run_info() or self.run_info
            self.catch_up()
            seen = (len(self.store.all_steps()), len(self.state.frames),
                    (self.run_info or {}).get("progress", {}).get("updated"))
            if seen != last_seen:
                last_seen, last_growth = seen, time.monotonic()
                if self.state.status == STALLED:
                    self.set_status(RUNNING)
                    self.save()
            if ended:
                # smdebug lists the last step only once it has re-read the index after the end marker.
                if self.catch_up() == 0:
                    return self.ended()
                continue
            if not config.follow:
                self.publish_outputs(complete=True)  # the frames read so far, in every output
                self.save()
                return EXIT_OK
            quiet = time.monotonic() - last_growth
            if quiet > config.wait_timeout:
                reason = (f"the tensor store has not grown for {quiet:.0f} s and training has not ended: "
                          "the trainer stopped")
                log.error("%s; %d frames kept in %s", reason, len(self.state.frames), self.out)
                return self.end(FAILED, EXIT_FAILED, reason)
            if quiet > config.stall_after and self.state.status != STALLED:
                self.set_status(STALLED, since=time.time() - quiet)
                self.save()
            time.sleep(config.poll_interval)

    def ended(self) -> int:
        """Training ended and every step is done: finished, or failed if its SageMaker job failed."""
        if self.job is not None and self.job.status == "Failed":
            reason = f"training job {self.job.job_name} failed ({self.job.failure_reason or 'no reason given'})"
            log.error("%s; %d frames kept in %s", reason, len(self.state.frames), self.out)
            return self.end(FAILED, EXIT_FAILED, reason)
        log.info("finished: %d frames, GIF at %s", len(self.state.frames), self.out / GIF_FILE)
        return self.end(FINISHED, EXIT_OK)


def run(config: ReporterConfig) -> int:
    """Keep the report in ``config.out`` up to date from ``config.tensors``; return the exit code."""
    return Report(config).run()
