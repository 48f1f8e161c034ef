"""Timing shared by benchmarks/hook_throughput.py, layer_times.py and torch_peer.py (which runs under its own
Python with torch: this module needs only the standard library)."""

from __future__ import annotations

import time


def median_call_ms(call, repeats: int = 20, groups: int = 3) -> float:
    """Median over ``groups`` of the mean CPU ms of ``repeats`` calls, after three untimed calls."""
    for _ in range(3):
        call()
    means = []
    for _ in range(groups):
        start = time.process_time()
        for _ in range(repeats):
            call()
        means.append(1000 * (time.process_time() - start) / repeats)
    return sorted(means)[groups // 2]


def timed_block(runner, steps: int) -> dict:
    """``steps`` of ``runner.train_step()``, with ``runner.evaluate()`` after every ``runner.eval_every``-th.

    ``runner.step`` counts the steps done so far (``train_step`` advances it). Returns wall and
    process CPU seconds of the block, the wall seconds of the train steps and of the EVAL passes,
    the number of EVAL passes and the last training loss.
    """
    train_seconds = eval_seconds = 0.0
    evals, loss = 0, float("nan")
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = runner.train_step()
        t1 = time.perf_counter()
        train_seconds += t1 - t0
        if runner.step % runner.eval_every == 0:
            runner.evaluate()
            eval_seconds += time.perf_counter() - t1
            evals += 1
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start,
            "train_seconds": train_seconds, "eval_seconds": eval_seconds, "evals": evals, "loss": loss}
