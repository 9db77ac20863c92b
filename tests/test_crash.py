"""Must hold: a session killed with SIGKILL mid-trial keeps everything it committed."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from acquisition.base import local_clock
from acquisition.channels import SFREQ_HZ
from acquisition.export import export_bids
from acquisition.simulated import EpocSimulator
from acquisition.store import SessionStore
from tests.support.store_data import child, query_readonly, run_bids_validator, wait_until


@pytest.mark.timeout(90)
def test_sigkill_mid_trial_keeps_committed_data(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    seed = 7
    proc = subprocess.Popen(child(["crash", str(path), str(seed)]), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("session "), "child did not start a session"

        def mid_trial() -> bool:
            # >= 2.5 s of EEG committed, 2 finished trials, and a stimulus on with no trial yet
            n = query_readonly(path, "SELECT COALESCE(SUM(n_samples), 0) FROM eeg_chunks")
            trials = query_readonly(path, "SELECT COUNT(*) FROM trials")
            ons = query_readonly(path, "SELECT COUNT(*) FROM markers WHERE text LIKE 'stim_on:%'")
            return bool(n and trials and ons) and n[0][0] >= 2.5 * SFREQ_HZ and trials[0][0] >= 2 \
                and ons[0][0] > trials[0][0]

        wait_until(mid_trial, 30.0, "the child to commit 2.5 s of EEG and be inside a trial")
        # kill at a random phase of the 0.25 s commit cycle, not right after a commit
        t_target = local_clock() + np.random.default_rng().uniform(0.0, 0.5)
        wait_until(lambda: local_clock() >= t_target, 2.0, "the kill time", poll_s=0.001)
        os.kill(proc.pid, signal.SIGKILL)
        t_kill = local_clock()
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    store = SessionStore(path)  # the owner is gone: the session becomes 'interrupted'
    (info,) = store.sessions()
    assert info.status == "interrupted"
    assert info.end is not None

    data, times, idx = store.eeg(info.id)
    # every committed chunk intact: contiguous indices from 0, samples equal to the simulator's
    assert len(data) >= 2.5 * SFREQ_HZ
    np.testing.assert_array_equal(idx, np.arange(len(idx)))
    expected = EpocSimulator(seed).generate(len(data)).astype(np.float32)
    np.testing.assert_array_equal(data, expected)
    assert np.all(np.diff(times) > 0)
    # at most 1 s of EEG lost: the last committed sample is less than 1 s before the kill
    lost_s = t_kill - times[-1]
    print(f"EEG lost at SIGKILL: {lost_s * 1000:.0f} ms")
    assert lost_s <= 1.0, f"{lost_s:.3f} s of EEG lost"

    trials = store.trials(info.id)
    assert len(trials) >= 2 and all(t.label == "happy" for t in trials)
    # a trial row may be committed just before the last EEG of its stimulus (< 1 s)
    assert all(t.offset_index is not None and t.offset_index <= idx[-1] + 1 + SFREQ_HZ for t in trials)
    complete = [t for t in store.labelled_trials() if t.n_missing == 0]
    assert len(complete) >= len(trials) - 1
    assert all(len(t.data) >= 64 for t in complete)  # each stimulus lasted >= 0.5 s

    out = export_bids(store, info.id, tmp_path / "bids")
    store.close()
    report = run_bids_validator(out)
    assert report["issues"]["errors"] == [], report["issues"]["errors"]
    events = (out / "sub-crash01" / "eeg" / "sub-crash01_task-listening_events.tsv").read_text().splitlines()
    assert sum(line.split("\t")[2] == "stimulus" for line in events[1:]) == len(trials)
    assert "interrupted" in (out / "README").read_text()
