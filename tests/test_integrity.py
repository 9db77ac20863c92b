"""What Duygu records stays true and safe: nothing is overwritten, gaps stay gaps up to
training and live prediction, clocks are checked, ids are codes, background errors are
told, and the store is upgraded and copied safely."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support.cli import cli_error, digest
from support.lsl_outlets import start_outlet, stop_outlet
from support.store_data import fill_session

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.errors import SourceError, StoreError
from acquisition.ringbuffer import Gap
from acquisition.sources.base import BaseSource, DeviceInfo, ReadResult, SourceStatus, local_clock
from acquisition.store.sqlite import (
    SessionStore,
    bids_label,
    contiguous_pieces,
    validate_participant,
)
from app.cli import main
from tests.support.sources import ramp_recording, write_csv

ROOT = Path(__file__).resolve().parents[1]


# -- nothing is overwritten ---------------------------------------------------------------
@pytest.mark.timeout(60)
def test_no_output_replaces_a_session_store(lab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = digest(lab)
    for argv in (["record", "--source", "simulated", "--seconds", "1", "--out", str(lab)],
                 ["record", "--source", "simulated", "--seconds", "1", "--out", str(lab), "--force"],
                 ["sessions", "list", "--store", str(lab), "--json", str(lab)],
                 ["sessions", "list", "--store", str(lab), "--json", str(lab), "--force"],
                 ["train", "--store", str(lab), "--classifier", "lda", "--out", str(lab), "--force"],
                 ["sessions", "backup", "--store", str(lab), "--out", str(lab)]):
        err = cli_error(capsys, argv)
        assert "is a session store; Duygu never overwrites one" in err, (argv, err)
    assert digest(lab) == before and not lab.with_name("lab.sqlite.partial").exists()


@pytest.mark.timeout(60)
def test_existing_files_need_force_and_two_outputs_never_share_a_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = tmp_path / "rec.csv"
    err = cli_error(capsys, ["record", "--source", "simulated", "--seconds", "1", "--out", str(rec),
                          "--json", str(rec)])
    assert "--out and --json name the same file" in err or "--json and --out name the same file" in err
    assert not rec.exists()
    rec.write_text("earlier recording\n")
    assert "exists; choose another path or add --force" in cli_error(
        capsys, ["record", "--source", "simulated:1", "--seconds", "0.5", "--out", str(rec)])
    assert rec.read_text() == "earlier recording\n"
    assert main(["record", "--source", "simulated:1", "--seconds", "0.5", "--out", str(rec), "--force"]) == 0
    assert rec.read_text().startswith("time,AF3") and not list(tmp_path.glob("*.partial*"))
    assert "is a directory" in cli_error(capsys, ["record", "--source", "simulated", "--seconds", "1",
                                              "--out", str(tmp_path / "x.csv"), "--json", str(tmp_path)])


@pytest.mark.timeout(60)
def test_a_killed_recording_keeps_a_partial_file_and_a_finished_one_its_name(tmp_path: Path) -> None:
    out = tmp_path / "rec.csv"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "record", "--source", "simulated", "--seconds", "60",
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = tmp_path / "rec.csv.partial"
    deadline = time.monotonic() + 40
    while not (partial.exists() and partial.stat().st_size > 2000) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling the file a child process writes
    proc.kill()
    proc.wait(20)
    assert partial.exists() and not out.exists()  # what was recorded is kept, and plainly unfinished


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_end_a_recording_like_ctrl_c(tmp_path: Path, signum: int) -> None:
    store = tmp_path / "s.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "record", "--source", "simulated", "--seconds", "60",
                             "--store", str(store), "--participant", "P02"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 40
    n = 0
    while time.monotonic() < deadline:
        time.sleep(0.2)  # polling the store a child process writes
        try:
            with SessionStore(store, readonly=True) as s:
                sessions = s.sessions()
                n = sessions[0].n_samples if sessions else 0
        except StoreError:
            continue  # not created yet, or still being set up by the child
        if n > 256:
            break
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err  # fewer samples than asked: not a success
    assert "recording interrupted" in err and "Traceback" not in err
    with SessionStore(store, readonly=True) as s:
        info = s.sessions()[0]
        assert info.status == "interrupted" and info.n_samples >= n  # the tail was flushed


@pytest.mark.timeout(90)
def test_sigterm_ends_a_session_as_interrupted_with_its_end_marker(tmp_path: Path) -> None:
    from support.gui import write_protocol

    protocol = write_protocol(tmp_path / "stim", n_per_class=1, music_s=3.0, silence_s=1.0)
    store = tmp_path / "s.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "session", "run", "--protocol", str(protocol),
                             "--participant", "P03", "--labels", "auto", "--no-audio", "--no-markers",
                             "--store", str(store)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    line = ""
    while "trial 2/4" not in line:
        line = proc.stderr.readline()
        assert line, "the session ended early"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Traceback" not in err
    session_id = int(out.split()[-1])
    with SessionStore(store, readonly=True) as s:
        assert s.session(session_id).status == "interrupted"
        texts = [m.text for m in s.markers(session_id)]
        assert texts[-1] == "session_end" and "session_start" in texts


def test_record_exits_non_zero_when_fewer_samples_arrive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_csv(tmp_path / "short.csv", list(EPOC_CHANNELS), ramp_recording(64).tolist())
    assert main(["record", "--source", f"replay:{csv}@20", "--seconds", "5", "--out", str(tmp_path / "o.csv")]) == 1
    captured = capsys.readouterr()
    assert "only 64 of 640 samples arrived (source stopped" in captured.err
    assert (tmp_path / "o.csv").read_text().count("\n") == 65  # the samples that came are kept
    # into a store: the samples are kept and the recording is stored as failed, never completed
    store = tmp_path / "r.sqlite"
    assert main(["record", "--source", f"replay:{csv}@20", "--seconds", "5", "--store", str(store),
                 "--participant", "P01"]) == 1
    with SessionStore(store, readonly=True) as s:
        (only,) = s.sessions()
        assert only.status == "failed" and only.n_samples == 64


# -- backups and checkpoints --------------------------------------------------------------
@pytest.mark.timeout(60)
def test_backup_is_one_self_contained_file_even_while_a_session_records(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "lab.sqlite"
    writer = SessionStore(path)
    filled = fill_session(writer, seconds=3)
    running = writer.start_session("P09", {"name": "live"}, "simulated", {})  # a session still recording
    writer.append_eeg(running, np.zeros((64, 14)), 2000 + np.arange(64) / 128, 0)
    backup = tmp_path / "copies" / "lab-backup.sqlite"
    assert main(["sessions", "backup", "--store", str(path), "--out", str(backup)]) == 0
    assert "backed up 2 session(s)" in capsys.readouterr().out
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    os.replace(backup, moved / "b.sqlite")  # alone: no -wal or -shm beside it
    assert not list(moved.glob("*-wal"))
    with SessionStore(moved / "b.sqlite", readonly=True) as copy:
        assert copy.session(filled.session_id).n_samples == writer.session(filled.session_id).n_samples
        assert copy.session(running).n_samples == 64
    assert "is a session store; Duygu never overwrites one" in cli_error(
        capsys, ["sessions", "backup", "--store", str(path), "--out", str(moved / "b.sqlite")])
    (moved / "note.txt").write_text("x")
    assert "exists; a backup is always written to a new file" in cli_error(
        capsys, ["sessions", "backup", "--store", str(path), "--out", str(moved / "note.txt"), "--force"])
    writer.close()


def test_a_finished_session_is_in_the_main_file(tmp_path: Path) -> None:
    """After a session ends the WAL is checkpointed: a plain copy of the .sqlite file
    (without its -wal) holds the session -- what a user copying the store expects."""
    import shutil

    path = tmp_path / "lab.sqlite"
    store = SessionStore(path)
    filled = fill_session(store, seconds=4)
    store.finish_session(filled.session_id, "completed")
    (tmp_path / "copy").mkdir()
    shutil.copy2(path, tmp_path / "copy" / "lab.sqlite")  # the main file only
    with SessionStore(tmp_path / "copy" / "lab.sqlite", readonly=True) as copy:
        assert copy.session(filled.session_id).n_samples == 4 * 128
        assert copy.session(filled.session_id).status == "completed"
    store.close()


def test_a_schema_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript((Path(__file__).parent / "support" / "store_v1.sql").read_text())
    conn.execute("INSERT INTO schema_version(version) VALUES (1)")
    conn.execute("INSERT INTO participants(id, created) VALUES ('P-01', 'x')")
    conn.execute("INSERT INTO sessions(participant, protocol, protocol_name, source, device, sfreq_hz, channels, "
                 "start, updated, status, owner_pid, owner_host, owner_marker) VALUES ('P-01', '{}', 'old', "
                 "'simulated', '{}', 128, '[]', 'x', 'x', 'completed', 1, 'h', '')")
    conn.execute("INSERT INTO trials(session_id, stimulus_id, intended, onset_t, offset_t, label) "
                 "VALUES (1, 's1', 'sad', 1.0, 2.0, 'sad')")
    conn.close()
    with SessionStore(path, readonly=True) as ro:  # read-only: read as it is
        assert ro.schema_version == 1 and ro.trials(1)[0].status == "complete" and ro.gaps(1) == []
    with SessionStore(path) as store:
        assert store.schema_version == 2
        assert [(t.stimulus_id, t.label, t.status) for t in store.trials(1)] == [("s1", "sad", "complete")]
        assert store.session(1).participant == "P-01"  # old ids stay readable
        sid = store.start_session("P02", {"name": "new"}, "simulated", {})
        store.finish_session(sid, "failed")  # a status schema 1 could not hold
        assert store.session(sid).status == "failed"


# -- participant ids -----------------------------------------------------------------------
def test_participant_ids_are_codes_and_a_refused_one_is_never_repeated(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for good in ("P01", "S12", "sub7"):
        assert validate_participant(good) == good
    for bad in ("JaneDoe", "Jane Doe", "P-01", "01", "P", "P01x", "", "P" * 40 + "1"):
        with pytest.raises(StoreError, match="ids are codes, not names") as exc:
            validate_participant(bad)
        if len(bad) > 3:
            assert bad not in str(exc.value)
    assert validate_participant("P-01", r"[A-Z]-[0-9]+") == "P-01"  # a lab's own rule
    store = tmp_path / "s.sqlite"
    log = tmp_path / "log.txt"
    proc = subprocess.run([sys.executable, "-m", "app.cli", "-v", "record", "--source", "simulated", "--seconds",
                           "1", "--store", str(store), "--participant", "JaneDoe"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    log.write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 1 and "ids are codes, not names" in proc.stderr
    assert "JaneDoe" not in log.read_text()
    assert not store.exists()
    # selecting sessions by a name is refused the same way, never echoed ("has no sessions")
    with SessionStore(store) as filled:
        fill_session(filled, seconds=2)
    for argv in (["sessions", "export", "--participant", "JaneDoe", "--format", "csv", "--out",
                  str(tmp_path / "x"), "--store", str(store)],
                 ["sessions", "list", "--participants", "P01", "JaneDoe", "--store", str(store)],
                 ["evaluate", "--store", str(store), "--participants", "P01,JaneDoe"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "ids are codes, not names" in err and "JaneDoe" not in err, argv


def test_numbers_too_large_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s.sqlite"
    with SessionStore(store) as s:
        fill_session(s, seconds=2)
    for argv in (["record", "--source", "simulated", "--seconds", "1e308", "--out", str(tmp_path / "r.csv")],
                 ["sessions", "export", "99999999999999999999999", "--store", str(store), "--out",
                  str(tmp_path / "e")]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("duygu: error: a number given is too large") and "\n" not in err, err
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "e").exists()


def test_bids_labels_of_different_ids_never_collide() -> None:
    assert bids_label("P01") == "P01"
    assert bids_label("P-01") != bids_label("P01") and bids_label("P-01").isalnum()
    assert bids_label("P_01") != bids_label("P-01")
    assert bids_label("P-01") == bids_label("P-01")  # stable


# -- gaps stay gaps ----------------------------------------------------------------------
def test_a_trial_with_a_6_s_hole_yields_no_window_across_it(tmp_path: Path) -> None:
    from models.datasets import from_trials
    from processing.pipeline import window_samples

    with SessionStore(tmp_path / "s.sqlite") as store:
        # 30 s of EEG whose samples 1280..2047 (6 s) never arrived: the store's indices jump
        filled = fill_session(store, seconds=40, gap=(1280, 768), trials=((0.0, 30.0, "happy"), (30.0, 40.0, "sad")))
        # and a recorded device gap: samples after index 3200 lost, the buffer indices run on
        store.add_gap(filled.session_id, 3200, 1000 + 3200 / 128, 1000 + 3300 / 128, 100, "device dropped samples")
        trial, other = store.labelled_trials()
    assert trial.n_missing == 768 + 100
    pieces = trial.contiguous_pieces()
    assert pieces == ((0, 1280), (1280, 3200 - 768 + 1), (3200 - 768 + 1, 30 * 128 - 768))
    assert other.n_missing == 0 and len(other.contiguous_pieces()) == 1
    ds = from_trials([trial, other], "default")
    win, step = window_samples("default", SFREQ_HZ)
    starts = []
    for a, b in pieces:  # every window lies inside one piece
        starts += [a + s for s in range(0, b - a - win + 1, step)]
    assert int((ds.groups == trial.trial_id).sum()) == len(starts)
    assert ds.meta["windows_lost_to_gaps"] > 0 and ds.meta["trials_with_gaps"] == 1


def test_contiguous_pieces_split_at_index_jumps_and_recorded_gaps() -> None:
    idx = np.r_[np.arange(0, 10), np.arange(15, 30)]
    assert contiguous_pieces(idx) == ((0, 10), (10, 25))
    assert contiguous_pieces(idx, [20]) == ((0, 10), (10, 16), (16, 25))
    assert contiguous_pieces(idx, [29, -5]) == ((0, 10), (10, 25))  # gaps at the edges cut nothing
    assert contiguous_pieces(np.zeros(0, dtype=np.int64)) == ()


@pytest.mark.timeout(60)
def test_no_clean_live_prediction_straddles_a_gap_or_an_artefact(tmp_path: Path) -> None:
    from acquisition.sources.simulated import EpocSimulator, SimulatedEpocSource
    from models.bundle import train_bundle
    from models.datasets import from_trials
    from models.live import LivePredictor
    from tests.support.models_data import simulated_trials

    bundle = train_bundle(from_trials(simulated_trials(n_per_state=1, trial_s=8.0), "default"), "lda")
    source = SimulatedEpocSource(seed=3)  # not connected: the test writes its buffer
    sim = EpocSimulator(seed=3)
    predictor = LivePredictor(bundle, source, hop_s=0.25, warmup_s=0.0)
    buf = source.buffer
    t = 0.0
    predictions = []

    def feed(n: int, glitch: bool = False) -> None:
        nonlocal t
        data = sim.generate(n)
        if glitch:
            data[n // 2, 3] = 6e5
        buf.push(data, t + np.arange(n) / SFREQ_HZ)
        t += n / SFREQ_HZ
        while (p := predictor.step()) is not None:
            predictions.append((p, buf.total))

    for _ in range(24):  # 6 s
        feed(32)
    gap_after = buf.total - 1
    buf.add_gap(Gap(gap_after, t, t + 3.0, 384, "device lost"))  # the writer records it first ...
    t += 3.0
    for _ in range(24):  # ... then 6 s after the gap, in chunks
        feed(32)
    feed(32, glitch=True)
    for _ in range(8):
        feed(32)
    win = predictor.extractor.window_samples
    assert predictions and predictor.gaps == 1
    for p, total in predictions:
        first = total - win  # the window's first sample (a prediction follows each chunk)
        if p.clean:
            assert not first <= gap_after < total - 1, "a clean window straddles the gap"
        else:
            assert p.reason.startswith("artefact in the window: ")
    after = [p for p, total in predictions if total - 1 > gap_after]
    assert all(total - gap_after - 1 >= win for _, total in predictions if total - 1 > gap_after)
    assert any(not p.clean for p in after) and any(p.clean for p in after)
    assert "glitch" in next(p.reason for p in after if not p.clean)


def test_replay_turns_a_time_jump_into_a_gap_and_refuses_values_beyond_float32(tmp_path: Path) -> None:
    from acquisition.sources.replay import RecordingError, ReplaySource, read_recording

    n = 640
    times = np.arange(n) / SFREQ_HZ
    times[300:] += 7.8  # the recording missed 7.8 s
    rows = [[f"{t:.6f}", *map(str, r)] for t, r in zip(times, ramp_recording(n).tolist(), strict=True)]
    csv = write_csv(tmp_path / "jump.csv", ["time", *EPOC_CHANNELS], rows)
    rec = read_recording(csv)
    assert rec.gaps == ((299, round(7.8 * SFREQ_HZ)),) and "replayed as gaps" in rec.notes[-1]
    source = ReplaySource(csv, speed=40)
    with source:
        assert source.wait_for_status(SourceStatus.STOPPED, 30)
    [gap] = source.gaps
    assert gap.after_index == 299 and gap.n_missing == round(7.8 * SFREQ_HZ)
    chunk = source.buffer.latest(n_samples=n)
    jump = np.diff(chunk.timestamps)[299] * 40  # replayed at 40x, on the 128 Hz grid
    assert jump == pytest.approx((gap.n_missing + 1) / SFREQ_HZ, abs=1e-6) and source.counters.received == n
    assert abs(jump - (7.8 + 1 / SFREQ_HZ)) < 1 / SFREQ_HZ
    rows[5][3] = "1e39"  # beyond float32's range: it would be stored as inf
    bad = write_csv(tmp_path / "huge.csv", ["time", *EPOC_CHANNELS], rows)
    with pytest.raises(RecordingError, match=r"line 7, column F3: sample 1e39 is beyond float32's range"):
        read_recording(bad)


def test_an_edf_with_bad_acq_skip_replays_its_gaps(tmp_path: Path) -> None:
    from acquisition.sources.replay import read_recording
    from acquisition.store.export import export_bids

    with SessionStore(tmp_path / "s.sqlite") as store:
        filled = fill_session(store, seconds=6, gap=(200, 50))
        out = export_bids(store, filled.session_id, tmp_path / "bids")
    edf = next(out.rglob("*_eeg.edf"))
    rec = read_recording(edf)
    assert rec.gaps[0] == (199, 50)
    np.testing.assert_allclose(rec.data[:200], filled.data[:200], atol=0.05)  # EDF's 16-bit quantum


# -- clocks ------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_an_lsl_stream_on_another_clock_is_refused_or_restamped(lsl_name: str) -> None:
    from acquisition.sources.lsl import LslSource

    offset = time.time() - local_clock()  # a bridge stamping with Unix time
    proc = start_outlet("emotiv", "--name", lsl_name, "--stamp-offset", repr(offset))
    try:
        src = LslSource(lsl_name)
        with pytest.raises(SourceError, match=r"is stamped \+\d+\.\d s away from this machine's LSL clock") as exc:
            src.connect(timeout_s=60)
        assert "restamp=arrival" in str(exc.value) and "\n" not in str(exc.value)
        assert src.status == SourceStatus.STOPPED and src.buffer.total == 0
        from acquisition.sources.spec import open_source

        restamped = open_source(f"lsl:{lsl_name}?restamp=arrival")
        with restamped:
            assert restamped.wait_for_samples(256, 60)
            chunk = restamped.buffer.latest(n_samples=256)
            assert abs(chunk.timestamps[-1] - local_clock()) < 2.0
            assert np.all(np.diff(chunk.timestamps) > 0)
            assert np.all(np.diff(chunk.data[:, 0]) == 1)  # nothing lost or reordered
            assert any("restamp" in note for note in restamped.info.notes)  # type: ignore[union-attr]
    finally:
        stop_outlet(proc)


# -- background errors never vanish --------------------------------------------------------
class _FlakySource(BaseSource):
    """Delivers a ramp; the 5th chunk is malformed (13 channels), as a broken driver might."""

    kind = "flaky"

    def __init__(self) -> None:
        super().__init__(loss_timeout_s=0.3)
        self.n = 0
        self.opens = 0
        self.open = False

    def _open(self, timeout_s: float) -> DeviceInfo:
        self.opens += 1
        self.open = True
        return DeviceInfo("flaky", "flaky test device", SFREQ_HZ)

    def _read(self, timeout_s: float) -> ReadResult | None:
        time.sleep(0.01)
        if not self.open:  # a closed device delivers nothing
            return None
        self.n += 1
        idx = np.arange(self.n * 4, self.n * 4 + 4)
        width = 13 if self.n == 5 else 14
        return ReadResult(np.repeat(idx[:, None], width, axis=1).astype(float), local_clock() + idx * 0)

    def _close(self) -> None:
        self.open = False


@pytest.mark.timeout(30)
def test_a_malformed_chunk_never_kills_the_reader_silently() -> None:
    src = _FlakySource()
    statuses: list[str] = []
    src.add_status_listener(lambda s: statuses.append(str(s)))
    with src:
        assert src.wait_for_status(SourceStatus.LOST, 10)
        assert "could not take a chunk" in (src.last_error or "") and "shape" in (src.last_error or "")
        assert src.wait_for_status(SourceStatus.STREAMING, 10)  # reconnected, reading again
        total = src.buffer.total
        assert src.wait_for_samples(total + 40, 10)
    assert src.opens >= 2 and statuses.index("lost") < len(statuses) - 1


@pytest.mark.timeout(30)
def test_an_unexpected_recorder_error_pauses_retries_and_recovers(tmp_path: Path) -> None:
    from acquisition.sources.simulated import SimulatedEpocSource
    from acquisition.store.recorder import StoreRecorder

    errors: list[str] = []
    recovered: list[bool] = []
    with SessionStore(tmp_path / "s.sqlite") as store, SimulatedEpocSource(seed=1, speed=4) as source:
        sid = store.start_session("P01", {"name": "x"}, "simulated", {})
        real = store.append_eeg
        calls = {"n": 0}

        def broken(*args: object, **kwargs: object) -> None:
            calls["n"] += 1
            if calls["n"] in (2, 3):
                raise RuntimeError("a bug in a driver")
            real(*args, **kwargs)  # type: ignore[arg-type]

        store.append_eeg = broken  # type: ignore[method-assign]
        rec = StoreRecorder(source, store, sid, commit_interval_s=0.05)
        rec.add_error_listener(lambda exc: errors.append(str(exc)))
        rec.add_recovery_listener(lambda: recovered.append(True))
        rec.start()
        deadline = time.monotonic() + 10
        while not recovered and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting on the recorder thread's own retries
        stats = rec.stop()
    assert errors and "RuntimeError: a bug in a driver" in errors[0] and recovered
    assert stats["paused"] is False and stats["errors"] >= 1
    with SessionStore(tmp_path / "s.sqlite", readonly=True) as store:
        _, _, idx = store.eeg(sid)
        assert np.all(np.diff(idx) == 1)  # retried: nothing was lost


@pytest.mark.timeout(30)
def test_a_live_predictor_error_reaches_its_listeners() -> None:
    from acquisition.sources.simulated import SimulatedEpocSource
    from models.bundle import train_bundle
    from models.datasets import from_trials
    from models.live import LivePredictor
    from tests.support.models_data import simulated_trials

    bundle = train_bundle(from_trials(simulated_trials(n_per_state=1, trial_s=6.0), "default"), "lda")
    errors: list[BaseException] = []
    with SimulatedEpocSource(seed=1, speed=8) as source:
        predictor = LivePredictor(bundle, source, hop_s=0.25)
        predictor.add_error_listener(errors.append)

        def explode(_features: object) -> object:
            raise ValueError("the model broke")

        predictor.model.predict_proba = explode  # type: ignore[method-assign]
        predictor.start()
        deadline = time.monotonic() + 20
        while not errors and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting on the predictor thread
        with pytest.raises(ValueError, match="the model broke"):
            predictor.stop()
    assert errors and not predictor.running


@pytest.mark.timeout(30)
def test_the_contact_quality_reader_reports_its_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import pylsl

    from acquisition.sources.quality import QualityReader

    def broken_resolve(**_kwargs: object) -> object:
        raise OSError("network is down")

    monkeypatch.setattr(pylsl, "resolve_streams", broken_resolve)
    told = threading.Event()
    messages: list[str] = []
    reader = QualityReader("X-EEG", "host", on_error=lambda m: (messages.append(m), told.set()))
    reader.start()
    assert told.wait(10)
    reader.stop()
    assert "network is down" in messages[0] and reader.last_error == messages[0]


@pytest.mark.timeout(60)
def test_a_session_tells_a_failing_contact_quality_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's own quality reader fails: a ``quality_error`` event (the CLI prints it,
    the GUI logs it) and a message in the result; the session itself goes on."""
    from acquisition.session.protocol import load_protocol
    from acquisition.session.runner import SessionRunner
    from tests.support.gui import write_protocol
    from tests.support.sources import quality_failing_source

    protocol = load_protocol(write_protocol(tmp_path / "stim", n_per_class=1, music_s=0.5, silence_s=0.1))
    events: list[object] = []
    with quality_failing_source(monkeypatch) as source, SessionStore(tmp_path / "s.sqlite") as store:
        runner = SessionRunner(protocol, source, store, "P01", labels="auto", quality_wait_s=2.0)  # type: ignore[arg-type]
        runner.add_listener(events.append)
        result = runner.run()
    told = [e for e in events if e.kind == "quality_error"]  # type: ignore[attr-defined]
    assert len(told) == 1 and "network is down" in told[0].message  # type: ignore[attr-defined]
    assert result.status == "completed" and any("contact quality:" in m for m in result.messages)


def test_the_json_says_how_many_windows_were_lost_to_gaps(tmp_path: Path) -> None:
    from models.datasets import from_trials
    from models.evaluation import evaluate

    with SessionStore(tmp_path / "s.sqlite") as store:
        for k in range(2):
            fill_session(store, seed=k, seconds=40, gap=(2000, 600),
                         trials=((0.0, 10.0, "happy"), (10.0, 20.0, "sad"), (20.0, 30.0, "happy"),
                                 (30.0, 40.0, "sad")))
        trials = store.labelled_trials()
    result = evaluate(from_trials(trials, "default"), "grouped", ["lda"])
    assert result["dataset"]["windows_lost_to_gaps"] > 0 and result["dataset"]["trials_with_gaps"] == 4
    json.dumps(result)
