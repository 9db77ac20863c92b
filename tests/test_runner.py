"""The session runner: full sessions into a real SQLite store, simulated participant
state, pause/resume/abort, prompts, and failures that pause the session with nothing lost."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from acquisition.errors import ProtocolError
from acquisition.session.protocol import Protocol, parse_protocol
from acquisition.session.runner import RunnerEvent, RunnerState, SessionRunner
from acquisition.sources.simulated import SimulatedEpocSource
from acquisition.store.sqlite import SessionStore

EMOTIONS = ("happy", "sad", "relaxing", "tense")


def _protocol(folder: Path, n: int = 4, music_s: float = 30, silence_s: float = 10, baseline_s: float = 0,
              extra: str = "") -> Protocol:
    sfreq = 8000
    sf.write(str(folder / "a.wav"), (0.1 * np.ones(int(sfreq * (music_s + 1)))).astype(np.float32), sfreq)
    text = (f"[protocol]\nmusic_s = {music_s}\nsilence_s = {silence_s}\nbaseline_s = {baseline_s}\n{extra}\n"
            + "".join(f'[[stimuli]]\nid = "s{k}"\npath = "a.wav"\ngenre = "g{k % 2}"\nemotion = "{EMOTIONS[k % 4]}"\n'
                      for k in range(n)))
    return parse_protocol(text, base_dir=folder)


class Events:
    """Collect runner events; wait for a kind with a timeout."""

    def __init__(self) -> None:
        self.items: list[RunnerEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: RunnerEvent) -> None:
        with self._cond:
            self.items.append(event)
            self._cond.notify_all()

    def wait(self, kind: str, count: int = 1, timeout_s: float = 20.0) -> RunnerEvent:
        with self._cond:
            ok = self._cond.wait_for(lambda: sum(e.kind == kind for e in self.items) >= count, timeout_s)
            assert ok, f"no {count}x {kind!r} event; got {[e.kind for e in self.items]}"
            return [e for e in self.items if e.kind == kind][count - 1]

    def kinds(self) -> list[str]:
        return [e.kind for e in self.items]


@pytest.mark.timeout(60)
def test_time_scaled_session_records_labelled_trials(tmp_path: Path) -> None:
    protocol = _protocol(tmp_path, n=4, baseline_s=8)
    store = SessionStore(tmp_path / "store.sqlite")
    states: list[tuple[str, str, str]] = []
    with SimulatedEpocSource(seed=5, speed=64) as source:
        runner = SessionRunner(protocol, source, store, "P01", time_scale=64)
        runner.add_listener(lambda e: states.append((e.kind, e.stimulus_id or "", source.state)))
        result = runner.run()
    assert result.status == "completed" and runner.state == RunnerState.COMPLETED
    info = store.session(result.session_id)
    assert info.status == "completed" and info.participant == "P01"
    assert info.protocol["time_scale"] == 64 and info.protocol["order_ids"] == ["s0", "s1", "s2", "s3"]
    trials = store.trials(result.session_id)
    assert [t.label for t in trials] == [t.intended for t in trials] == list(EMOTIONS)
    _data, stamps, indices = store.eeg(result.session_id)
    assert np.all(np.diff(indices) == 1)  # no sample lost between session start and end
    for t in trials:
        n = t.offset_index - t.onset_index
        assert abs(n - 30 * 128) <= 0.1 * 30 * 128, n  # time_scale == speed: ~30 s of EEG per trial
        k = np.searchsorted(indices, [t.onset_index, t.offset_index])
        assert stamps[k[0]] >= t.onset_t > stamps[k[0] - 1]
        assert stamps[k[1]] >= t.offset_t > stamps[k[1] - 1]
    # the simulated participant felt the stimulus's emotion during the music only
    on = [(sid, state) for kind, sid, state in states if kind == "stim_on"]
    assert on == [(f"s{k}", EMOTIONS[k]) for k in range(4)]
    assert all(state == "neutral" for kind, _, state in states if kind in ("stim_off", "label", "session_end"))
    texts = [m.text for m in store.markers(result.session_id)]
    assert texts[0] == "session_start" and texts[-1] == "session_end"
    assert texts[1:3] == ["baseline_start", "baseline_end"]
    assert texts.count("label:happy") == 1 and "stim_on:s3" in texts
    labelled = store.labelled_trials(session_ids=[result.session_id])
    assert [lt.label for lt in labelled] == list(EMOTIONS)
    assert all(abs(len(lt.data) - 3840) < 400 for lt in labelled)
    store.close()


@pytest.mark.timeout(60)
def test_prompt_pause_resume_and_unknown_label(tmp_path: Path) -> None:
    protocol = _protocol(tmp_path, n=2, music_s=1.2, silence_s=0.2, extra="sam = true")
    store = SessionStore(tmp_path / "store.sqlite")
    events = Events()
    with SimulatedEpocSource(seed=1, speed=1) as source:
        runner = SessionRunner(protocol, source, store, "P02", labels="prompt")
        runner.add_listener(events)
        # the operator pauses as the first stimulus starts (from the runner's own thread,
        # so the pause surely lands inside the stimulus however busy the machine is)
        runner.add_listener(lambda e: runner.pause() if e.kind == "stim_on" and e.stimulus_id == "s0"
                            and not runner.trials and events.kinds().count("stim_on") == 1 else None)
        runner.start()
        events.wait("paused")
        assert runner.state == RunnerState.PAUSED and source.state == "neutral"
        assert runner.resume()
        events.wait("resumed")
        events.wait("label_prompt")
        with pytest.raises(ProtocolError, match=r"label must be one of happy, sad, relaxing, tense, got 'angry'"):
            runner.submit_label("angry", 5, 5)
        with pytest.raises(ProtocolError, match=r"SAM valence must be a whole number 1-9, got 12"):
            runner.submit_label("sad", 12, 5)
        with pytest.raises(ProtocolError, match=r"asks for SAM ratings"):
            runner.submit_label("sad")
        runner.submit_label("sad", 2, 3)
        events.wait("label_prompt", count=2)
        runner.submit_label("tense", 3, 8)
        result = runner.join(20)
    assert result is not None and result.status == "completed" and result.pauses == 1
    stored = store.trials(result.session_id)
    # the presentation the pause cut short is kept, marked interrupted, never labelled
    assert [(t.stimulus_id, t.status, t.label) for t in stored if t.status == "interrupted"] == [
        ("s0", "interrupted", None)]
    assert len(result.interrupted) == 1 and result.interrupted[0].reason == "paused by the operator"
    trials = [t for t in stored if t.status == "complete"]
    assert [(t.stimulus_id, t.label, t.valence, t.arousal) for t in trials] == [
        ("s0", "sad", 2, 3), ("s1", "tense", 3, 8)]
    texts = [m.text for m in store.markers(result.session_id)]
    assert "trial_interrupted:s0" in texts and "pause:operator" in texts and "resume" in texts
    assert texts.count("stim_on:s0") == 2  # the interrupted presentation, then the full one
    assert trials[0].offset_t - trials[0].onset_t == pytest.approx(1.2, abs=0.1)
    assert [t.trial_id for t in store.labelled_trials()] == [f"{result.session_id}:{t.id}" for t in trials]
    store.close()


@pytest.mark.timeout(60)
def test_abort_keeps_what_was_recorded(tmp_path: Path) -> None:
    protocol = _protocol(tmp_path, n=3, music_s=1, silence_s=0.1)
    store = SessionStore(tmp_path / "store.sqlite")
    events = Events()
    with SimulatedEpocSource(seed=1) as source:
        runner = SessionRunner(protocol, source, store, "P03", labels="prompt")
        runner.add_listener(events)
        runner.start()
        events.wait("label_prompt")
        runner.submit_label("happy")
        events.wait("label_prompt", count=2)
        runner.abort()
        result = runner.join(10)
    assert result is not None and result.status == "aborted"
    assert store.session(result.session_id).status == "aborted"
    trials = store.trials(result.session_id)
    assert [t.label for t in trials] == ["happy", None]
    _, _, indices = store.eeg(result.session_id)
    assert len(indices) > 2 * 128 and np.all(np.diff(indices) == 1)
    store.close()


@pytest.mark.timeout(60)
def test_source_loss_pauses_and_the_session_resumes_by_itself(tmp_path: Path) -> None:
    from tests.support.sources import PausableSource

    protocol = _protocol(tmp_path, n=2, music_s=2.5, silence_s=0.1)
    store = SessionStore(tmp_path / "store.sqlite")
    events = Events()
    source = PausableSource(loss_timeout_s=0.3)
    with source:
        runner = SessionRunner(protocol, source, store, "P04")
        runner.add_listener(events)
        # the headset goes away as the first stimulus starts
        runner.add_listener(lambda e: source.pause() if e.kind == "stim_on" and not runner.trials
                            and events.kinds().count("stim_on") == 1 else None)
        runner.start()
        lost = events.wait("source_lost")
        assert "source lost" in lost.message and events.wait("fault").fault == "source"
        events.wait("paused")
        assert not runner.resume()  # "Resume now" is refused while the source is lost
        source.resume()  # the headset is back: nobody touches the runner
        events.wait("resumed")
        result = runner.join(20)
    assert result is not None and result.status == "completed"
    stored = store.trials(result.session_id)
    assert [(t.stimulus_id, t.status) for t in stored] == [("s0", "interrupted"), ("s0", "complete"),
                                                           ("s1", "complete")]
    assert [t.label for t in stored] == [None, "happy", "sad"]
    data, _, indices = store.eeg(result.session_id)
    assert np.all(np.diff(indices) == 1)  # every sample the source delivered was stored
    ramp = data[:, 0]  # the device's own sample counter: one jump where the headset was away
    jumps = np.flatnonzero(np.diff(ramp) != 1)
    assert len(jumps) == 1 and ramp[jumps[0] + 1] - ramp[jumps[0]] > 0.3 * 128
    gaps = store.gaps(result.session_id)
    assert len(gaps) == 1 and gaps[0].reason == "device lost"
    for t in stored[1:]:  # no complete trial holds the gap
        assert not t.onset_index <= gaps[0].after_index < t.offset_index
    texts = [m.text for m in store.markers(result.session_id)]
    assert any(t.startswith("gap:") for t in texts) and "trial_interrupted:s0" in texts
    assert any(t.startswith("fault:source:source lost") for t in texts) and "resume" in texts
    store.close()


@pytest.mark.timeout(60)
def test_full_store_pauses_and_nothing_is_lost(tmp_path: Path) -> None:
    protocol = _protocol(tmp_path, n=2, music_s=1.0, silence_s=0.1)
    store = SessionStore(tmp_path / "store.sqlite")
    events = Events()
    errors: queue.Queue[str] = queue.Queue()
    with SimulatedEpocSource(seed=2, speed=8) as source:
        runner = SessionRunner(protocol, source, store, "P05")
        runner.add_listener(events)
        runner.add_listener(lambda e: errors.put(e.message) if e.kind == "store_error" else None)

        def fill_disk(event: RunnerEvent) -> None:
            # as the first stimulus starts, the database may not grow any more: SQLite
            # then reports "database or disk is full" (SQLITE_FULL), as on a full disk
            if event.kind == "stim_on" and events.kinds().count("stim_on") == 1:
                with store._lock:
                    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
                    store._conn.execute(f"PRAGMA max_page_count = {pages}")

        runner.add_listener(fill_disk)
        runner.start()
        events.wait("paused")
        message = errors.get(timeout=5)
        assert "store error" in message and "full" in message
        assert not runner.resume()  # "Resume now": still full
        with store._lock:  # space is freed: the recorder's next retry succeeds
            store._conn.execute("PRAGMA max_page_count = 1073741823")
        events.wait("resumed")  # by itself
        result = runner.join(30)
    assert result is not None and result.status == "completed"
    stored = store.trials(result.session_id)
    # the stimulus the fault stopped is kept (written once the store took writes again)
    assert (stored[0].stimulus_id, stored[0].status) == ("s0", "interrupted")
    trials = [t for t in stored if t.status == "complete"]
    assert [t.label for t in trials] == ["happy", "sad"]
    _, _, indices = store.eeg(result.session_id)
    assert indices[0] <= trials[0].onset_index and np.all(np.diff(indices) == 1)
    assert indices[-1] >= trials[-1].offset_index
    store.close()


def test_bad_runner_arguments(tmp_path: Path) -> None:
    protocol = _protocol(tmp_path, n=1, music_s=1)
    store = SessionStore(tmp_path / "store.sqlite")
    source = SimulatedEpocSource()
    with pytest.raises(ProtocolError, match=r"labels must be 'auto' or 'prompt', got 'ask'"):
        SessionRunner(protocol, source, store, "P01", labels="ask")
    with pytest.raises(ProtocolError, match=r"time_scale must be a number > 0, got 0"):
        SessionRunner(protocol, source, store, "P01", time_scale=0)
    store.close()
