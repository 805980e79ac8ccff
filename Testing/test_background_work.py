"""Background machinery of the Slicer glue and the app, with no Slicer needed: the single model worker thread
(pumping events while it waits) and the adaptation process polled for JSON progress lines."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from waveseg.adaptation.background import AdaptationProcess, annotated_slices
from WaveSegSlicerLib.executor import BusyError, ModelExecutor
from waveseg.io import read_image
from waveseg.sample_data import SAMPLE_BRAIN_MASK

# Only against hanging forever: every wait below ends on its own condition, and reaching this is a failure.
HANG_GUARD_S = 900.0


def test_executor_runs_on_one_worker_thread_and_pumps_while_waiting():
    pumps, pumped_thrice = [], threading.Event()

    def pump():
        pumps.append(1)
        if len(pumps) >= 3:
            pumped_thrice.set()

    executor = ModelExecutor(pump=pump)
    threads = {executor.run(lambda: threading.get_ident()) for _ in range(3)}
    assert len(threads) == 1 and threading.get_ident() not in threads  # one long-lived worker, not the caller
    pumps.clear()  # count only the pumps of the next call
    pumped_thrice.clear()
    # the call cannot end before the caller has pumped the UI three times (no sleep that a slow machine outlasts)
    assert executor.run(lambda: pumped_thrice.wait(HANG_GUARD_S) and "done") == "done"
    assert len(pumps) >= 3  # the UI was pumped while the call ran
    with pytest.raises(ZeroDivisionError):
        executor.run(lambda: 1 / 0)
    assert not executor.busy  # an error does not leave the executor stuck
    executor.shutdown()


def test_executor_refuses_a_second_call_while_busy():
    refused, second_call_tried = [], threading.Event()

    def pump():  # a click handled while the model works would call run() again from the event loop
        if not second_call_tried.is_set():
            try:
                executor.run(lambda: None)
            except BusyError as exc:
                refused.append(str(exc))
            second_call_tried.set()

    executor = ModelExecutor(pump=pump)
    assert executor.run(second_call_tried.wait, HANG_GUARD_S)  # busy until the second call was tried, however slow the machine
    assert refused and "still working" in refused[0]
    executor.shutdown()


@pytest.fixture(scope="module")
def annotated(sample_volume):
    mask = read_image(SAMPLE_BRAIN_MASK).array > 0
    return annotated_slices(sample_volume.array, mask)


def test_annotated_slices_picks_slices_with_the_segment(annotated, sample_volume):
    images, masks, indices = annotated
    assert len(indices) == len(images) == len(masks) >= 10
    assert all(m.sum() >= 20 and m.shape == sample_volume.array.shape[1:] for m in masks)
    with pytest.raises(ValueError, match="differ in shape"):
        annotated_slices(sample_volume.array, np.zeros((2, 2, 2), bool))


def _poll_until(process: AdaptationProcess, stop, timeout: float = HANG_GUARD_S) -> list[dict]:
    """Poll as the UI's timer does until ``stop(events)``; the pause only paces the loop, and the
    deadline is a guard against hanging, not an expected outcome."""
    events, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        events += process.poll()
        if stop(events):
            return events
        time.sleep(0.1)
    process.cancel()
    raise AssertionError(f"no conclusion within {timeout} s; got {events[-3:]}")


def test_adaptation_process_reports_progress_and_writes_a_profile(annotated, tmp_path):
    images, masks, _ = annotated
    process = AdaptationProcess(images[:3], masks[:3], name="site-brain", model="wave-gms", steps=3, time_budget_s=math.inf,
                                env={"WAVESEG_PROFILES_DIR": str(tmp_path)})
    events = _poll_until(process, lambda e: process.result is not None)
    assert {e["event"] for e in events[:-1]} == {"progress"} and events[-1]["event"] == "done", events
    done = events[-1]  # a profile exists exactly when the do-no-harm gate kept it
    assert (tmp_path / "site-brain.safetensors").exists() == done["kept"] and done["message"].startswith("Adaptation")
    assert process.wait(timeout=HANG_GUARD_S) == 0
    _poll_until(process, lambda e: process.finished)
    assert not Path(process.data_path).exists()  # the temporary training data are removed


def test_cancelled_adaptation_writes_no_profile(annotated, tmp_path):
    images, masks, _ = annotated
    process = AdaptationProcess(images[:3], masks[:3], name="never", model="wave-gms", steps=100_000, time_budget_s=math.inf,
                                env={"WAVESEG_PROFILES_DIR": str(tmp_path)})
    _poll_until(process, lambda e: any(m["event"] == "progress" for m in e))
    process.cancel()
    process.wait(timeout=HANG_GUARD_S)
    events = _poll_until(process, lambda e: process.result is not None)
    assert process.result["event"] == "error"
    assert not any(e["event"] == "done" for e in events)
    assert not list(tmp_path.iterdir())  # no profile, no partial file
    _poll_until(process, lambda e: process.finished)
    assert not Path(process.data_path).exists()
