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
from app.cli import main
from tests.support.store_data import fill_session, run_bids_validator

ROOT = Path(__file__).resolve().parents[1]

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

    # annotations in the EDF: the trials, the markers, the gap, the clipped glitch, the end padding
    ann = raw.annotations
    stim = [(a["onset"], a["duration"], a["description"]) for a in ann if a["description"].startswith("stimulus")]
    assert stim == [
        (pytest.approx(1.0, abs=1e-3), pytest.approx(3.0, abs=1e-3), "stimulus:stim1"),
        (pytest.approx(6.0, abs=1e-3), pytest.approx(3.0, abs=1e-3), "stimulus:stim2"),
    ]
    assert [a["description"] for a in ann if a["description"].startswith("stim_")] == [
        "stim_on:stim1", "stim_off:stim1", "stim_on:stim2", "stim_off:stim2"]
    skips = [(a["onset"], a["duration"]) for a in ann if a["description"] == "BAD_ACQ_SKIP"]
    assert skips[0] == (pytest.approx(GAP[0] / SFREQ_HZ, abs=1e-3), pytest.approx(GAP[1] / SFREQ_HZ, abs=1e-3))
    assert skips[1][0] == pytest.approx(n_stored_span / SFREQ_HZ, abs=1e-3)  # padding
    clip = [a["onset"] for a in ann if a["description"] == "BAD_clipped"]
    assert clip == [pytest.approx(GLITCH / SFREQ_HZ, abs=1e-3)]

    # events.tsv: the marker texts as trial_type, the code table as value, the trials with their labels
    events = _tsv(eeg_dir / "sub-P01_task-listening_events.tsv")
    trials = [e for e in events if e["trial_type"].startswith("stimulus:")]
    assert [(float(e["onset"]), float(e["duration"]), e["label"], e["stimulus"], e["intended"], e["status"])
            for e in trials] == [(1.0, 3.0, "happy", "stim1", "happy", "complete"),
                                 (6.0, 3.0, "sad", "stim2", "sad", "complete")]
    assert [int(e["sample"]) for e in trials] == [128, 768]
    markers = {e["trial_type"]: e["value"] for e in events if e["trial_type"].startswith("stim_")}
    assert markers == {"stim_on:stim1": "1001", "stim_off:stim1": "2001", "stim_on:stim2": "1002",
                       "stim_off:stim2": "2002"}
    onsets = [float(e["onset"]) for e in events]
    assert onsets == sorted(onsets)
    levels = json.loads((eeg_dir / "sub-P01_task-listening_events.json").read_text())["value"]["Levels"]
    assert levels["1001"] == "stim_on:stim1" and levels["5002"] == "stimulus:stim2"

    channels = _tsv(eeg_dir / "sub-P01_task-listening_channels.tsv")
    assert [c["name"] for c in channels] == list(EPOC_CHANNELS)
    assert {c["type"] for c in channels} == {"EEG"} and {c["units"] for c in channels} == {"µV"}
    electrodes = _tsv(eeg_dir / "sub-P01_space-CapTrak_electrodes.tsv")
    assert [e["name"] for e in electrodes] == list(EPOC_CHANNELS)
    sidecar = json.loads((eeg_dir / "sub-P01_task-listening_eeg.json").read_text())
    assert sidecar["SamplingFrequency"] == SFREQ_HZ and sidecar["TaskName"] == "listening"
    assert sidecar["Manufacturer"] == "Emotiv" and sidecar["PowerLineFrequency"] == 50.0
    for key in ("EEGReference", "SoftwareFilters", "EEGChannelCount", "RecordingDuration"):
        assert key in sidecar
    participants = _tsv(out / "participants.tsv")
    assert participants == [{"participant_id": "sub-P01", "age": "27", "sex": "F", "duygu_id": "P01"}]
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "raw" and description["BIDSVersion"]
    assert len(description["Authors"]) == 2 and "settings" in description["Authors"][0]  # the placeholder
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
    assert [(r["status"], r["contact"]) for r in rows] == [("complete", "")]
    with (out / "markers.csv").open() as f:
        assert [(r["text"], r["code"]) for r in csv.DictReader(f)] == [("stim_on:stim1", "1001"),
                                                                      ("stim_off:stim1", "2001")]
    meta = json.loads((out / "session.json").read_text())
    assert meta["participant"] == "P01" and meta["channels"] == list(EPOC_CHANNELS)


def test_exports_name_board_channels_and_say_which_trials_had_bad_contact(store: SessionStore,
                                                                          tmp_path: Path) -> None:
    """A BrainFlow board's own electrode names and a trial's bad contact reach both exports."""
    n = 3 * int(SFREQ_HZ)
    sid = store.start_session("P01", {"name": "p", "stimuli": [{"id": "a"}, {"id": "b"}], "labels": ["happy"]},
                              "brainflow:SYNTHETIC_BOARD",
                              {"kind": "brainflow", "name": "Synthetic", "channel_map": {"AF3": "Fz", "F7": "F7"}})
    store.append_eeg(sid, np.full((n, 14), 10.0) + np.arange(n)[:, None] % 7, 500 + np.arange(n) / SFREQ_HZ, 0)
    bad = {"source_of_quality": "emotivpro", "battery_percent": 60.0, "overall": 40.0,
           "channels": {}, "bad_channels": ["O1", "T7"]}
    store.add_trial(sid, "a", "happy", 500.5, 501.0, 64, 128, contact=bad)
    store.add_trial(sid, "b", "happy", 501.5, 502.0, 192, 256, status="interrupted")
    store.finish_session(sid)

    csv_out = export_csv(store, sid, tmp_path / "csv")
    with (csv_out / "eeg.csv").open() as f:
        assert f.readline().strip().split(",")[2:4] == ["AF3 (board Fz)", "F7"]
    with (csv_out / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["status"], r["contact"], r["bad_contact"]) for r in rows] == [
        ("complete", "bad: O1 T7", "O1 T7"), ("interrupted", "", "")]
    assert json.loads((csv_out / "session.json").read_text())["channel_map"]["AF3"] == "Fz"

    bids = export_bids(store, sid, tmp_path / "bids")
    assert run_bids_validator(bids)["issues"]["errors"] == []
    eeg_dir = bids / "sub-P01" / "eeg"
    events = [e for e in _tsv(eeg_dir / "sub-P01_task-listening_events.tsv") if e["trial_type"].startswith("stimulus")]
    assert [(e["status"], e["contact"]) for e in events] == [("complete", "bad: O1 T7"), ("interrupted", "n/a")]
    channels = {c["name"]: c["description"] for c in _tsv(eeg_dir / "sub-P01_task-listening_channels.tsv")}
    assert channels["AF3"] == "board channel Fz (used for AF3)" and channels["F7"] == "EEG electrode"
    electrodes = {e["name"]: e["x"] for e in _tsv(eeg_dir / "sub-P01_space-CapTrak_electrodes.tsv")}
    assert electrodes["AF3"] == "n/a" and float(electrodes["F7"]) < 0  # Fz does not sit at AF3's place
    sidecar = json.loads((eeg_dir / "sub-P01_task-listening_eeg.json").read_text())
    assert sidecar["Manufacturer"] == "BrainFlow" and sidecar["HardwareFilters"] == "n/a"


@pytest.mark.timeout(60)
def test_gui_export_job_takes_authors_and_mains_frequency_from_the_settings(store: SessionStore, tmp_path: Path) -> None:
    import os

    from app import jobs

    filled = fill_session(store, participant="P01", seconds=3, trials=((0.5, 2.0, "tense"),))
    store.close()
    config = Path(os.environ["DUYGU_CONFIG_DIR"])  # the test's own (conftest)
    config.mkdir(parents=True, exist_ok=True)
    (config / "settings.toml").write_text('notch_hz = 60.0\nauthors = ["Ada Lovelace", "Alan Turing"]\n')
    out = Path(jobs.export_session(str(tmp_path / "store.sqlite"), filled.session_id, "bids", str(tmp_path / "bids")))
    assert json.loads((out / "dataset_description.json").read_text())["Authors"] == ["Ada Lovelace", "Alan Turing"]
    sidecar = json.loads((out / "sub-P01" / "eeg" / "sub-P01_task-listening_eeg.json").read_text())
    assert sidecar["PowerLineFrequency"] == 60.0


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


@pytest.mark.timeout(120)
def test_an_export_that_fails_midway_leaves_no_folder(store: SessionStore, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that fills at the last file of an export: a one-line error naming the folder
    and the reason, no half-written export folder and no hidden partial one."""
    import errno

    import acquisition.store.export as export

    filled = fill_session(store, seconds=2)

    def disk_full(path: Path, _obj: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(export, "_json", disk_full)
    for fmt, run in (("CSV", export_csv), ("BIDS", export_bids)):
        out = tmp_path / f"out-{fmt}"
        with pytest.raises(StoreError, match=f"cannot write {fmt} export to .*out-{fmt}: No space left on device"):
            run(store, filled.session_id, out)
        assert not out.exists()
        assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two real sessions recorded by ``duygu session run`` (simulated EPOC+, no audio)."""
    import subprocess
    import sys

    from support.gui import write_protocol

    root = tmp_path_factory.mktemp("recorded")
    protocol = write_protocol(root / "stim", n_per_class=1, music_s=1.0, silence_s=0.3)
    store_path = root / "s.sqlite"
    ids = []
    for participant in ("P01", "P02"):
        done = subprocess.run([sys.executable, "-m", "app.cli", "session", "run", "--protocol", str(protocol),
                               "--participant", participant, "--labels", "auto", "--no-audio",
                               "--markers-wait-s", "0", "--store", str(store_path)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        ids.append(int(done.stdout.split()[-1]))
    return {"store": store_path, "ids": ids, "root": root}


@pytest.mark.timeout(180)
def test_a_recorded_session_reads_back_through_mne_bids(recorded: dict[str, object]) -> None:
    """0 validator errors and 0 warnings; read_raw_bids gives the label and stimulus
    annotations, the montage, and stimulus onsets within 0.5 ms of the stored ones."""
    import mne_bids

    store_path, ids, root = recorded["store"], recorded["ids"], recorded["root"]
    assert isinstance(store_path, Path) and isinstance(ids, list) and isinstance(root, Path)
    out = root / "bids-one"
    assert main(["sessions", "export", str(ids[0]), "--out", str(out), "--store", str(store_path)]) == 0
    report = run_bids_validator(out)
    assert report["issues"]["errors"] == [] and report["issues"]["warnings"] == [], report["issues"]

    raw = mne_bids.read_raw_bids(mne_bids.BIDSPath(subject="P01", task="listening", datatype="eeg", root=out),
                                 verbose="error")
    with SessionStore(store_path, readonly=True) as store:
        trials = store.trials(ids[0])
        _, times, _ = store.eeg(ids[0])
    t0 = float(times[0])
    ann = {(a["description"], round(float(a["onset"]), 6)) for a in raw.annotations}
    descriptions = {d for d, _ in ann}
    assert {f"label:{tr.label}" for tr in trials} <= descriptions and len(trials) == 4
    for tr in trials:
        for word in (f"stimulus:{tr.stimulus_id}", f"stim_on:{tr.stimulus_id}"):
            onsets = [o for d, o in ann if d == word]
            assert len(onsets) == 1 and abs(onsets[0] - (tr.onset_t - t0)) < 0.5e-3, (word, onsets, tr.onset_t - t0)
    montage = raw.get_montage()
    assert montage is not None and montage.ch_names == list(EPOC_CHANNELS)
    positions = montage.get_positions()["ch_pos"]
    assert positions["AF3"][0] < 0 < positions["AF4"][0]  # left is left


@pytest.mark.timeout(180)
def test_several_sessions_export_as_one_dataset_with_session_levels(recorded: dict[str, object]) -> None:
    store_path, ids, root = recorded["store"], recorded["ids"], recorded["root"]
    assert isinstance(store_path, Path) and isinstance(ids, list) and isinstance(root, Path)
    out = root / "bids-two"
    assert main(["sessions", "export", ",".join(map(str, ids)), "--out", str(out), "--store", str(store_path)]) == 0
    report = run_bids_validator(out)
    assert report["issues"]["errors"] == [] and report["issues"]["warnings"] == [], report["issues"]
    for participant, sid in zip(("P01", "P02"), ids, strict=True):  # each participant's first visit: ses-1
        eeg = out / f"sub-{participant}" / "ses-1" / "eeg" / f"sub-{participant}_ses-1_task-listening_eeg.edf"
        assert eeg.exists()
        scans = _tsv(out / f"sub-{participant}" / "ses-1" / f"sub-{participant}_ses-1_scans.tsv")
        assert [(r["filename"], r["duygu_session_id"]) for r in scans] == [
            (f"eeg/{eeg.name}", str(sid))]
    assert [r["participant_id"] for r in _tsv(out / "participants.tsv")] == ["sub-P01", "sub-P02"]
    by_participant = root / "bids-p02"
    assert main(["sessions", "export", "--participant", "P02", "--out", str(by_participant),
                 "--store", str(store_path)]) == 0
    assert [p.name for p in by_participant.iterdir() if p.name.startswith("sub-")] == ["sub-P02"]
    assert (by_participant / "sub-P02" / "eeg").is_dir()  # one session: no ses- level


@pytest.mark.timeout(120)
def test_multi_session_export_bad_input(recorded: dict[str, object], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    store_path, ids = recorded["store"], recorded["ids"]
    assert isinstance(store_path, Path) and isinstance(ids, list)
    cases = [
        ([f"{ids[0]},{ids[0]}"], f"session {ids[0]} is listed twice"),
        ([f"{ids[0]},99"], "unknown session id 99"),
        (["1,x"], "session ids are integers separated by commas"),
        ([str(ids[0]), "--participant", "P01"], "not both and not neither"),
        ([], "not both and not neither"),
        (["--participant", "P77"], "participant 'P77' has no sessions"),
        ([",".join(map(str, ids)), "--format", "csv"], "a CSV export holds one session; 2 given"),
    ]
    for k, (argv, message) in enumerate(cases):
        out = tmp_path / f"out{k}"
        try:
            code = main(["sessions", "export", *argv, "--out", str(out), "--store", str(store_path)])
        except SystemExit as exc:  # argparse rejects the ids
            code = int(exc.code or 0)
        err = capsys.readouterr().err
        assert code != 0 and message in err, (argv, err)
        assert not out.exists()


def test_participants_sharing_a_bids_label_are_refused(store: SessionStore, tmp_path: Path) -> None:
    store.add_participant("p01")
    a = fill_session(store, participant="P01", seconds=2, trials=())
    b = fill_session(store, participant="p01", seconds=2, trials=())
    with pytest.raises(StoreError, match="'P01' and 'p01' would share the BIDS subject label"):
        export_bids(store, [a.session_id, b.session_id], tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_an_emotivpro_stream_simulated_by_duygu_is_exported_as_simulated() -> None:
    from types import SimpleNamespace

    from acquisition.store.export import _device_text

    simulated = SimpleNamespace(source="lsl:Emo-EEG", device={
        "kind": "lsl", "notes": ["type 'EEG'", "manufacturer 'Emotiv (simulated by Duygu)'"]})
    real = SimpleNamespace(source="lsl:EmotivDataStream-EEG", device={"kind": "lsl", "notes": ["type 'EEG'"]})
    assert "simulated by Duygu" in _device_text(simulated)[1]  # type: ignore[arg-type]
    assert _device_text(real) == ("Emotiv", "EPOC+")  # type: ignore[arg-type]
