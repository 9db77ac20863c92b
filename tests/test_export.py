"""Exports: BIDS-EEG checked by the official validator and read back by MNE; CSV; bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import mne
import numpy as np
import pytest
from edfio import read_edf

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.errors import StoreError
from acquisition.store.export import MAX_SPAN_UV, continuous, export_bids, export_csv
from acquisition.store.sqlite import SessionStore
from tests.support.store_data import fill_session, run_bids_validator

GAP = (500, 40)  # 40 samples missing from index 500 on
GLITCH = 900  # AF3 jumps to 5e5 µV here


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    s = SessionStore(tmp_path / "store.sqlite")
    s.add_participant("P01", age=27, sex="F")
    return s


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.mark.timeout(60)
def test_bids_export_validates_and_reads_back_in_mne(store: SessionStore, tmp_path: Path) -> None:
    filled = fill_session(store, participant="P01", seconds=12.3, gap=GAP, glitch_at=GLITCH)
    out = export_bids(store, filled.session_id, tmp_path / "bids")

    report = run_bids_validator(out)
    assert report["issues"]["errors"] == [], json.dumps(report["issues"]["errors"], indent=1)[:3000]

    eeg_dir = out / "sub-P01" / "eeg"
    edf_path = eeg_dir / "sub-P01_task-listening_eeg.edf"
    raw = mne.io.read_raw_edf(edf_path, preload=True, verbose="error")
    assert raw.ch_names == list(EPOC_CHANNELS)
    assert raw.info["sfreq"] == SFREQ_HZ
    n_stored_span = filled.indices[-1] + 1
    assert raw.n_times == int(np.ceil(n_stored_span / SFREQ_HZ) * SFREQ_HZ)  # padded to whole seconds

    # sample values within EDF quantisation, computed from each channel's header ranges
    edf = read_edf(edf_path)
    signals = [s for s in edf.signals]
    uv = raw.get_data() * 1e6
    pos = filled.indices  # the gap is both an index and a time jump: grid position == index
    clipped = pos == GLITCH
    for c, sig in enumerate(signals):
        (pmin, pmax), (dmin, dmax) = sig.physical_range, sig.digital_range
        quantum = (pmax - pmin) / (dmax - dmin)
        assert pmax - pmin <= MAX_SPAN_UV + 1
        err = np.abs(uv[c, pos[~clipped]] - filled.data[~clipped, c])
        assert err.max() <= quantum / 2 + 1e-6, f"{sig.label}: error {err.max()} > quantum/2 {quantum / 2}"
        # the gap holds a flat fill at the bottom of the range, never data
        np.testing.assert_allclose(uv[c, GAP[0] : GAP[0] + GAP[1]], pmin, atol=quantum)
    assert uv[0, GLITCH] == pytest.approx(signals[0].physical_range[1], abs=1.0)  # clipped to the top

    # annotations: the trials, the gap, the clipped glitch and the end padding
    ann = raw.annotations
    stim = [(a["onset"], a["duration"], a["description"]) for a in ann if a["description"].startswith("stimulus")]
    assert stim == [
        (pytest.approx(1.0, abs=1e-3), pytest.approx(3.0, abs=1e-3), "stimulus:stim1 label:happy"),
        (pytest.approx(6.0, abs=1e-3), pytest.approx(3.0, abs=1e-3), "stimulus:stim2 label:sad"),
    ]
    skips = [(a["onset"], a["duration"]) for a in ann if a["description"] == "BAD_ACQ_SKIP"]
    assert skips[0] == (pytest.approx(GAP[0] / SFREQ_HZ, abs=1e-3), pytest.approx(GAP[1] / SFREQ_HZ, abs=1e-3))
    assert skips[1][0] == pytest.approx(n_stored_span / SFREQ_HZ, abs=1e-3)  # padding
    clip = [a["onset"] for a in ann if a["description"] == "BAD_clipped"]
    assert clip == [pytest.approx(GLITCH / SFREQ_HZ, abs=1e-3)]

    # events.tsv agrees with the store
    events = _tsv(eeg_dir / "sub-P01_task-listening_events.tsv")
    trials = [e for e in events if e["trial_type"] == "stimulus"]
    assert [(float(e["onset"]), float(e["duration"]), e["label"], e["stimulus"], e["intended"]) for e in trials] == [
        (1.0, 3.0, "happy", "stim1", "happy"), (6.0, 3.0, "sad", "stim2", "sad")
    ]
    assert [int(e["sample"]) for e in trials] == [128, 768]
    assert sum(e["trial_type"] == "marker" for e in events) == 4
    onsets = [float(e["onset"]) for e in events]
    assert onsets == sorted(onsets)

    channels = _tsv(eeg_dir / "sub-P01_task-listening_channels.tsv")
    assert [c["name"] for c in channels] == list(EPOC_CHANNELS)
    assert {c["type"] for c in channels} == {"EEG"} and {c["units"] for c in channels} == {"uV"}
    sidecar = json.loads((eeg_dir / "sub-P01_task-listening_eeg.json").read_text())
    assert sidecar["SamplingFrequency"] == SFREQ_HZ and sidecar["TaskName"] == "listening"
    assert sidecar["Manufacturer"] == "Emotiv" and sidecar["PowerLineFrequency"] == 50.0
    for key in ("EEGReference", "SoftwareFilters", "EEGChannelCount", "RecordingDuration"):
        assert key in sidecar
    participants = _tsv(out / "participants.tsv")
    assert participants == [{"participant_id": "sub-P01", "age": "27", "sex": "F", "duygu_id": "P01"}]
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "raw" and description["BIDSVersion"]
    assert "BAD_ACQ_SKIP" in (out / "README").read_text()


def test_continuous_layout_of_sped_up_and_gappy_timestamps() -> None:
    n = 300
    idx = np.arange(n)
    times = 50.0 + idx / (SFREQ_HZ * 10)  # a source running at 10x: no gap
    data = np.ones((n, 14))
    lay = continuous(data, times, idx, SFREQ_HZ)
    assert lay.gaps == [] and len(lay.data) == n
    keep = (idx < 100) | (idx >= 130)  # a device loss: times jump, indices do not
    lay = continuous(data[keep], times[keep], np.arange(keep.sum()), SFREQ_HZ)
    assert lay.gaps == [(100, 30)] and len(lay.data) == n and not lay.present[100:130].any()
    assert lay.time_to_seconds(float(times[150])) == pytest.approx(150 / SFREQ_HZ)
    with_nan = data.copy()
    with_nan[[7, 8], 3] = np.nan  # non-finite samples count as not recorded
    lay = continuous(with_nan, times, idx, SFREQ_HZ)
    assert lay.gaps == [(7, 2)] and np.isfinite(lay.data).all()


def test_csv_export_is_exact(store: SessionStore, tmp_path: Path) -> None:
    filled = fill_session(store, participant="P01", seconds=3, gap=(100, 10), trials=((0.5, 2.0, "tense"),))
    out = export_csv(store, filled.session_id, tmp_path / "csv")
    assert sorted(p.name for p in out.iterdir()) == ["eeg.csv", "markers.csv", "session.json", "trials.csv"]
    with (out / "eeg.csv").open() as f:
        assert f.readline().strip() == "time,sample_index," + ",".join(EPOC_CHANNELS)
    table = np.loadtxt(out / "eeg.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 1], filled.indices)
    np.testing.assert_allclose(table[:, 0], filled.timestamps, atol=1e-6)
    np.testing.assert_array_equal(table[:, 2:].astype(np.float32), filled.data.astype(np.float32))
    with (out / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["stimulus_id"], r["label"], r["onset_index"], r["offset_index"]) for r in rows] == [
        ("stim1", "tense", "64", "256")
    ]
    with (out / "markers.csv").open() as f:
        assert [r["text"] for r in csv.DictReader(f)] == ["stim_on:stim1", "stim_off:stim1"]
    meta = json.loads((out / "session.json").read_text())
    assert meta["participant"] == "P01" and meta["channels"] == list(EPOC_CHANNELS)


def test_export_bad_input(store: SessionStore, tmp_path: Path) -> None:
    filled = fill_session(store, seconds=2)
    with pytest.raises(StoreError, match="unknown session id 77"):
        export_bids(store, 77, tmp_path / "a")
    with pytest.raises(StoreError, match="unknown session id 77"):
        export_csv(store, 77, tmp_path / "a")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(StoreError, match=r"export directory .*busy is not empty"):
        export_bids(store, filled.session_id, busy)
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]  # untouched
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(StoreError, match="exists and is not a directory"):
        export_csv(store, filled.session_id, a_file)
    empty = store.start_session("P02", {}, "simulated", {})
    with pytest.raises(StoreError, match=f"session {empty} has no EEG samples"):
        export_bids(store, empty, tmp_path / "b")
    assert not (tmp_path / "b").exists()
    (tmp_path / "empty_ok").mkdir()
    assert export_csv(store, filled.session_id, tmp_path / "empty_ok") == tmp_path / "empty_ok"
