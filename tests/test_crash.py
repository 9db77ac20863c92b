"""Must hold: a session killed with SIGKILL mid-trial keeps everything it committed.

How the child writes (tests/support/store_data.py, acquisition/store/sqlite.py): markers, trial
rows and labels are committed at once, each in its own transaction, from the child's main
thread, each carrying ``source.buffer.total`` read just before its time ``t``; the EEG is
committed in batches by the StoreRecorder thread every 0.25 s. So a marker or trial may
name samples whose batch was not yet committed when the kill came, and "at most 1 s of
EEG lost" is checked in the child's own terms: every sample that was in its buffer at a
marker or trial event 1 s or more before the kill is committed. The EEG timestamps are
not used for this: a child slowed by a busy machine produces its samples late, and
samples never produced are not lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from acquisition.channels import SFREQ_HZ
from acquisition.sources.base import local_clock
from acquisition.sources.simulated import EpocSimulator
from acquisition.store.export import export_bids
from acquisition.store.sqlite import SessionStore
from tests.support.store_data import child, query_readonly, run_bids_validator, wait_until


@pytest.mark.timeout(180)
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

        wait_until(mid_trial, 60.0, "the child to commit 2.5 s of EEG and be inside a trial")
        # kill at a random phase of the 0.25 s commit cycle, not right after a commit
        t_target = local_clock() + np.random.default_rng().uniform(0.0, 0.5)
        wait_until(lambda: local_clock() >= t_target, 2.0, "the kill time", poll_s=0.001)
        t_kill = local_clock()  # read first: the kill comes later, so no event counts as older than it is
        os.kill(proc.pid, signal.SIGKILL)
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
    committed = len(idx)
    print(f"EEG committed up to {(t_kill - times[-1]) * 1000:.0f} ms of sample time before the kill")

    trials = sorted(store.trials(info.id), key=lambda t: t.id)
    markers = store.markers(info.id)
    # (time, buffer total then) of every marker and trial write, each committed at once
    writes: list[tuple[float, int | None]] = [(m.t, m.sample_index) for m in markers if m.sample_index is not None]
    writes += [(t.onset_t, t.onset_index) for t in trials] + [(t.offset_t, t.offset_index) for t in trials]
    assert all(i is not None for _, i in writes)
    # at most 1 s of EEG lost: what the child's buffer held 1 s before the kill is committed
    t_old = t_kill - 1.0
    old = [i for t, i in writes if t <= t_old and i is not None]
    assert old, "no event 1 s before the kill: the check would be empty"
    assert max(old) <= committed, f"{max(old) - committed} samples the child had 1 s before the kill are lost"
    # and from the other side: even the newest event names at most 1 s of samples beyond
    # what was committed (the samples it names were in the buffer, so they count as lost)
    newest = max(i for _, i in writes if i is not None)
    assert newest - committed <= SFREQ_HZ, f"{newest - committed} samples of the child's buffer are lost"

    assert len(trials) >= 2 and all(t.label == "happy" for t in trials[:-1])
    assert trials[-1].label in ("happy", None)  # the kill may fall between a trial and its label
    assert all(t.offset_index is not None and t.onset_index is not None for t in trials)
    # every labelled trial that ended 1 s before the kill has all its EEG; each lasted >= 0.5 s
    by_id = {t.trial_id: t for t in store.labelled_trials()}
    ended = [t for t in trials if t.offset_t <= t_old and t.label is not None]
    assert ended
    for t in ended:
        got = by_id[f"{info.id}:{t.id}"]
        assert t.offset_index is not None and t.onset_index is not None
        assert got.n_missing == 0 and len(got.data) == t.offset_index - t.onset_index >= 64

    out = export_bids(store, info.id, tmp_path / "bids")
    store.close()
    report = run_bids_validator(out)
    assert report["issues"]["errors"] == [], report["issues"]["errors"]
    events = (out / "sub-crash01" / "eeg" / "sub-crash01_task-listening_events.tsv").read_text().splitlines()
    assert sum(line.split("\t")[2].startswith("stimulus:") for line in events[1:]) == len(trials)
    assert "interrupted" in (out / "README").read_text()
