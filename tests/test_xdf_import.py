"""`duygu sessions import FILE.xdf` keeps the holes of the EEG stream: gap rows where the
timestamps jump, sample indices as a live recording of the same file would store them,
and every trial and marker at the sample of its time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support.xdf import NumericStream, StringStream, write_xdf

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ

T0 = 1000.0
N_GRID = 1600  # samples on the recording's 128 Hz grid, holes included
HOLES = ((500, 40), (1100, 200))  # (first missing grid position, length): 312 ms, then 1.56 s
#: (stimulus, onset and offset as grid positions, label): before the holes, across the
#: short one, between them, across the long one
TRIALS = (("s0", 128.3, 300.6, "happy"), ("s1", 400.5, 700.2, "sad"), ("s2", 800.4, 1000.1, "tense"),
          ("s3", 1050.7, 1400.2, "happy"))


def _t(grid: float) -> float:
    return T0 + grid / SFREQ_HZ


@pytest.fixture
def gapped_xdf(tmp_path: Path) -> Path:
    """An EEG ramp whose every value is the sample's position on the 128 Hz grid, with the
    two holes of ``HOLES``, and a Markers stream with the trials of ``TRIALS`` in Duygu's
    words (and a note that falls inside the first hole)."""
    keep = np.ones(N_GRID, dtype=bool)
    for start, n in HOLES:
        keep[start:start + n] = False
    grid = np.flatnonzero(keep)
    eeg = NumericStream("gapped-EEG", "EEG", EPOC_CHANNELS, SFREQ_HZ, T0 + grid / SFREQ_HZ,
                        np.repeat(grid[:, None].astype(np.float64), len(EPOC_CHANNELS), axis=1))
    events = [(_t(520.5), "note:in the hole")]
    for stim, on, off, label in TRIALS:
        events += [(_t(on), f"stim_on:{stim}"), (_t(off), f"stim_off:{stim}"), (_t(off + 30), f"label:{label}")]
    markers = StringStream("gapped-markers", sorted(events))
    return write_xdf(tmp_path / "gapped.xdf", [eeg, markers])


@pytest.mark.timeout(60)
def test_an_xdf_with_gaps_imports_them_as_gaps_with_trials_on_their_samples(
        gapped_xdf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from acquisition.sources.base import SourceStatus
    from acquisition.sources.replay import ReplaySource, read_recording
    from acquisition.store.sqlite import SessionStore
    from app.cli import main

    assert read_recording(gapped_xdf).gaps == ((499, 40), (1059, 200))  # the reader sees both holes
    store_path, out = tmp_path / "s.sqlite", tmp_path / "import.json"
    assert main(["sessions", "import", str(gapped_xdf), "--participant", "P07", "--store", str(store_path),
                 "--json", str(out)]) == 0
    assert "2 gap(s)" in capsys.readouterr().out
    summary = json.loads(out.read_text())
    n_stored = N_GRID - sum(n for _, n in HOLES)
    assert (summary["samples"], summary["gaps"], summary["trials"], summary["labelled"], summary["interrupted"]) \
        == (n_stored, 2, 4, 3, 1)
    sid = summary["session_id"]
    with SessionStore(store_path, readonly=True) as s:
        data, times, idx = s.eeg(sid)
        gaps = s.gaps(sid)
        trials = s.trials(sid)
        markers = s.markers(sid)
        labelled = {t.stimulus_id: t for t in s.labelled_trials(session_ids=[sid])}

    # the samples numbered as they came (as the live recorder numbers a replay of this file),
    # each hole a gap row after the last sample before it
    np.testing.assert_array_equal(idx, np.arange(n_stored))
    assert [(g.after_index, g.n_missing, g.reason) for g in gaps] == [
        (499, 40, "gap in the recording"), (1059, 200, "gap in the recording")]
    for g, (start, n) in zip(gaps, HOLES, strict=True):
        assert g.start_t == pytest.approx(_t(start - 1), abs=1e-9) and g.end_t == pytest.approx(_t(start + n), abs=1e-9)
    # the ramp: every stored value is its sample's grid position = stored index + the
    # samples the store's gaps say are missing before it; its timestamp is that position's
    missing_before = sum(np.where(idx > g.after_index, g.n_missing, 0) for g in gaps)
    grid = idx + missing_before
    np.testing.assert_array_equal(data, np.repeat(grid[:, None].astype(np.float64), 14, axis=1))
    np.testing.assert_allclose(times, T0 + grid / SFREQ_HZ, rtol=0, atol=1e-9)

    # each trial starts and ends at the first sample at or after its marker's time
    by_id = {t.stimulus_id: t for t in trials}
    for stim, on, off, _label in TRIALS:
        trial = by_id[stim]
        assert trial.onset_t == pytest.approx(_t(on), abs=1e-9) and trial.offset_t == pytest.approx(_t(off), abs=1e-9)
        for index, t in ((trial.onset_index, trial.onset_t), (trial.offset_index, trial.offset_t)):
            assert index is not None and 0 <= times[index] - t < 1 / SFREQ_HZ
    # labels as Duygu's words say; the trial holding the 1.56 s hole is kept as interrupted
    # and never labelled, as the live runner keeps a trial with a gap of a second or more
    assert [(t.stimulus_id, t.status, t.label) for t in trials] == [
        ("s0", "complete", "happy"), ("s1", "complete", "sad"), ("s2", "complete", "tense"),
        ("s3", "interrupted", None)]
    # the 312 ms hole leaves s1 complete, its EEG in two pieces that training windows
    # never cross, and its missing samples counted once
    assert sorted(labelled) == ["s0", "s1", "s2"]
    s1 = labelled["s1"]
    assert s1.n_missing == 40 and s1.contiguous_pieces() == ((0, 99), (99, 99 + 161))
    assert labelled["s0"].n_missing == 0 and labelled["s0"].contiguous_pieces() == ((0, len(labelled["s0"].data)),)
    # every marker at its sample (one in a hole: the first sample after it), and a gap
    # marker at each gap
    for m in markers:
        if not m.text.startswith(("gap:", "note:")):
            assert m.sample_index is not None and 0 <= times[m.sample_index] - m.t < 1 / SFREQ_HZ, m
    note = next(m for m in markers if m.text == "note:in the hole")
    assert note.sample_index == 500 and times[500] == pytest.approx(_t(540), abs=1e-9)
    assert [(m.sample_index, m.text) for m in markers if m.text.startswith("gap:")] == [
        (499, "gap:40 samples missing (gap in the recording)"),
        (1059, "gap:200 samples missing (gap in the recording)")]
    assert any(m.text == "trial_interrupted:s3" for m in markers)

    # replaying the stored session gives the file's holes back, each counted once
    assert read_recording(f"{store_path}#{sid}").gaps == ((499, 40), (1059, 200))
    # and a live replay of the file delivers the same samples and the same gaps
    source = ReplaySource(gapped_xdf, speed=50)
    with source:
        assert source.wait_for_status(SourceStatus.STOPPED, 30)
    np.testing.assert_array_equal(source.buffer.since(0).data, data)
    assert [(g.after_index, g.n_missing, g.reason) for g in source.gaps] == [
        (g.after_index, g.n_missing, g.reason) for g in gaps]
