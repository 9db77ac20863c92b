"""Interop with the lab's tools: EmotivPRO's streams as they really are, LabRecorder's XDF,
BrainFlow's playback board, markers every recorder gets, and BIDS as mne-bids reads it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from support.lsl_outlets import start_outlet, stop_outlet

ROOT = Path(__file__).resolve().parents[1]
START_S = 60.0
SENSORS = (4, 4, 4, 3, 3, 2, 1, 0, 4, 4, 4, 4, 4, 4)


@contextmanager
def outlets(*specs: tuple[str, ...]) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [start_outlet(*spec) for spec in specs]
    try:
        yield procs
    finally:
        for p in procs:
            stop_outlet(p)


def _await(name: str) -> None:
    import pylsl

    assert pylsl.resolve_bypred(f"name='{name}'", 1, START_S), f"outlet {name} did not appear"


@pytest.mark.timeout(150)
def test_duygu_quality_reads_emotivpro_contact_quality_by_label(tmp_path: Path) -> None:
    from support.emotivpro import emotivpro

    levels_arg = ",".join(map(str, SENSORS))
    # EmotivPRO (simulated: `duygu simulate --emotivpro`) and another headset's EmotivPRO
    # on the network, whose quality stream must never be taken
    with emotivpro("--contact", levels_arg, "--battery", "80", "--overall", "75") as prefix, \
            emotivpro("--contact", ",".join(["0"] * 14), "--battery", "5", "--overall", "1",
                      prefix=f"Other{uuid.uuid4().hex[:6]}"):
        out = tmp_path / "q.json"
        done = subprocess.run([sys.executable, "-m", "app.cli", "quality", "--source", f"lsl:{prefix}-EEG",
                               "--seconds", "20", "--json", str(out)], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
    assert done.returncode == 0, done.stderr
    quality = json.loads(out.read_text())
    assert quality["source_of_quality"] == "emotivpro" and quality["stream"] == f"{prefix}-Contact-Quality"
    assert quality["battery_percent"] == 80 and quality["overall"] == 75
    levels = {ch: q["level"] for ch, q in quality["channels"].items()}
    names = {4: "good", 3: "fair", 2: "poor", 1: "bad", 0: "no data"}
    from acquisition.channels import EPOC_CHANNELS

    assert levels == {ch: names[v] for ch, v in zip(EPOC_CHANNELS, SENSORS, strict=True)}
    assert [quality["channels"][ch]["value"] for ch in EPOC_CHANNELS] == list(map(float, SENSORS))
    assert "battery 80%" in done.stdout and "T7   fair" in done.stdout


def test_quality_streams_are_matched_to_their_headset_and_eeg_quality_is_preferred() -> None:
    """EmotivPRO documents EEG-Quality as the better one: it comes first; a quality stream
    of another headset (other prefix) or of another machine is never taken."""
    from acquisition.sources.quality import match_quality_streams

    class Info:  # the part of pylsl.StreamInfo the matcher reads
        def __init__(self, name: str, type_: str, host: str) -> None:
            self._name, self._type, self._host = name, type_, host

        def name(self) -> str:
            return self._name

        def type(self) -> str:
            return self._type

        def hostname(self) -> str:
            return self._host

    infos = [Info("EmotivDataStream-Contact-Quality", "Contact-Quality", "lab1"),
             Info("EmotivDataStream-EEG-Quality", "EEG-Quality", "lab1"),
             Info("OtherHeadset-EEG-Quality", "EEG-Quality", "lab1"),
             Info("EmotivDataStream-EEG-Quality", "EEG-Quality", "lab2"),
             Info("EmotivDataStream-Motion", "Motion", "lab1")]
    found = match_quality_streams("EmotivDataStream-EEG", "lab1", infos)
    assert [(i.name(), i.hostname()) for i in found] == [("EmotivDataStream-EEG-Quality", "lab1"),
                                                         ("EmotivDataStream-Contact-Quality", "lab1")]
    assert match_quality_streams("Stranger-EEG", "lab1", infos) == []


@pytest.mark.timeout(60)
def test_a_broken_quality_stream_gives_way_to_the_headsets_other_one() -> None:
    """EmotivPRO's preferred EEG-Quality stream is broken (no sensor labels): the reader
    says so once and follows the same headset's Contact-Quality stream instead."""
    import socket
    import threading

    from acquisition.sources.quality import QualityReader

    prefix = f"Brk{uuid.uuid4().hex[:8]}"
    broken = start_outlet("generic", "--name", f"{prefix}-EEG-Quality", "--type", "EEG-Quality", "--rate", "2",
                          "--labels", "a,b,c,d")
    good = start_outlet("quality", "--name", f"{prefix}-Contact-Quality", "--type", "Contact-Quality",
                        "--sensors", ",".join(map(str, SENSORS)))
    errors: list[str] = []
    told = threading.Event()
    reader = QualityReader(f"{prefix}-EEG", socket.gethostname(), on_error=lambda m: (errors.append(m), told.set()))
    reader.search_every_s = 0.2
    try:
        reader.start()
        assert told.wait(30), "the broken stream was never reported"
        deadline = time.monotonic() + 30
        while (reading := reader.latest()) is None:
            assert time.monotonic() < deadline, f"no reading from the good stream (errors: {errors})"
            time.sleep(0.1)  # polling the reader's thread for its first reading
        assert reading.stream == f"{prefix}-Contact-Quality"
        assert "EEG-Quality" in errors[0] and "no EPOC sensor labels" in errors[0]
    finally:
        reader.stop()
        stop_outlet(broken)
        stop_outlet(good)


@pytest.mark.timeout(90)
def test_duygu_quality_computes_it_without_a_quality_stream(tmp_path: Path) -> None:
    out = tmp_path / "q.json"
    done = subprocess.run([sys.executable, "-m", "app.cli", "quality", "--source", "simulated:2", "--seconds", "3",
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    quality = json.loads(out.read_text())
    assert quality["source_of_quality"] == "computed" and quality["battery_percent"] is None
    assert set(quality["channels"]) == set(json.loads(out.read_text())["channels"])
    assert sum(q["level"] in ("good", "fair") for q in quality["channels"].values()) >= 12


@pytest.mark.timeout(120)
def test_a_recorder_attached_as_the_marker_stream_appears_gets_every_marker(tmp_path: Path) -> None:
    """The marker outlet appears before the session, with a stable source_id; the first
    marker waits for a consumer; every marker arrives, stamped as stored (within 1 ms)."""
    import pylsl
    from support.gui import write_protocol

    from acquisition.session.markers import stable_source_id
    from acquisition.store.sqlite import SessionStore

    name = f"duygu-markers-{uuid.uuid4().hex[:8]}"
    protocol = write_protocol(tmp_path / "stim", n_per_class=1, music_s=1.0, silence_s=0.3)
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "session", "run", "--protocol", str(protocol),
                             "--participant", "P01", "--labels", "auto", "--no-audio", "--markers", name,
                             "--markers-wait-s", "30", "--emotivpro-markers", "--store", str(tmp_path / "s.sqlite")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        found = pylsl.resolve_bypred(f"name='{name}'", 1, START_S)
        assert found, "the marker stream did not appear"
        info = found[0]
        assert info.source_id() == stable_source_id(name)
        inlet = pylsl.StreamInlet(info, processing_flags=pylsl.proc_clocksync)
        inlet.open_stream(timeout=30)
        codes_info = pylsl.resolve_bypred(f"name='{name}-emotivpro'", 1, START_S)
        assert codes_info and codes_info[0].channel_count() == 1 and codes_info[0].channel_format() == pylsl.cf_double64
        codes_inlet = pylsl.StreamInlet(codes_info[0])
        codes_inlet.open_stream(timeout=30)
        got: list[tuple[str, float]] = []
        codes: list[float] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            sample, t = inlet.pull_sample(timeout=0.5)
            if sample is not None:
                got.append((sample[0], t))
                if sample[0] == "session_end":
                    break
        while (c := codes_inlet.pull_sample(timeout=2.0))[0] is not None:
            codes.append(c[0][0])
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    session_id = int(out.split()[-1])
    with SessionStore(tmp_path / "s.sqlite", readonly=True) as store:
        stored = [(m.text, m.t) for m in store.markers(session_id) if not m.text.startswith("gap:")]
        table = store.session(session_id).protocol["emotivpro_marker_codes"]
    assert got[0][0] == "session_start"  # the first marker was not lost
    assert sorted(text for text, _ in got) == sorted(text for text, _ in stored)
    by_text: dict[str, list[float]] = {}
    for text, t in stored:
        by_text.setdefault(text, []).append(t)
    for text, t in got:
        assert min(abs(t - s) for s in by_text[text]) < 1e-3, (text, t, by_text[text])
    assert codes[0] == table["session_start"] and codes[-1] == table["session_end"]
    assert table["stim_on:happy-0"] in codes and table["label:sad"] in codes


@pytest.mark.timeout(120)
def test_a_brainflow_playback_board_with_parameters_records_at_128_hz(tmp_path: Path) -> None:
    """Any BrainFlow board with its BrainFlowInputParams: the playback board replays a
    recording in BrainFlow's file format (a tab-separated row per sample, what
    DataFilter.write_file writes), described by its master board (250 Hz synthetic)."""
    from acquisition.sources.brainflow import _brainflow

    board_shim = _brainflow()

    synthetic = int(board_shim.BoardIds.SYNTHETIC_BOARD.value)
    n_rows = board_shim.BoardShim.get_num_rows(synthetic)
    eeg = board_shim.BoardShim.get_eeg_channels(synthetic)
    ts_row = board_shim.BoardShim.get_timestamp_channel(synthetic)
    n = 250 * 8
    data = np.zeros((n_rows, n))
    for k, row in enumerate(eeg):
        data[row] = 10.0 * np.sin(2 * np.pi * (3 + k) * np.arange(n) / 250.0)
    data[eeg[0]] = np.arange(n, dtype=float)  # Fz, used as AF3: a ramp
    data[ts_row] = time.time() + np.arange(n) / 250.0
    playback = tmp_path / "playback.csv"
    np.savetxt(playback, data.T, delimiter="\t", fmt="%.6f")
    out = tmp_path / "rec.csv"
    spec = f"brainflow:PLAYBACK_FILE_BOARD?file={playback}&master_board=SYNTHETIC_BOARD"
    done = subprocess.run([sys.executable, "-m", "app.cli", "record", "--source", spec, "--seconds", "3",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    header = out.read_text().splitlines()[0].split(",")
    assert header[:3] == ["time", "AF3 (board Fz)", "F7 (board C3)"]  # the real names are kept
    rows = np.loadtxt(out, delimiter=",", skiprows=1)
    assert len(rows) == 3 * 128
    assert np.diff(rows[:, 0]) == pytest.approx(1 / 128, abs=1e-3)
    ramp = rows[20:, 1]  # 250 -> 128 Hz: the ramp advances 250/128 per output sample
    assert np.diff(ramp) == pytest.approx(250 / 128, abs=0.05)
    from acquisition.sources.replay import read_recording

    assert read_recording(out).data.shape == (3 * 128, 14)  # and it replays by those names


def test_brainflow_specs_name_boards_and_parameters() -> None:
    from acquisition.errors import SourceError
    from acquisition.sources.spec import open_source, parse_source_spec

    spec = parse_source_spec("brainflow:CYTON_BOARD?serial_port=/dev/ttyUSB0&timeout=15")
    assert spec.target == "CYTON_BOARD" and dict(spec.options) == {"serial_port": "/dev/ttyUSB0", "timeout": "15"}
    source = open_source(spec)
    assert source.board_id == 0 and source.params["serial_port"] == "/dev/ttyUSB0"  # type: ignore[attr-defined]
    assert open_source("brainflow:-1").board_id == -1  # type: ignore[attr-defined]
    with pytest.raises(SourceError, match="BoardIds name or id, got 'NO_SUCH_BOARD'"):
        open_source("brainflow:NO_SUCH_BOARD")
    with pytest.raises(SourceError, match="option must be one of serial_port"):
        parse_source_spec("brainflow:-1?colour=red")
    with pytest.raises(SourceError, match="timeout must be a whole number"):
        parse_source_spec("brainflow:-1?timeout=soon")
    with pytest.raises(SourceError, match="ip_port_aux must be a whole number"):
        parse_source_spec("brainflow:-1?ip_port_aux=aux")
    # every field BrainFlow has can be set, and nothing else
    from brainflow.board_shim import BrainFlowInputParams

    from acquisition.sources.spec import BRAINFLOW_PARAMS

    assert sorted(BRAINFLOW_PARAMS) == sorted(vars(BrainFlowInputParams()))
    aux = open_source("brainflow:PLAYBACK_FILE_BOARD?file=a.csv&file_aux=b.csv&ip_port_anc=7")
    assert aux.params["file_aux"] == "b.csv"  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def labrecorder_xdf(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """An XDF written by LabRecorder itself (its Python bindings): an EmotivPRO-layout EEG
    ramp from another process and a Markers stream with a three-trial session."""
    import labrecorder
    import pylsl

    folder = tmp_path_factory.mktemp("xdf")
    name = f"xdf-eeg-{uuid.uuid4().hex[:6]}"
    proc = start_outlet("emotiv", "--name", name, "--source-id", f"{name}-sid")
    try:
        _await(name)
        eeg_info = pylsl.resolve_bypred(f"name='{name}'", 1, START_S)[0]
        marker_info = pylsl.StreamInfo(f"{name}-markers", "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                                       f"{name}-markers-sid")
        outlet = pylsl.StreamOutlet(marker_info)
        found = pylsl.resolve_bypred(f"name='{name}-markers'", 1, START_S)[0]
        path = folder / "session.xdf"
        recording = labrecorder.Recording(str(path), [eeg_info, found])
        assert outlet.wait_for_consumers(30), "LabRecorder did not subscribe to the markers"
        time.sleep(1.0)  # EEG before the first trial (LabRecorder records in real time)
        words = []
        for k, label in enumerate(("happy", "sad", "tense")):
            for text in (f"stim_on:s{k}", None, f"stim_off:s{k}", f"label:{label}"):
                if text is None:
                    time.sleep(0.6)  # the stimulus plays
                    continue
                t = pylsl.local_clock()
                outlet.push_sample([text], t)
                words.append((text, t))
        time.sleep(1.0)
        recording.stop()
    finally:
        stop_outlet(proc)
    return {"path": path, "eeg": name, "markers": words}


def test_an_xdf_from_labrecorder_replays_sample_exact(labrecorder_xdf: dict[str, object]) -> None:
    import pyxdf

    from acquisition.sources.base import SourceStatus
    from acquisition.sources.replay import ReplaySource, read_recording

    path = labrecorder_xdf["path"]
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    eeg = next(s for s in streams if s["info"]["name"][0] == labrecorder_xdf["eeg"])
    raw = np.asarray(eeg["time_series"], dtype=np.float64)
    ramp = raw[:, 3]  # AF3 after Timestamp, Counter, Interpolate
    assert len(ramp) > 3 * 128 and np.all(np.diff(ramp) == 1)
    rec = read_recording(path)
    assert rec.gaps == () and rec.data.shape == (len(raw), 14)
    np.testing.assert_array_equal(rec.data, raw[:, 3:17])  # the 14 sensors, exactly
    source = ReplaySource(path, speed=50)
    with source:
        assert source.wait_for_status(SourceStatus.STOPPED, 60)
    np.testing.assert_array_equal(source.buffer.since(0).data, raw[:, 3:17])
    assert source.gaps == []
    named = read_recording(path, stream=labrecorder_xdf["eeg"])  # ?stream=NAME
    np.testing.assert_array_equal(named.data, rec.data)
    from acquisition.sources.replay import RecordingError

    with pytest.raises(RecordingError, match="no numeric stream named 'nope'"):
        read_recording(path, stream="nope")


def test_an_xdf_from_labrecorder_imports_as_a_session(labrecorder_xdf: dict[str, object], tmp_path: Path) -> None:
    from acquisition.store.sqlite import SessionStore

    store = tmp_path / "s.sqlite"
    out = tmp_path / "import.json"
    done = subprocess.run([sys.executable, "-m", "app.cli", "sessions", "import", str(labrecorder_xdf["path"]),
                           "--participant", "P04", "--store", str(store), "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    assert summary["trials"] == 3 and summary["labelled"] == 3 and summary["gaps"] == 0
    with SessionStore(store, readonly=True) as s:
        sid = summary["session_id"]
        info = s.session(sid)
        assert info.status == "completed" and info.participant == "P04" and info.n_samples == summary["samples"]
        trials = s.trials(sid)
        assert [(t.stimulus_id, t.label) for t in trials] == [("s0", "happy"), ("s1", "sad"), ("s2", "tense")]
        _data, times, idx = s.eeg(sid)
        words = dict(labrecorder_xdf["markers"])  # type: ignore[arg-type]
        for t in trials:  # each trial starts at the sample of its marker
            assert t.onset_t == pytest.approx(words[f"stim_on:{t.stimulus_id}"], abs=1e-6)
            k = int(np.searchsorted(idx, t.onset_index))
            assert times[k] >= t.onset_t - 1e-9 and times[k] - t.onset_t < 1 / 128 + 1e-6
        assert len(s.labelled_trials(session_ids=[sid])) == 3


def test_an_xdf_import_maps_another_vocabulary_and_refuses_bad_input(
        labrecorder_xdf: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from acquisition.store.sqlite import SessionStore
    from app.cli import main

    xdf = str(labrecorder_xdf["path"])
    store = tmp_path / "s.sqlite"
    mapping = tmp_path / "vocab.toml"
    mapping.write_text("[markers]\nstim_on = '^stim_on:s(\\d)$'\nstim_off = '^stim_off:s(\\d)$'\n"
                       "[labels]\nhappy = \"relaxing\"\n", encoding="utf-8")
    assert main(["sessions", "import", xdf, "--participant", "P05", "--store", str(store),
                 "--mapping", str(mapping)]) == 0
    with SessionStore(store, readonly=True) as s:
        (info,) = s.sessions()
        assert [(t.stimulus_id, t.label) for t in s.trials(info.id)] == [("0", "relaxing"), ("1", "sad"),
                                                                        ("2", "tense")]
    capsys.readouterr()

    garbage = tmp_path / "garbage.xdf"
    garbage.write_bytes(b"not an xdf file at all\n" * 10)
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[markers\n", encoding="utf-8")
    extra = tmp_path / "extra.toml"
    extra.write_text("[triggers]\nx = 1\n", encoding="utf-8")
    no_group = tmp_path / "nogroup.toml"
    no_group.write_text("[markers]\nstim_on = '^go$'\n", encoding="utf-8")
    bad_regex = tmp_path / "regex.toml"
    bad_regex.write_text("[markers]\nlabel = '^(unclosed$'\n", encoding="utf-8")
    cases = [
        ([xdf, "--participant", "Jane Doe"], "participant id"),
        ([str(tmp_path / "missing.xdf"), "--participant", "P06"], "missing.xdf"),
        ([str(garbage), "--participant", "P06"], "garbage.xdf"),
        ([xdf, "--participant", "P06", "--markers", "nope"], "no marker stream named 'nope'"),
        ([xdf, "--participant", "P06", "--stream", "nope"], "no numeric stream named 'nope'"),
        ([xdf, "--participant", "P06", "--mapping", str(bad_toml)], "cannot read it as TOML"),
        ([xdf, "--participant", "P06", "--mapping", str(extra)], "unknown table(s) triggers"),
        ([xdf, "--participant", "P06", "--mapping", str(no_group)], "must have exactly one (group)"),
        ([xdf, "--participant", "P06", "--mapping", str(bad_regex)], "is not a regular expression"),
    ]
    for argv, message in cases:
        assert main(["sessions", "import", *argv, "--store", str(store)]) == 1, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, (argv, err)
        assert "Jane" not in err  # a refused name is never repeated
    with SessionStore(store, readonly=True) as s:
        assert len(s.sessions()) == 1  # nothing half-imported


@pytest.mark.timeout(180)
def test_a_session_over_emotivpro_stores_each_trials_contact_quality(tmp_path: Path) -> None:
    """EmotivPRO simulated in another process; O1 bad, O2 no data: every trial
    stores its worst contact, the CLI says so, and training data counts those trials."""
    from support.emotivpro import emotivpro
    from support.gui import write_protocol

    from acquisition.store.sqlite import SessionStore
    from models.datasets import from_trials

    protocol = write_protocol(tmp_path / "stim", n_per_class=1, music_s=1.0, silence_s=0.3)
    store_path = tmp_path / "s.sqlite"
    with emotivpro("--contact", ",".join(map(str, SENSORS)), "--battery", "80") as prefix:
        done = subprocess.run([sys.executable, "-m", "app.cli", "session", "run", "--protocol", str(protocol),
                               "--participant", "P01", "--source", f"lsl:{prefix}-EEG", "--labels", "auto",
                               "--no-audio", "--markers-wait-s", "0", "--store", str(store_path)],
                              cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stderr
    live = [line for line in done.stderr.splitlines() if line.startswith("bad contact during ")]
    assert sorted(live) == sorted(f"bad contact during {k}-0: O1, O2" for k in ("happy", "sad", "relaxing", "tense"))
    with SessionStore(store_path, readonly=True) as store:
        sid = int(done.stdout.split()[-1])
        trials = store.trials(sid)
        assert len(trials) == 4
        for tr in trials:
            assert tr.contact is not None and tr.contact["source_of_quality"] == "emotivpro"
            assert tr.bad_contact == ["O1", "O2"] and tr.contact["battery_percent"] == 80
            assert tr.contact["channels"]["T7"]["level"] == "fair"
        labelled = store.labelled_trials(session_ids=[sid])
    assert all(t.bad_contact == ("O1", "O2") for t in labelled)
    rng = np.random.default_rng(0)  # EEG-like data long enough for windows; the contact stays the trials'
    longer = [dataclasses.replace(t, data=rng.normal(0, 10, (640, 14)), pieces=()) for t in labelled]
    assert from_trials(longer, "default").meta["trials_with_bad_contact"] == 4
