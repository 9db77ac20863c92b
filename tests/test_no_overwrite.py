"""Nothing is overwritten (issue 10, build 5): no output of a command may be the store it
fills, the shared atomic writer never replaces a session store (so neither does the GUI's
"Save model bundle"), an interrupted recording's ``.partial`` rows are never replaced,
and a verb ended by SIGTERM/SIGHUP (or killed outright) leaves no hidden temporary output
behind for good."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import cli_error, digest
from support.store_data import fill_session, wait_until

from acquisition.errors import DuyguError, StoreError
from acquisition.settings import atomic_output, load_settings, partial_name, sweep_stale_partials
from acquisition.store.sqlite import SessionStore
from app.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "partial" in p.name)


@pytest.fixture
def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(30)
    return proc.pid


# -- G1: an output may not be the store the command fills ---------------------------------
def _store_writers(tmp_path: Path) -> dict[str, list[str]]:
    from support.gui import write_protocol

    protocol = write_protocol(tmp_path / "stim", n_per_class=1, music_s=1.0, silence_s=0.5)
    new = str(tmp_path / "new.sqlite")
    return {
        "record": ["record", "--source", "simulated", "--seconds", "0.5", "--store", new, "--participant", "P01",
                   "--json", new],
        "record-wal": ["record", "--source", "simulated", "--seconds", "0.5", "--store", new, "--json", new + "-wal",
                       "--force"],
        "session": ["session", "run", "--protocol", str(protocol), "--participant", "P01", "--labels", "auto",
                    "--no-audio", "--no-markers", "--time-scale", "8", "--store", new, "--json", new, "--force"],
        "demo": ["demo", "--headless", "--no-audio", "--store", new, "--json", new],
        "import": ["sessions", "import", str(tmp_path / "lab.xdf"), "--participant", "P01", "--store", new,
                   "--json", new],
    }


@pytest.mark.timeout(120)
@pytest.mark.parametrize("verb", ["record", "record-wal", "session", "demo", "import"])
def test_no_output_may_be_the_store_the_command_fills(verb: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    argv = _store_writers(tmp_path)[verb]
    err = cli_error(capsys, argv)
    assert "and --store name the same file" in err and "new.sqlite" in err, err
    assert not (tmp_path / "new.sqlite").exists()  # refused before any work started
    assert _partials(tmp_path) == []


@pytest.mark.timeout(60)
def test_the_default_store_counts_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    default = load_settings().store_path
    err = cli_error(capsys, ["record", "--source", "simulated", "--seconds", "0.5", "--store", "--participant", "P01",
                          "--json", str(default)])
    assert "--json and the default store (--store) name the same file" in err and str(default) in err
    assert not default.exists()
    # a CSV recording writes no store: the default store's path is just a path to it
    out = tmp_path / "rec.csv"
    assert main(["record", "--source", "simulated:1", "--seconds", "0.5", "--out", str(out),
                 "--json", str(tmp_path / "counts.json")]) == 0


@pytest.mark.timeout(60)
def test_recording_again_into_an_existing_store_is_fine(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    for k in range(2):  # the second run appends to the store the first one made
        assert main(["record", "--source", "simulated:1", "--seconds", "0.5", "--store", str(store),
                     "--participant", "P01", "--json", str(tmp_path / f"counts{k}.json")]) == 0
    with SessionStore(store, readonly=True) as s:
        assert len(s.sessions()) == 2


@pytest.mark.timeout(60)
def test_the_atomic_writer_never_replaces_a_store_even_at_the_rename(lab: Path, tmp_path: Path) -> None:
    from app.commands._common import write_json

    before = digest(lab)
    with pytest.raises(DuyguError, match=r"lab\.sqlite' is a session store; Duygu never overwrites one"):
        write_json({"x": 1}, lab)
    with pytest.raises(DuyguError, match="is a session store"):
        write_json({"x": 1}, lab.with_name("lab.sqlite-wal"))  # a WAL beside a store is the store
    assert digest(lab) == before
    # the file becomes a store while the output is written (the command's own store)
    late = tmp_path / "late.sqlite"
    with pytest.raises(DuyguError, match=r"late\.sqlite' is a session store") as info:
        with atomic_output(late) as tmp:
            tmp.write_text('{"x": 1}\n', encoding="utf-8")
            with SessionStore(late) as store:
                fill_session(store, seconds=1, trials=())
    assert "\n" not in str(info.value)
    with SessionStore(late, readonly=True) as store:
        assert len(store.sessions()) == 1
    assert _partials(tmp_path) == []


@pytest.mark.timeout(60)
def test_a_model_bundle_never_replaces_a_store(lab: Path) -> None:
    """The function the GUI's "Save model bundle" calls, with the store's path."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from models.bundle import save_bundle

    est = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        np.random.default_rng(0).normal(size=(20, 3)), np.array(["happy", "sad"] * 10))
    before = digest(lab)
    with pytest.raises(DuyguError, match="is a session store; Duygu never overwrites one"):
        save_bundle(lab, est, {"classifier": "logreg"})
    assert digest(lab) == before and _partials(lab.parent) == []


@pytest.mark.timeout(60)
def test_a_csv_recording_is_never_renamed_over_a_store(tmp_path: Path) -> None:
    import numpy as np

    from acquisition.sources.simulated import EpocSimulator, SimulatedEpocSource
    from acquisition.store.recorder import CsvRecorder

    source = SimulatedEpocSource(seed=1, buffer_seconds=10.0)  # not connected: fed here
    out = tmp_path / "rec.csv"
    recorder = CsvRecorder(source, out, start_index=0)
    source.buffer.push(EpocSimulator(1).generate(64), 1000.0 + np.arange(64) / 128)
    recorder.flush()
    with SessionStore(out) as store:  # meanwhile someone made a store of that name
        fill_session(store, seconds=1, trials=())
    before = digest(out)
    with pytest.raises(StoreError, match=r"rec\.csv is a session store; Duygu never overwrites one: the rows are in"):
        recorder.close()
    assert digest(out) == before
    assert len((tmp_path / "rec.csv.partial").read_text().splitlines()) == 65  # header + rows kept


# -- G2: an interrupted recording's rows are never replaced --------------------------------
@pytest.mark.timeout(60)
def test_an_interrupted_recordings_partial_file_is_never_replaced(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rec.csv"
    partial = tmp_path / "rec.csv.partial"
    partial.write_text("time,AF3\n1000.0,4.5\n1000.0078125,4.25\n", encoding="utf-8")  # rows of a killed run
    before = digest(partial)
    for extra in ([], ["--force"]):
        err = cli_error(capsys, ["record", "--source", "simulated:1", "--seconds", "0.5", "--out", str(out), *extra])
        assert str(partial) in err and "interrupted recording" in err and "rename it" in err, err
    out.write_text("an earlier, finished recording\n")
    err = cli_error(capsys, ["record", "--source", "simulated:1", "--seconds", "0.5", "--out", str(out), "--force"])
    assert "interrupted recording" in err
    assert digest(partial) == before and out.read_text() == "an earlier, finished recording\n"


def test_the_csv_recorder_opens_its_partial_file_exclusively(tmp_path: Path) -> None:
    from acquisition.sources.simulated import SimulatedEpocSource
    from acquisition.store.recorder import CsvRecorder

    partial = tmp_path / "rec.csv.partial"
    partial.write_text("time,AF3\n1000.0,4.5\n", encoding="utf-8")
    with pytest.raises(StoreError, match=r"rec\.csv\.partial holds the rows of an interrupted recording"):
        CsvRecorder(SimulatedEpocSource(seed=1), tmp_path / "rec.csv")
    assert partial.read_text(encoding="utf-8") == "time,AF3\n1000.0,4.5\n"


# -- G3: the GUI's "Save model bundle" -----------------------------------------------------
@pytest.mark.timeout(60)
def test_saving_a_bundle_over_a_store_in_the_gui_is_a_one_line_notification(
        qtbot, lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    import numpy as np
    from PySide6.QtWidgets import QFileDialog
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from app.notifications import NotificationCenter
    from app.state import AppState
    from app.views.training import TrainingView
    from app.workers import WorkerPool

    notes = NotificationCenter()
    pool = WorkerPool(notify=notes.notify)
    window_store = tmp_path / "gui" / "store.sqlite"
    state = AppState(load_settings(), window_store, tmp_path / "a.toml", pool, notes)
    tv = TrainingView(state)
    qtbot.addWidget(tv)
    est = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        np.random.default_rng(0).normal(size=(20, 3)), np.array(["happy", "sad"] * 10))
    tv.bundle = SimpleNamespace(estimator=est, meta={"classifier": "logreg"}, classes=["happy", "sad"])
    before = digest(lab)
    try:
        # the operator picks another lab's store in the save dialog
        monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *_a, **_k: (str(lab), "")))
        tv._save_dialog()
        qtbot.waitUntil(lambda: len(notes.messages("error")) == 1, timeout=30000)
        (text,) = notes.messages("error")
        assert "lab.sqlite' is a session store; Duygu never overwrites one" in text and "\n" not in text
        assert "Traceback" not in text
        assert digest(lab) == before and _partials(tmp_path) == []
        assert tv.bundle_path is None and notes.messages("success") == []
        # the window's own store, not created yet: refused at once, nothing written
        assert tv.save_bundle(window_store) is None
        qtbot.waitUntil(lambda: len(notes.messages("error")) == 2, timeout=5000)
        assert "is this window's session store" in notes.messages("error")[1]
        assert not window_store.exists()
    finally:
        pool.shutdown(timeout_ms=10000)


# -- G7: signals and temporary outputs left behind -----------------------------------------
@pytest.fixture(scope="module")
def long_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with 10 minutes of EEG: its CSV export takes about 2 s."""
    path = tmp_path_factory.mktemp("long") / "long.sqlite"
    with SessionStore(path) as store:
        fill_session(store, seconds=600, chunk=1024, trials=((1.0, 30.0, "happy"),))
        store.checkpoint()
    return path


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_an_export_ended_by_a_signal_leaves_nothing_behind(long_store: Path, tmp_path: Path, signum: int) -> None:
    out = tmp_path / "export"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "sessions", "export", "1", "--format", "csv",
                             "--out", str(out), "--store", str(long_store)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = partial_name(out, proc.pid)
    try:
        wait_until(lambda: partial.exists() or proc.poll() is not None, 60, "the export's hidden folder")
        assert proc.poll() is None, f"the export ended before it could be interrupted: {proc.communicate()}"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 130, err
    assert f"duygu: interrupted ({signal.Signals(signum).name})" in err and "Traceback" not in err
    assert not out.exists() and _partials(tmp_path) == []


@pytest.mark.timeout(30)
def test_a_signal_whose_exception_was_lost_still_keeps_unfinished_outputs_out(tmp_path: Path) -> None:
    """C code calling back into Python (numpy's string formatting) can swallow the
    KeyboardInterrupt a handler raised; the noted signal still stops the rename, and ends
    the verb's block."""
    from app.commands._common import ending_signals, write_json

    out = tmp_path / "out.json"
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        with ending_signals(guard_outputs=True):
            with atomic_output(out) as tmp:
                tmp.write_text("{}", encoding="utf-8")
                try:
                    signal.raise_signal(signal.SIGTERM)
                except KeyboardInterrupt:
                    pass  # what such C code does
    assert not out.exists() and _partials(tmp_path) == []
    with pytest.raises(KeyboardInterrupt, match="SIGHUP"), ending_signals(guard_outputs=True):
        try:
            signal.raise_signal(signal.SIGHUP)
        except KeyboardInterrupt:
            pass
    # a verb that catches the interrupt in its own block keeps what it has (record's JSON)
    with ending_signals(guard_outputs=True):
        with ending_signals():
            try:
                signal.raise_signal(signal.SIGTERM)
            except KeyboardInterrupt:
                pass
        write_json({"kept": True}, out)
    assert out.exists()
    write_json({"x": 1}, tmp_path / "after.json")  # the signal is forgotten once the block ended
    assert (tmp_path / "after.json").exists()


@pytest.mark.timeout(60)
def test_stale_temporary_outputs_of_dead_writers_are_swept(tmp_path: Path, dead_pid: int) -> None:
    from app.commands._common import write_json

    out = tmp_path / "out.json"
    stale = partial_name(out, dead_pid)
    stale.write_text('{"half": ', encoding="utf-8")
    live_proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        live = partial_name(out, live_proc.pid)  # a writer that still runs: not ours to remove
        live.write_text('{"being": ', encoding="utf-8")
        other = partial_name(tmp_path / "other.json", dead_pid)  # another output's: left for its next write
        other.write_text("{", encoding="utf-8")
        odd = tmp_path / ".out.json.partial-x1"  # not a writer's name at all
        odd.write_text("{", encoding="utf-8")
        write_json({"x": 1}, out)
        assert out.read_text(encoding="utf-8") == '{\n  "x": 1\n}\n'
        assert not stale.exists() and live.exists() and other.exists() and odd.exists()
        assert sweep_stale_partials(tmp_path / "other.json") == [other] and not other.exists()
        assert sweep_stale_partials(out) == [] and live.exists()
        mine = partial_name(out)  # this process's own name is never swept
        mine.write_text("{", encoding="utf-8")
        assert sweep_stale_partials(out) == [] and mine.exists()
    finally:
        assert live_proc.stdin is not None
        live_proc.stdin.close()
        live_proc.wait(30)


@pytest.mark.timeout(60)
def test_a_killed_exports_hidden_folder_is_swept_by_the_next_export_and_backup(
        lab: Path, tmp_path: Path, dead_pid: int) -> None:
    out = tmp_path / "bids"
    stale = partial_name(out, dead_pid)
    (stale / "sub-P01").mkdir(parents=True)
    (stale / "sub-P01" / "half.edf").write_bytes(b"0" * 100)
    assert main(["sessions", "export", "1", "--out", str(out), "--store", str(lab)]) == 0
    assert (out / "dataset_description.json").exists() and not stale.exists()
    backup = tmp_path / "copy.sqlite"
    stale_copy = partial_name(backup, dead_pid)
    stale_copy.write_bytes(b"SQLite format 3\x00half a copy")
    assert main(["sessions", "backup", "--store", str(lab), "--out", str(backup)]) == 0
    assert not stale_copy.exists() and _partials(tmp_path) == []
    with SessionStore(backup, readonly=True) as store:
        assert len(store.sessions()) == 1
    assert os.path.getsize(backup) > 0
