"""The reporter's loop: new EVAL step -> frame -> GIF -> state -> site.

All that a restart needs lives in the output folder: ``state.json`` (written last, atomically,
after each frame; see reporter/state.py) and each frame's exact embedding
(``frames/frame-NNNN.npz``). A restarted reporter continues after the last frame it recorded and
ends with the same outputs.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from latentlapse import atomic
from latentlapse import report_layout as layout
from latentlapse.contract import RunInfo
from reporter import ReporterError, Stopped
from reporter.config import ReporterConfig
from reporter.final_cut import plan_final_cut, run_final_cut
from reporter.frame import make_frame, resume_embedder, write_frame_files
from reporter.outputs.gif import GifWriter
from reporter.outputs.publish import publish
from reporter.outputs.video import VideoWriter
from reporter.reserve import Reserve, is_disk_full
from reporter.rules import evaluate
from reporter.site.page import write_site
from reporter.site.runs_index import RunsIndex
from reporter.trial.modes import trial_facts
from reporter.trial.sagemaker_job import JobWatcher
from reporter.state import (FAILED, FINISHED, FINISHING, HEARTBEAT_SECONDS, RUNNING, STALLED, STATE_FILE, STOPPED,
                            FrameRecord, GifInfo, ReportState, SkippedStep, now_iso)
from reporter.state import load as load_saved_state
from reporter.trial.store import ProbeStep, StepUnreadable, TensorStore

log = logging.getLogger("reporter")

# Exit codes (docs/architecture.md): 0 finished (or one pass done), 1 bad input (raised as
# ReporterError, printed by the CLI), 3 the run failed, 128 + the signal's number when stopped
# by SIGINT (130) or SIGTERM (143), as a shell reports a process a signal ended. An MP4 or
# figure that cannot be made changes none of these: the report ends as it would have, and its
# site and log say why that file is missing (reporter/outputs/publish.py).
EXIT_OK, EXIT_FAILED = 0, 3
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def load_state(out: Path, tensors: str) -> ReportState:
    """The saved state of this report, a new one for an empty folder; refuse someone else's folder."""
    state = load_saved_state(out / STATE_FILE)
    if state is not None:
        if state.tensors != tensors:
            raise ReporterError(f"{out} holds the report of another tensor store ({state.tensors}): "
                                "choose a new --out folder")
        if state.alerts is None:  # unreadable: the same rules on the recorded frames (the last latents are gone)
            state.alerts = evaluate(state.frame_dicts())
        return state
    if out.exists() and not out.is_dir():
        raise ReporterError(f"--out {out} is a file: choose a folder")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in layout.OWN_ENTRIES and not p.name.startswith("."))
        if foreign:
            raise ReporterError(f"--out {out} holds files that are not a latentlapse report "
                                f"({', '.join(foreign[:3])}): choose an empty or new folder")
    return ReportState.new(tensors)


class RunFailed(ReporterError):
    """The report cannot go on (its own files cannot be written): exit 3, the reason on stderr and the site."""

    exit_code = EXIT_FAILED


class Report:
    """One output folder being kept up to date from one tensor store."""

    def __init__(self, config: ReporterConfig):
        self.config = config
        self.out = Path(config.out)
        self.state = load_state(self.out, config.tensors)
        self.store = TensorStore(config.tensors, config.names(), retries=config.retries,
                                 retry_delay=config.retry_delay, mode=config.mode, worker=config.worker)
        self.run_info: RunInfo | None = None
        self.runs_index = RunsIndex(config.runs_index) if config.runs_index else None
        self.job = None
        if config.training_job:
            self.job = JobWatcher(config.training_job)
        # The embedding's memory of the last frames (layout, latents, neighbours), from their files.
        self.embedder = resume_embedder(self.out, self.state.frames, config.seed)
        self.n_points: int | None = len(self.embedder.layout) if self.state.frames else None
        self.input_shape: tuple | None = None  # of one probe image, from the first frame made by this process
        self.gif = GifWriter(self.out / layout.GIF, delay_ms=config.gif_delay_ms,
                             budget_bytes=int(config.gif_budget_mib * 1024 * 1024))
        if self.gif.frames > len(self.state.frames):
            # Killed between publishing the GIF and recording the frame: the state is the truth.
            self.gif.truncate(len(self.state.frames))
        self.video = VideoWriter(self.out, fps=1000.0 / config.gif_delay_ms, every=config.mp4_every,
                                 threads=config.threads)
        self.reserve = Reserve(self.out)
        # Whether this report has a state on disk: only then is a final status written (a bad
        # --tensors must not leave a folder behind that claims a report).
        self.started = (self.out / STATE_FILE).is_file()
        self.saved_at = time.monotonic()
        self._stop: int | None = None          # a stop signal that came during a frame
        self._publishing = False               # a frame is being written: finish it first
        self._inventory_at = 0.0                # when the tensor table was last listed (monotonic)
        self.image_shape = config.image_shape  # --image-shape, as parse_image_shape read it
        self._ending = False
        self.cutting = False                    # the final cut is being made: a stop signal ends it

    # -- status and saving ---------------------------------------------------------------------

    def set_status(self, status: str, since: float | None = None) -> None:
        if self.state.status != status:
            self.state.status = status
            self.state.status_since = now_iso(since)
            log.info("status: %s", status)

    def save(self) -> None:
        """state.json last: everything it names is already on disk. Then the site."""
        self.state.updated = now_iso()
        self.saved_at = time.monotonic()
        atomic.write_json(self.out / STATE_FILE, self.state.to_json())
        self.started = True
        write_site(self.out, self.state, self.run_info)
        if self.runs_index is not None:  # after state.json: the index is rebuilt from the folders
            self.runs_index.update(self.state.status)
        if not self._ending:
            self.reserve.keep()

    def end(self, status: str, code: int, reason: str | None = None) -> int:
        """Record the final ``status`` (and the one-line ``reason``), save, and return ``code``.

        Signals no longer interrupt; the space kept in reserve is given back first (a full disk
        still gets its "failed" page), and the folder keeps no reserve once the report has ended.
        """
        self._ending = True
        self.reserve.release()
        cutting = False
        if status == FINISHED:
            self.publish_outputs(complete=True)
            self.refresh_inventory()
            cutting = plan_final_cut(self)
        # The live outputs are complete: "finishing" while the final cut is made (reporter/final_cut.py).
        self.set_status(FINISHING if cutting else status)
        self.state.reason = reason
        try:
            self.save()
        except OSError as exc:
            # Nothing more can be done; the previous state.json and its frames are intact.
            log.error("could not record the status %r in %s: %s", status, self.out / STATE_FILE, exc)
            return code
        if status == FINISHED:
            self.video.discard_segments()  # work files out of the shared folder (reporter/outputs/video.py)
            if cutting:
                # Never raises: a failed or stopped cut keeps this finished report.
                stopped = run_final_cut(self)
                self.save()
                if stopped is not None:
                    return 128 + stopped
        if status != FINISHED:
            # The status is on the page first; then the MP4 and figure of the frames kept, if they can be.
            try:
                self.publish_outputs(complete=True)
                self.save()
            except Exception as exc:  # noqa: BLE001 - the report has already failed or stopped
                log.error("could not finish the MP4 and figure of the %d frames kept: %s: %s",
                          len(self.state.frames), type(exc).__name__, exc)
        return code

    # -- one frame -----------------------------------------------------------------------------

    def _check_same_inputs(self, probe: ProbeStep) -> None:
        """The probe images keep their shape from step to step (frames of one report compare)."""
        if probe.inputs is None or self.store.frames.independent:
            return
        shape = tuple(probe.inputs.shape[1:])
        if self.input_shape is not None and shape != self.input_shape:
            raise ReporterError(
                f"EVAL step {probe.step}: {self.store.roles.get('inputs') or 'the inputs'} are shaped "
                f"{shape} per point, at earlier steps {self.input_shape}: the probe set must stay the same; "
                "check --inputs-regex")
        self.input_shape = shape

    def add_frame(self, probe: ProbeStep) -> FrameRecord:
        """Make one EVAL step's frame, write its files, then publish it (GIF, state); return its record."""
        n = probe.latents.shape[0]
        independent = self.store.frames.independent  # TRAIN batches: other points at every step
        if self.n_points is not None and n != self.n_points and not independent:
            raise ReporterError(f"EVAL step {probe.step} holds {n} probe points, earlier frames {self.n_points}: "
                                "the probe set must stay the same; start a new report for a different run")
        self.n_points = n
        self._check_same_inputs(probe)
        frame = make_frame(probe, self.embedder, index=len(self.state.frames), run_info=self.run_info,
                           image_shape=self.image_shape, independent=independent)
        write_frame_files(self.out, frame, probe)
        self.state.trial = trial_facts(self.store.roles, self.store.frames, frame.pictures, probe.label_form)
        self.state.trial["seed"] = self.config.seed  # the embedding's: latentlapse compare shows it
        if self.gif.frames == 0 and self.run_info:
            self.gif.expected_frames = self.run_info.expected_frames
        self.gif.append(frame.picture)
        record = frame.record
        record.published = round(time.time(), 3)

        self.state.frames.append(record)
        self.state.gif = GifInfo(path=layout.GIF, frames=self.gif.frames, bytes=self.gif.bytes,
                                 scale=self.gif.scale, note=self.gif.note, kept=self.gif.kept,
                                 width=self.gif.size[0], height=self.gif.size[1])
        self.publish_outputs(complete=False)
        self.state.alerts = evaluate(self.state.frame_dicts(), latents_last=probe.latents)
        if not self.state.tensors_inventory or time.monotonic() - self._inventory_at >= HEARTBEAT_SECONDS:
            self.refresh_inventory()
        log.info("frame %d: EVAL step %d (global %d), embedded in %.2f s, 10-NN 2-D %s, GIF %.2f MB",
                 record.index, probe.step, probe.global_step, record.embed_seconds, record.knn_2d,
                 self.gif.bytes / 1e6)
        return record

    def refresh_inventory(self) -> None:
        """The store's tensor table for the site: listing it costs ~0.1 s a frame at 10,000 probe
        points, so a live report refreshes it at most every HEARTBEAT_SECONDS, and once at the end."""
        self.state.tensors_inventory = self.store.inventory()
        self._inventory_at = time.monotonic()

    def publish_outputs(self, complete: bool) -> None:
        """The MP4 and, once ``complete``, the paper figure (reporter/outputs/publish.py)."""
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
            with self._one_frame():
                self.add_frame(probe)
                self.save()
            made += 1
        return made

    @contextlib.contextmanager
    def _one_frame(self):
        """While a frame is written a stop signal waits for it: the frame is then complete, and published."""
        self._publishing = True
        try:
            yield
        finally:
            self._publishing = False
        if self._stop is not None:
            raise Stopped(self._stop)

    def _on_signal(self, signum, _frame) -> None:
        if self._ending and not self.cutting:
            return
        if self._publishing and self._stop is None:
            log.warning("%s: stopping after this frame", signal.Signals(signum).name)
            self._stop = signum
            return
        raise Stopped(signum)

    def run(self) -> int:
        """Follow (or read once) the store; return the exit code, having recorded the final status.

        Raises
        ------
        ReporterError
            Bad input (after recording "failed" with its message if the report had started);
            RunFailed (exit 3) when the report's own files cannot be written.
        """
        with _stop_signals(self._on_signal):
            try:
                return self._follow()
            except Stopped as stop:
                reason = (f"stopped by {stop} after {len(self.state.frames)} frames: "
                          "run the same command again to continue")
                log.warning("%s", reason)
                code = 128 + stop.signum
                return self.end(STOPPED, code, reason) if self.started else code
            except ReporterError as exc:
                self._failed(str(exc))
                raise
            except OSError as exc:
                reason = _cannot_write(exc, self.out, len(self.state.frames))
                if reason is None:
                    self._failed(internal_error_line(exc))
                    raise
                self._failed(reason, force=True)
                raise RunFailed(reason) from None
            except Exception as exc:
                self._failed(internal_error_line(exc))
                raise

    def _failed(self, reason: str, force: bool = False) -> None:
        if self.started or force:
            self.end(FAILED, EXIT_FAILED, reason)

    def _follow(self) -> int:
        config = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        # smdebug takes seconds to import on a busy 2-core machine (reporter/trial/store.py imports it
        # when a store is opened): pay it while the trainer starts, not on frame 0.
        import smdebug.trials  # noqa: F401
        self.store.open(timeout=config.wait_timeout if config.follow else 0, poll=config.poll_interval,
                        on_wait=lambda: log.info("waiting up to %.0f s for a trial at %s",
                                                 config.wait_timeout, config.tensors))
        while not self.store.resolve_names():
            time.sleep(config.poll_interval)
        for role, note in self.store.roles.notes.items():
            log.info("%s: %s", role, note)
        self.state.trial = {**trial_facts(self.store.roles, self.store.frames), **self.state.trial}
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
                    (self.run_info.progress if self.run_info else {}).get("updated"))
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
                problem = self.store.listing_problem()  # a store that cannot be listed does not grow either
                if problem is not None:
                    raise ReporterError(problem)  # as at the start (preflight): exit 1, the line on the site
                reason = (f"the tensor store has not grown for {quiet:.0f} s and training has not ended: "
                          "the trainer stopped")
                log.error("%s; %d frames kept in %s", reason, len(self.state.frames), self.out)
                return self.end(FAILED, EXIT_FAILED, reason)
            if quiet > config.stall_after and self.state.status != STALLED:
                self.set_status(STALLED, since=time.time() - quiet)
                self.save()
            elif time.monotonic() - self.saved_at >= HEARTBEAT_SECONDS:
                self.save()  # nothing new: say that this reporter is still here
            time.sleep(config.poll_interval)

    def ended(self) -> int:
        """Training ended and every step is done: finished, or failed if its SageMaker job failed."""
        if self.job is not None and self.job.status == "Failed":
            reason = f"training job {self.job.job_name} failed ({self.job.failure_reason or 'no reason given'})"
            log.error("%s; %d frames kept in %s", reason, len(self.state.frames), self.out)
            return self.end(FAILED, EXIT_FAILED, reason)
        log.info("finished: %d frames, GIF at %s", len(self.state.frames), self.out / layout.GIF)
        return self.end(FINISHED, EXIT_OK)


def internal_error_line(exc: Exception) -> str:
    return f"internal error: {type(exc).__name__}: {exc} (a bug: the traceback is in the reporter's log)"


def _cannot_write(exc: OSError, out: Path, frames: int) -> str | None:
    """The one line for an error writing the report's own files; None if ``exc`` is not that."""
    if is_disk_full(exc):
        # A full disk says so from inside write(), where the error names no file.
        what, fix = f"the disk of {out} is full ({exc.strerror})", "free some space"
    elif exc.filename is not None and str(exc.filename).startswith(str(out)):
        what, fix = f"cannot write {exc.filename} ({exc.strerror})", "make the folder writable"
    else:
        return None
    return f"{what}; {frames} frames kept: {fix}, then run the same command again to continue"


@contextlib.contextmanager
def _stop_signals(handler):
    """SIGTERM and SIGINT call ``handler`` inside the block (main thread only: Python's rule)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def run(config: ReporterConfig) -> int:
    """Keep the report in ``config.out`` up to date from ``config.tensors``; return the exit code.

    A run that ends failed or stopped without an exception says why in one line on stderr, the
    same line its site shows.
    """
    report = Report(config)
    code = report.run()
    if code != EXIT_OK and report.state.reason:
        word = "error: " if report.state.status == FAILED else ""
        print(f"reporter: {word}{report.state.reason}", file=sys.stderr)
    return code
