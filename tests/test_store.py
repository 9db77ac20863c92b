"""The session store and the recorder: round trips, durability settings, bad input."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from acquisition.channels import SFREQ_HZ
from acquisition.errors import StoreError
from acquisition.sources.simulated import EpocSimulator, SimulatedEpocSource
from acquisition.store.recorder import StoreRecorder
from acquisition.store.sqlite import LabelledTrial, SessionStore
from tests.support.store_data import child, fill_session


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    s = SessionStore(tmp_path / "store.sqlite")
    yield s
    s.close()


def test_round_trip_eeg_trials_markers(store: SessionStore) -> None:
    filled = fill_session(store, participant="P01", seed=3, gap=(500, 40))
    data, times, idx = store.eeg(filled.session_id)
    np.testing.assert_array_equal(data, filled.data)
    np.testing.assert_array_equal(times, filled.timestamps)
    np.testing.assert_array_equal(idx, filled.indices)
    assert idx[500] == 540  # the gap is kept, never filled
    sub_data, _, sub_idx = store.eeg(filled.session_id, 100, 200)
    np.testing.assert_array_equal(sub_idx, np.arange(100, 200))
    np.testing.assert_array_equal(sub_data, filled.data[100:200])

    info = store.session(filled.session_id)
    assert (info.participant, info.protocol_name, info.status) == ("P01", "test-protocol", "completed")
    assert (info.n_trials, info.n_labelled, info.n_samples) == (2, 2, len(filled.data))
    assert info.eeg_seconds == pytest.approx(len(filled.data) / SFREQ_HZ)
    trials = store.trials(filled.session_id)
    assert [(t.stimulus_id, t.label, t.valence, t.arousal) for t in trials] == [
        ("stim1", "happy", 7, 5), ("stim2", "sad", 5, 5)
    ]
    assert [m.text for m in store.markers(filled.session_id)] == [
        "stim_on:stim1", "stim_off:stim1", "stim_on:stim2", "stim_off:stim2"
    ]


def test_labelled_trials_cut_onset_to_offset(store: SessionStore) -> None:
    a = fill_session(store, participant="P01", seed=1, gap=(200, 64))  # the gap is inside trial 1
    b = fill_session(store, participant="P02", seed=2)
    everything = store.labelled_trials()
    assert len(everything) == 4 and all(isinstance(t, LabelledTrial) for t in everything)
    first = everything[0]
    assert (first.label, first.subject, first.sfreq_hz) == ("happy", "P01", SFREQ_HZ)
    assert first.trial_id == f"{a.session_id}:{a.trial_ids[0]}"
    assert first.data.shape == (3 * 128 - 64, 14) and first.n_missing == 64
    assert len({t.trial_id for t in everything}) == 4
    only_p2 = store.labelled_trials(participants=["P02"])
    assert [t.subject for t in only_p2] == ["P02", "P02"]
    np.testing.assert_array_equal(only_p2[1].data, b.data[6 * 128 : 9 * 128])
    assert [t.session_id for t in store.labelled_trials(session_ids=[b.session_id])] == [b.session_id] * 2
    with pytest.raises(StoreError, match="unknown session id"):
        store.labelled_trials(session_ids=[99])


def test_wal_and_synchronous_full(store: SessionStore, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "store.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


@pytest.mark.parametrize("bad", ["", "   ", "Jane Doe", "x" * 33, "a/b", "zoë", None])
def test_participant_ids_are_pseudonymous_codes(store: SessionStore, bad: object) -> None:
    with pytest.raises(StoreError, match="participant id must be a pseudonymous code"):
        store.add_participant(bad)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="participant id"):
        store.start_session(bad, {}, "simulated", {})  # type: ignore[arg-type]


def test_participant_age_sex_and_bad_values(store: SessionStore) -> None:
    store.add_participant("S01", age=31, sex="female")
    store.add_participant("S01")  # again without details keeps them
    assert store.participant("S01").age == 31 and store.participant("S01").sex == "F"
    with pytest.raises(StoreError, match="age must be a whole number of years 0-120, got 300"):
        store.add_participant("S02", age=300)
    with pytest.raises(StoreError, match="sex must be F, M or O, got 'x'"):
        store.add_participant("S02", sex="x")
    assert [p.id for p in store.participants()] == ["S01"]


def test_only_a_store_made_now_and_never_written_is_discarded(tmp_path: Path) -> None:
    """``discard_if_unused`` (a session refused before it began) removes a store only if
    this object created its file and not one row was written; any other store stays."""
    fresh = SessionStore(tmp_path / "fresh.sqlite")
    assert fresh.created and fresh.discard_if_unused()
    assert list(tmp_path.iterdir()) == []  # its -wal and -shm too
    SessionStore(tmp_path / "there.sqlite").close()  # there before (even if empty): kept
    again = SessionStore(tmp_path / "there.sqlite")
    assert not again.created and not again.discard_if_unused()
    written = SessionStore(tmp_path / "written.sqlite")
    written.add_participant("S01")  # one row: kept
    assert written.created and not written.discard_if_unused()
    assert sorted(p.name for p in tmp_path.glob("*.sqlite")) == ["there.sqlite", "written.sqlite"]
    with SessionStore(tmp_path / "written.sqlite", readonly=True) as s:
        assert [p.id for p in s.participants()] == ["S01"]


@pytest.mark.parametrize("value", [0, 10, 2.5, True, "5"])
def test_one_label_validation_for_the_session_and_the_store(value: object) -> None:
    """The runner and the store refuse a bad SAM rating or label with the same check
    (a LabelError is both a ProtocolError and a StoreError)."""
    from acquisition.errors import LabelError, ProtocolError
    from acquisition.store.sqlite import check_label, check_sam

    with pytest.raises(LabelError, match=rf"SAM arousal must be a whole number 1-9, got {value!r}") as exc:
        check_sam("arousal", value)
    assert isinstance(exc.value, ProtocolError) and isinstance(exc.value, StoreError)
    assert check_sam("arousal", np.int64(9)) == 9 and check_sam("arousal", None) is None
    with pytest.raises(LabelError, match="label must be one of happy, sad, got 'angry'"):
        check_label("angry", ("happy", "sad"))
    with pytest.raises(LabelError, match="non-empty string"):
        check_label("  ")


def test_bad_writes_are_refused_with_the_rule(store: SessionStore) -> None:
    sid = store.start_session("P01", {"name": "p"}, "simulated", {})
    with pytest.raises(StoreError, match=r"shape \(n, 14\)"):
        store.append_eeg(sid, np.zeros((4, 3)), np.zeros(4), 0)
    with pytest.raises(StoreError, match="4 samples but 3 timestamps"):
        store.append_eeg(sid, np.zeros((4, 14)), np.zeros(3), 0)
    with pytest.raises(StoreError, match="offset_t must be >= onset_t"):
        store.add_trial(sid, "s", "happy", 10.0, 9.0, 0, 10)
    tid = store.add_trial(sid, "s", "happy", 1.0, 2.0, 0, 128)
    with pytest.raises(StoreError, match="SAM valence must be a whole number 1-9, got 10"):
        store.set_trial_label(tid, "happy", valence=10)
    with pytest.raises(StoreError, match="unknown trial id 999"):
        store.set_trial_label(999, "happy")
    with pytest.raises(StoreError, match="status must be one of"):
        store.finish_session(sid, "done")
    with pytest.raises(StoreError, match="unknown session id 42"):
        store.session(42)
    with pytest.raises(StoreError, match="unknown session id 42"):
        store.append_eeg(42, np.zeros((4, 14)), np.arange(4.0), 0)
    with pytest.raises(StoreError, match="unknown session id 42"):
        store.add_marker(42, 1.0, "x")
    assert store.session(sid).status == "running"  # nothing above changed the session
    assert store.session(sid).n_samples == 0


def test_append_is_idempotent_for_retried_chunks(store: SessionStore) -> None:
    sid = store.start_session("P01", {}, "simulated", {})
    data = EpocSimulator(0).generate(100)
    times = np.arange(100) / SFREQ_HZ
    store.append_eeg(sid, data[:40], times[:40], 0)
    store.append_eeg(sid, data[:40], times[:40], 0)  # the same chunk again
    store.append_eeg(sid, data[20:100], times[20:100], 20)  # overlaps the first by 20 samples
    got, t, idx = store.eeg(sid)
    np.testing.assert_array_equal(idx, np.arange(100))
    np.testing.assert_array_equal(got, data.astype(np.float32))
    np.testing.assert_array_equal(t, times)


@pytest.mark.timeout(180)
def test_session_of_a_live_process_stays_running_dead_one_is_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    mine = SessionStore(path)
    live_id = mine.start_session("P01", {}, "simulated", {})
    out = subprocess.run(child(["leave-running", str(path)]), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    gone_id = int(out.stdout)
    with SessionStore(path, readonly=True) as ro:  # a read-only open shows it, writes nothing
        assert ro.session(gone_id).status == "interrupted"
    raw = sqlite3.connect(path).execute("SELECT status FROM sessions WHERE id=?", (gone_id,)).fetchone()
    assert raw == ("running",)
    again = SessionStore(path)
    assert again.session(live_id).status == "running"
    gone = again.session(gone_id)
    assert gone.status == "interrupted" and gone.end is not None and gone.n_samples == 32
    raw = sqlite3.connect(path).execute("SELECT status FROM sessions WHERE id=?", (gone_id,)).fetchone()
    assert raw == ("interrupted",)  # written, not just shown
    again.close()
    mine.close()


def test_readonly_open_refuses_writes(store: SessionStore, tmp_path: Path) -> None:
    fill_session(store)
    ro = SessionStore(tmp_path / "store.sqlite", readonly=True)
    assert len(ro.sessions()) == 1
    with pytest.raises(StoreError, match="opened read-only"):
        ro.add_participant("P09")
    ro.close()
    with pytest.raises(StoreError, match="does not exist"):
        SessionStore(tmp_path / "missing.sqlite", readonly=True)


def test_corrupt_and_foreign_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(StoreError, match=r"junk.sqlite is not a Duygu session store \(not a valid SQLite"):
        SessionStore(junk)
    foreign = tmp_path / "other.sqlite"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE songs (title TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a Duygu session store"):
        SessionStore(foreign)
    with pytest.raises(StoreError, match="is a directory"):
        SessionStore(tmp_path)


def test_locked_store_clear_error_then_nothing_lost(store: SessionStore, tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    filled = fill_session(store, seconds=2)
    sid = store.start_session("P02", {}, "simulated", {})
    store.busy_timeout_s = 0.3
    store._conn.execute("PRAGMA busy_timeout=300")
    holder = subprocess.Popen(child(["hold-lock", str(path)]), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        chunk = EpocSimulator(5).generate(64)
        with pytest.raises(StoreError, match=r"store .*store.sqlite is locked by another process \(waited 0.3 s"):
            store.append_eeg(sid, chunk, np.arange(64) / SFREQ_HZ, 0)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    store.append_eeg(sid, chunk, np.arange(64) / SFREQ_HZ, 0)  # the lock is gone: it works
    np.testing.assert_array_equal(store.eeg(filled.session_id)[0], filled.data)
    assert store.session(sid).n_samples == 64


# deadlines: a child process (numpy, sqlite) can take tens of seconds to start on a busy
# machine, and a starved recorder thread commits late; healthy runs take under a second
@pytest.mark.timeout(180)
def test_recorder_pauses_while_locked_and_loses_nothing(store: SessionStore, tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    sid = store.start_session("P01", {}, "simulated:11", {})
    store._conn.execute("PRAGMA busy_timeout=100")
    errors: list[StoreError] = []
    failed = threading.Event()
    with SimulatedEpocSource(seed=11, speed=8.0) as source:
        recorder = StoreRecorder(source, store, sid, start_index=0, commit_interval_s=0.1)
        recorder.add_error_listener(lambda exc: (errors.append(exc), failed.set()))
        recorder.start()
        assert source.wait_for_samples(256, 30)
        holder = subprocess.Popen(child(["hold-lock", str(path)]), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            assert failed.wait(30), "the recorder never reported the lock"
            assert recorder.paused and "locked by another process" in (recorder.last_error or "")
        finally:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(30)
        total = source.buffer.total
        assert source.buffer.wait_for(total + 128, 30)
        stats = recorder.stop()
    assert len(errors) == 1  # reported once per failure episode
    assert stats["paused"] is False and stats["errors"] >= 1
    data, _, idx = store.eeg(sid)
    np.testing.assert_array_equal(idx, np.arange(len(idx)))  # no hole where the lock was
    assert len(idx) >= total + 128
    np.testing.assert_array_equal(data, EpocSimulator(11).generate(len(idx)).astype(np.float32))


def test_recorder_counts_overruns(store: SessionStore) -> None:
    sid = store.start_session("P01", {}, "simulated:2", {})
    source = SimulatedEpocSource(seed=2, speed=40.0, chunk_samples=32, buffer_seconds=0.5)
    with source:
        recorder = StoreRecorder(source, store, sid, start_index=0, commit_interval_s=0.5)
        recorder.start()
        assert source.wait_for_samples(3 * 128, 30)
        stats = recorder.stop()
    assert stats["overruns"] >= 1 and stats["missed_samples"] > 0
    _, _, idx = store.eeg(sid)
    assert int(np.sum(np.diff(idx) - 1)) + int(idx[0]) == stats["missed_samples"]


# -- read-only and full file systems (real tmpfs mounts; root is available here) --------------
def _mount_tmpfs(target: Path, size: str) -> bool:
    target.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
                         capture_output=True, text=True)
    return res.returncode == 0


def _umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], check=True)


def test_read_only_file_system(tmp_path: Path) -> None:
    mnt = tmp_path / "ro"
    if not _mount_tmpfs(mnt, "4m"):
        assert os.geteuid() != 0, "root but tmpfs mount failed"
        mnt.chmod(0o555)  # without root, a read-only directory does the same job
        with pytest.raises(StoreError, match=r"ro.* is read-only"):
            SessionStore(mnt / "s.sqlite")
        return
    try:
        with SessionStore(mnt / "s.sqlite") as s:
            filled = fill_session(s, seconds=2)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        with pytest.raises(StoreError, match=r"store .*ro/s.sqlite is on a read-only file system"):
            SessionStore(mnt / "s.sqlite")
        with pytest.raises(StoreError, match=r"store .*ro is on a read-only file system"):
            SessionStore(mnt / "new.sqlite")
        with SessionStore(mnt / "s.sqlite", readonly=True) as ro:  # still readable, nothing lost
            np.testing.assert_array_equal(ro.eeg(filled.session_id)[0], filled.data)
    finally:
        _umount(mnt)


def test_disk_full_is_a_clear_error_and_committed_data_stays(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mounted = _mount_tmpfs(mnt, "1m")
    if not mounted:
        assert os.geteuid() != 0, "root but tmpfs mount failed"
    try:
        store = SessionStore(mnt / "s.sqlite")
        if not mounted:  # fallback: cap the database size instead of the file system
            store._conn.execute("PRAGMA max_page_count=200")
        filled = fill_session(store, seconds=4)
        sid = store.start_session("P02", {}, "simulated", {})
        sim = EpocSimulator(9)
        errors = []
        for k in range(400):  # 400 x 2 s of float32 EEG is far beyond 1 MB
            try:
                store.append_eeg(sid, sim.generate(256), k * 2 + np.arange(256) / SFREQ_HZ, k * 256)
            except StoreError as exc:
                errors.append(str(exc))
                break
        assert errors and errors[0].startswith("disk full while writing EEG to store"), errors
        assert "s.sqlite" in errors[0]
        np.testing.assert_array_equal(store.eeg(filled.session_id)[0], filled.data)
        n_before = store.session(sid).n_samples
        assert n_before % 256 == 0 and n_before > 0  # whole chunks only: the failed one rolled back
        store.close()
        with SessionStore(mnt / "s.sqlite", readonly=True) as again:
            np.testing.assert_array_equal(again.eeg(filled.session_id)[0], filled.data)
            assert again.session(sid).n_samples == n_before
    finally:
        if mounted:
            _umount(mnt)


@pytest.mark.timeout(120)
def test_recorder_pauses_on_a_full_disk_and_resumes_when_space_returns(tmp_path: Path) -> None:
    mnt = tmp_path / "tiny"
    if not _mount_tmpfs(mnt, "2m"):
        assert os.geteuid() != 0, "root but tmpfs mount failed"
        mnt.rmdir()
        mnt.mkdir()
    try:
        store = SessionStore(mnt / "s.sqlite")
        if os.path.ismount(mnt):
            filler = mnt / "filler"
            free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
            filler.write_bytes(b"\0" * (free - 96 * 1024))  # leave ~96 kB: about 3 s of EEG
        else:  # fallback without mounts: cap the database's size
            pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
            store._conn.execute(f"PRAGMA max_page_count={pages + 24}")
        sid = store.start_session("P01", {}, "simulated:4", {})
        failed = threading.Event()
        with SimulatedEpocSource(seed=4, speed=10.0) as source:
            recorder = StoreRecorder(source, store, sid, start_index=0, commit_interval_s=0.1,
                                     on_error=lambda exc: failed.set())
            recorder.start()
            assert failed.wait(30), "the disk never filled"
            assert recorder.paused and (recorder.last_error or "").startswith("disk full while writing EEG")
            committed = store.session(sid).n_samples
            assert committed > 0
            if os.path.ismount(mnt):
                filler.unlink()  # space comes back
            else:
                store._conn.execute("PRAGMA max_page_count=1000000")
            target = source.buffer.total + 128
            assert source.buffer.wait_for(target, 30)
            stats = recorder.stop()
        assert stats["paused"] is False, stats
        data, _, idx = store.eeg(sid)
        np.testing.assert_array_equal(idx, np.arange(len(idx)))  # nothing lost while paused
        assert len(idx) >= target
        np.testing.assert_array_equal(data, EpocSimulator(4).generate(len(idx)).astype(np.float32))
        store.close()
    finally:
        if os.path.ismount(mnt):
            _umount(mnt)


def test_reused_pid_or_reboot_counts_as_gone(tmp_path: Path) -> None:
    # after a power cut the boot id changes; a recycled pid has another start time
    from acquisition.store.sqlite import process_alive, process_marker

    me = os.getpid()
    assert process_alive(me, process_marker(me))
    assert not process_alive(me, "another-boot:12345")
    path = tmp_path / "s.sqlite"
    with SessionStore(path) as store:
        sid = store.start_session("P01", {}, "simulated", {})
    conn = sqlite3.connect(path)
    conn.execute("UPDATE sessions SET owner_marker='another-boot:12345' WHERE id=?", (sid,))
    conn.commit()
    conn.close()
    with SessionStore(path) as store:
        assert store.session(sid).status == "interrupted"
