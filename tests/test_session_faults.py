"""Session integrity under real faults: the session pauses, resumes by itself when the
fault clears, fails after ``--max-outage-s`` when it does not, and never says
"completed" over missing EEG or labels a trial that holds an outage.

The LSL cases run ``duygu session run`` as a user would, against a real pylsl outlet in
another process (EmotivPRO's layout, a sample-index ramp on AF3); the outlet is killed and
restarted by the test.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from support.gui import write_protocol
from support.lsl_outlets import start_outlet, stop_outlet

from acquisition.errors import SourceError
from acquisition.session.runner import SessionRunner
from acquisition.sources.base import SourceStatus, local_clock
from acquisition.sources.replay import ReplaySource
from acquisition.store.sqlite import SessionStore
from tests.support.sources import PausableSource, ramp_recording, write_csv

ROOT = Path(__file__).resolve().parents[1]
START_S = 60.0  # an outlet is a new Python process: on a busy machine it can take a while


class SessionProcess:
    """``duygu session run`` in a child process, its stderr read line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "session", "run", *args], cwd=ROOT,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._out: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        # stdout has its own reader: ``communicate()`` would also read stderr and take
        # lines away from ``_pump`` (a race that lost the last lines)
        self._out_reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._out_reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        self._out.append(self.proc.stdout.read())

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line.rstrip())
        self._queue.put(None)

    def wait_for_line(self, text: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no stderr line with {text!r} within {timeout_s} s; got {self.lines}") from None
            if line is None:
                raise AssertionError(f"the session ended before {text!r}; stderr: {self.lines}")
            self.lines.append(line)
            if text in line:
                return line

    def finish(self, timeout_s: float) -> tuple[int, str, list[str]]:
        self.proc.wait(timeout=timeout_s)
        self._out_reader.join(timeout=10)
        out = "".join(self._out)
        while True:
            line = self._queue.get(timeout=10)
            if line is None:
                break
            self.lines.append(line)
        return self.proc.returncode, out, self.lines


@pytest.fixture
def emotiv_stream() -> Iterator[dict[str, object]]:
    """An EmotivPRO-layout outlet: ``start()`` (re)starts it on the same clock and id."""
    name = f"duygu-fault-{uuid.uuid4().hex[:8]}"
    sid = f"emotiv-{uuid.uuid4().hex[:8]}"
    t0 = local_clock()
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        procs.append(start_outlet("emotiv", "--name", name, "--source-id", sid, "--t0", repr(t0)))

    def kill() -> None:
        stop_outlet(procs[-1])

    state: dict[str, object] = {"name": name, "start": start, "kill": kill}
    start()
    yield state
    for p in procs:
        stop_outlet(p)


def _session_args(tmp_path: Path, name: str, *extra: str) -> list[str]:
    protocol = write_protocol(tmp_path / "stimuli", n_per_class=1, music_s=3.0, silence_s=1.0)
    return ["--protocol", str(protocol), "--participant", "P07", "--source", f"lsl:{name}",
            "--labels", "auto", "--no-audio", "--no-markers", "--store", str(tmp_path / "lab.sqlite"), *extra]


def _await_stream(name: str) -> None:
    import pylsl

    assert pylsl.resolve_bypred(f"name='{name}'", 1, START_S), f"outlet {name} did not appear"


@pytest.mark.timeout(240)
def test_lsl_outage_of_4_s_pauses_and_the_session_completes_by_itself(
        tmp_path: Path, emotiv_stream: dict[str, object]) -> None:
    name = str(emotiv_stream["name"])
    _await_stream(name)
    run = SessionProcess(*_session_args(tmp_path, name))
    run.wait_for_line("trial 2/4", timeout_s=90)
    emotiv_stream["kill"]()  # type: ignore[operator]
    run.wait_for_line("session paused: source lost", timeout_s=30)
    threading.Event().wait(4.0)  # the outage itself (the headset is away for 4 s)
    emotiv_stream["start"]()  # type: ignore[operator]
    code, out, lines = run.finish(timeout_s=150)
    assert code == 0, lines
    # the runner resumes, or the fault cleared before its pause took hold (a loaded machine)
    assert any("session resumed" in line or "source fault cleared" in line for line in lines), lines
    assert not any("Traceback" in line for line in lines)
    session_id = int(out.split()[-1])
    with SessionStore(tmp_path / "lab.sqlite", readonly=True) as store:
        assert store.session(session_id).status == "completed"
        trials = store.trials(session_id)
        complete = [t for t in trials if t.status == "complete"]
        assert sorted(t.stimulus_id for t in complete) == ["happy-0", "relaxing-0", "sad-0", "tense-0"]
        assert all(t.label for t in complete)  # every stimulus labelled once
        assert all(t.label is None for t in trials if t.status == "interrupted")
        gaps = store.gaps(session_id)
        assert len(gaps) == 1 and gaps[0].reason == "device lost", gaps  # the outage is one gap
        assert gaps[0].n_missing > 3 * 128
        for t in complete:  # no labelled trial spans it
            assert not t.onset_index <= gaps[0].after_index < t.offset_index, (t, gaps[0])
        data, _, _ = store.eeg(session_id)
        ramp = np.diff(data[:, 0])  # AF3 is the outlet's sample index: one jump, the outage
        assert (ramp != 1).sum() == 1 and ramp.max() == gaps[0].n_missing + 1
        texts = [m.text for m in store.markers(session_id)]
        assert any(t.startswith("fault:source:") for t in texts) and "fault_cleared:source" in texts
        for trial in store.labelled_trials():  # training sees no trial with the outage
            assert trial.n_missing == 0 and len(trial.contiguous_pieces()) == 1


@pytest.mark.timeout(180)
def test_lsl_outage_that_never_ends_fails_after_max_outage(tmp_path: Path, emotiv_stream: dict[str, object]) -> None:
    name = str(emotiv_stream["name"])
    _await_stream(name)
    run = SessionProcess(*_session_args(tmp_path, name, "--max-outage-s", "10"))
    run.wait_for_line("trial 2/4", timeout_s=90)
    emotiv_stream["kill"]()  # type: ignore[operator]
    killed = time.monotonic()
    code, out, lines = run.finish(timeout_s=60)
    assert time.monotonic() - killed < 30
    assert code == 1
    last = [line for line in lines if line.strip()][-1]
    assert last.startswith("duygu: session ") and " failed: " in last and "source lost" in last, lines
    assert not any("Traceback" in line for line in lines)
    session_id = int(out.split()[-1])
    with SessionStore(tmp_path / "lab.sqlite", readonly=True) as store:
        info = store.session(session_id)
        assert info.status == "failed" and info.n_samples > 3 * 128
        assert any(m.text.startswith("session_failed:") for m in store.markers(session_id))
    export = subprocess.run([sys.executable, "-m", "app.cli", "sessions", "export", str(session_id), "--format",
                             "csv", "--out", str(tmp_path / "export"), "--store", str(tmp_path / "lab.sqlite")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert export.returncode == 0, export.stderr
    rows = np.loadtxt(tmp_path / "export" / "eeg.csv", delimiter=",", skiprows=1)
    assert len(rows) == info.n_samples  # the EEG before the outage is exported


# -- runner-level faults ------------------------------------------------------------------
def _short(folder: Path, n: int, music_s: float, silence_s: float) -> object:
    from acquisition.session.protocol import load_protocol

    path = write_protocol(folder, n_per_class=1, music_s=music_s, silence_s=silence_s)
    text = path.read_text()
    blocks = text.split("[[stimuli]]")
    path.write_text("[[stimuli]]".join(blocks[: n + 1]))
    return load_protocol(path)


@pytest.mark.timeout(60)
def test_a_source_that_stops_mid_session_fails_the_session(tmp_path: Path) -> None:
    """A replay that reaches its end (or an operator disconnect) is STOPPED for good: the
    session ends as failed at once, never as completed over missing EEG."""
    csv = write_csv(tmp_path / "short.csv", ["time", "AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8",
                                             "T8", "FC6", "F4", "F8", "AF4"],
                    [[i / 128.0, *row] for i, row in enumerate(ramp_recording(int(2.5 * 128)).tolist())])
    protocol = _short(tmp_path / "stim", 3, 1.0, 0.2)
    with SessionStore(tmp_path / "s.sqlite") as store:
        source = ReplaySource(csv, speed=1.0)
        runner = SessionRunner(protocol, source, store, "P01", max_outage_s=60)  # type: ignore[arg-type]
        result = runner.run()
        source.disconnect()
        assert result.status == "failed" and "source stopped" in result.reason
        assert store.session(result.session_id).status == "failed"
        assert all(t.status == "complete" for t in store.trials(result.session_id)
                   if t.label is not None)
        assert len([t for t in store.trials(result.session_id) if t.label]) < 3


@pytest.mark.timeout(60)
@pytest.mark.parametrize("reconnect", [True, False], ids=["reconnected", "never-back"])
def test_a_disconnected_source_pauses_the_session_until_it_streams_again(tmp_path: Path, reconnect: bool) -> None:
    """A device disconnected mid-stimulus (not a replay at its end) is a fault like a lost
    one: the session pauses and resumes by itself once the source streams again, or fails
    after ``max_outage_s``; the interrupted trial says why and the store holds the fault."""
    from acquisition.sources.simulated import SimulatedEpocSource

    protocol = _short(tmp_path / "stim", 2, 1.0, 0.2)
    events: queue.Queue[object] = queue.Queue()
    kinds: list[str] = []
    with SessionStore(tmp_path / "s.sqlite") as store, SimulatedEpocSource(seed=3, speed=1.0) as source:
        runner = SessionRunner(protocol, source, store, "P01", max_outage_s=30 if reconnect else 1.5)  # type: ignore[arg-type]

        def on_event(event: object) -> None:
            kinds.append(event.kind)  # type: ignore[attr-defined]
            events.put(event)
            if event.kind == "stim_on" and kinds.count("stim_on") == 1:  # type: ignore[attr-defined]
                source.disconnect()

        runner.add_listener(on_event)
        runner.start()
        if reconnect:
            while True:  # the runner pauses; then the device comes back
                event = events.get(timeout=20)
                if event.kind == "paused":  # type: ignore[attr-defined]
                    assert "source stopped" in event.message  # type: ignore[attr-defined]
                    break
            source.connect(10)
        result = runner.join(40)
        assert result is not None
        markers = [m.text for m in store.markers(result.session_id)]
        assert any(m.startswith("fault:source:source stopped") for m in markers)
        interrupted = [t for t in store.trials(result.session_id) if t.status == "interrupted"]
        assert len(interrupted) == 1 and interrupted[0].label is None
        if reconnect:
            assert result.status == "completed", result.messages
            assert "fault_cleared:source" in markers and "resume" in markers
            # the time the device was away is a gap (the reader starts again where it was)
            gaps = store.gaps(result.session_id)
            assert len(gaps) == 1 and gaps[0].reason == "device lost" and gaps[0].n_missing > 0
            done = [t for t in store.trials(result.session_id) if t.status == "complete"]
            assert len(done) == 2 and all(t.label for t in done)
            assert runner.state.value == "completed"
        else:
            assert result.status == "failed" and "outlasted --max-outage-s 1.5" in result.reason
            assert "source stopped" in result.reason
            assert store.session(result.session_id).status == "failed"


@pytest.mark.timeout(60)
def test_a_session_ended_mid_stimulus_says_why_its_trial_was_cut(tmp_path: Path) -> None:
    """The app closing during a stimulus: the runner ends ``interrupted`` (not aborted) and
    the cut trial's reason is the session's end, not an operator pause."""
    from acquisition.session.runner import RunnerState
    from acquisition.sources.simulated import SimulatedEpocSource

    protocol = _short(tmp_path / "stim", 2, 2.0, 0.2)
    with SessionStore(tmp_path / "s.sqlite") as store, SimulatedEpocSource(seed=4, speed=1.0) as source:
        runner = SessionRunner(protocol, source, store, "P01")  # type: ignore[arg-type]
        cut: list[object] = []
        stored_at_onset: list[list[str]] = []

        def at_onset(event: object) -> None:
            if event.kind == "stim_on":  # type: ignore[attr-defined]
                # already in the store when it starts playing: a crash now still leaves it
                stored_at_onset.append([m.text for m in store.markers(runner.session_id)])
                runner.interrupt()

        runner.add_listener(at_onset)
        runner.add_listener(lambda e: cut.append(e) if e.kind == "trial_interrupted" else None)
        result = runner.run()
        assert [e.repeated for e in cut] == [False]  # type: ignore[attr-defined]  # nothing comes again
        assert len(stored_at_onset) == 1 and any(t.startswith("stim_on:") for t in stored_at_onset[0])
        texts = [m.text for m in store.markers(result.session_id)]
        assert sum(t.startswith("stim_on:") for t in texts) == 1  # stored once, not again at the end
        assert result.status == "interrupted" and runner.state == RunnerState.INTERRUPTED
        assert [t.reason for t in result.interrupted] == ["session interrupted"]
        assert store.session(result.session_id).status == "interrupted"


@pytest.mark.timeout(60)
def test_a_session_never_starts_on_a_lost_source(tmp_path: Path) -> None:
    protocol = _short(tmp_path / "stim", 2, 1.0, 0.2)
    source = PausableSource(loss_timeout_s=0.3)
    with source, SessionStore(tmp_path / "s.sqlite") as store:
        assert source.wait_for_status(SourceStatus.STREAMING, 10)
        source.pause()
        assert source.wait_for_status(SourceStatus.LOST, 10)
        runner = SessionRunner(protocol, source, store, "P01")  # type: ignore[arg-type]
        with pytest.raises(SourceError, match=r"is lost.*a session starts only on a streaming source"):
            runner.run()
        assert store.sessions() == []  # nothing was stored


@pytest.mark.timeout(60)
def test_session_run_refuses_a_source_that_does_not_stream_in_one_line(tmp_path: Path) -> None:
    """The CLI's refusal to start is one line, with no traceback, and stores nothing: the
    store it made for the session (none was there) is removed again, -wal and -shm too."""
    protocol = write_protocol(tmp_path / "stim", n_per_class=1, music_s=1.0, silence_s=0.2)
    store = tmp_path / "s.sqlite"
    done = subprocess.run([sys.executable, "-m", "app.cli", "session", "run", "--source",
                           f"lsl:no-such-headset-{uuid.uuid4().hex[:8]}", "--participant", "P01", "--protocol",
                           str(protocol), "--labels", "auto", "--no-audio", "--no-markers", "--store", str(store)],
                          cwd=ROOT, capture_output=True, text=True, timeout=50)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("duygu: error:")]
    assert len(errors) == 1 and "no LSL stream with name 'no-such-headset-" in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stim"]  # no empty store made for it is left


@pytest.mark.timeout(90)
def test_store_locked_for_8_s_pauses_and_resumes_by_itself(tmp_path: Path) -> None:
    """Another process holds the store's write lock for 8 s (longer than the 5 s busy
    timeout): writes fail, the session pauses, and resumes when the lock is gone."""
    from acquisition.sources.simulated import SimulatedEpocSource

    protocol = _short(tmp_path / "stim", 3, 1.0, 0.2)
    path = tmp_path / "s.sqlite"
    events: list[str] = []
    with SessionStore(path) as store, SimulatedEpocSource(seed=1, speed=1.0) as source:
        runner = SessionRunner(protocol, source, store, "P01", max_outage_s=60)  # type: ignore[arg-type]
        locker: list[subprocess.Popen[str]] = []

        def on_event(event: object) -> None:
            events.append(f"{event.kind}:{getattr(event, 'fault', None) or ''}")  # type: ignore[attr-defined]
            if event.kind == "stim_on" and not locker:  # type: ignore[attr-defined]
                code = ("import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
                        "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(8); c.execute('COMMIT')")
                locker.append(subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                                               text=True))

        runner.add_listener(on_event)
        result = runner.run()
        locker[0].wait(30)
        assert result.status == "completed", result.messages
        # the fault is told and its end too; whether the runner got to pause in between
        # (and so told "resumed") depends on where it was when the lock went away
        assert "fault:store" in events and "fault_cleared:store" in events
        assert events.index("fault:store") < events.index("fault_cleared:store")
        # the store holds the fault too, in order, each at its own time, however short it was
        markers = store.markers(result.session_id)
        texts = [m.text for m in markers]
        faulted = next(i for i, t in enumerate(texts) if t.startswith("fault:store:"))
        cleared = texts.index("fault_cleared:store")
        assert faulted < cleared and markers[faulted].t < markers[cleared].t
        complete = [t for t in store.trials(result.session_id) if t.status == "complete"]
        assert sorted(t.label for t in complete) == ["happy", "relaxing", "sad"]
        _, _, idx = store.eeg(result.session_id)
        assert np.all(np.diff(idx) == 1)  # nothing the source delivered was lost


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs: a real file system that fills up (the test runs as root, as CI does)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    assert done.returncode == 0, f"cannot mount a tmpfs for the disk-full test: {done.stderr.strip()}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.timeout(90)
def test_disk_full_mid_session_then_freed_resumes_by_itself(tmp_path: Path, small_disk: Path) -> None:
    from acquisition.sources.simulated import SimulatedEpocSource

    protocol = _short(tmp_path / "stim", 3, 1.0, 0.2)
    filler = small_disk / "filler.bin"
    kinds: list[str] = []
    with SessionStore(small_disk / "s.sqlite") as store, SimulatedEpocSource(seed=2, speed=1.0) as source:
        runner = SessionRunner(protocol, source, store, "P01", max_outage_s=60)  # type: ignore[arg-type]

        def on_event(event: object) -> None:
            kind = event.kind  # type: ignore[attr-defined]
            kinds.append(kind)
            if kind == "stim_on" and kinds.count("stim_on") == 1:
                with filler.open("wb") as f:  # another program fills the disk
                    try:
                        while True:
                            f.write(b"\0" * 65536)
                    except OSError:
                        pass
            if kind == "fault" and event.fault == "store":  # type: ignore[attr-defined]
                threading.Timer(3.0, filler.unlink).start()  # ... and frees it 3 s later

        runner.add_listener(on_event)
        result = runner.run()
        assert result.status == "completed", result.messages
        assert "fault" in kinds and "resumed" in kinds
        assert any("full" in m for m in result.messages)
        complete = [t for t in store.trials(result.session_id) if t.status == "complete"]
        assert sorted(t.label for t in complete) == ["happy", "relaxing", "sad"]
        _, _, idx = store.eeg(result.session_id)
        assert np.all(np.diff(idx) == 1)
