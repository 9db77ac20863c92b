"""Audio faults in a real session: the real stimulus player on a private PulseAudio null
sink, a stimulus file that vanishes, and the audio server killed mid-stimulus. Each ends
completed after recovery or failed -- never stuck, never a traceback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from acquisition.session.protocol import load_protocol
from acquisition.session.runner import RunnerEvent, SessionRunner
from acquisition.sources.simulated import SimulatedEpocSource
from acquisition.store.sqlite import SessionStore
from tests.support.gui import write_protocol
from tests.support.pulse import PulseServer, private_pulse

pytestmark = [pytest.mark.audio, pytest.mark.timeout(120)]


@pytest.fixture
def pulse(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    with private_pulse(monkeypatch) as server:
        yield server


def _run(tmp_path: Path, on_event, max_outage_s: float = 30.0) -> tuple[object, SessionStore]:  # type: ignore[no-untyped-def]
    from app.player import StimulusPlayer

    protocol = load_protocol(write_protocol(tmp_path / "stim", n_per_class=1, music_s=1.0, silence_s=0.3))
    store = SessionStore(tmp_path / "s.sqlite")
    with SimulatedEpocSource(seed=4) as source:
        runner = SessionRunner(protocol, source, store, "P01", player=StimulusPlayer(preroll_s=0.5),
                               max_outage_s=max_outage_s)
        runner.add_listener(lambda e: on_event(runner, e))
        result = runner.run()
    return result, store


def test_a_stimulus_file_deleted_mid_session_pauses_until_it_is_back(
        tmp_path: Path, pulse: dict[str, object]) -> None:
    kinds: list[str] = []

    def on_event(runner: SessionRunner, event: RunnerEvent) -> None:
        kinds.append(event.kind)
        if event.kind == "trial_start" and event.stimulus_id == "sad-0" and "fault" not in kinds:
            path = next(s.path for s in runner.protocol.stimuli if s.id == "sad-0")
            path.rename(path.with_suffix(".away"))  # the file is gone as the trial starts
            threading.Timer(2.0, lambda: path.with_suffix(".away").rename(path)).start()  # and back 2 s later

    result, store = _run(tmp_path, on_event)
    assert result.status == "completed", result.messages  # type: ignore[attr-defined]
    assert any("stimulus 'sad-0' unreadable" in m for m in result.messages)  # type: ignore[attr-defined]
    assert "fault" in kinds and "fault_cleared" in kinds and "resumed" in kinds
    complete = [t for t in store.trials(result.session_id) if t.status == "complete"]  # type: ignore[attr-defined]
    assert sorted(t.stimulus_id for t in complete) == ["happy-0", "relaxing-0", "sad-0", "tense-0"]
    store.close()


def test_the_audio_server_killed_mid_stimulus_pauses_and_recovers_when_it_is_back(
        tmp_path: Path, pulse: dict[str, object]) -> None:
    kinds: list[str] = []
    servers: list[PulseServer] = pulse["servers"]  # type: ignore[assignment]

    def on_event(runner: SessionRunner, event: RunnerEvent) -> None:
        kinds.append(event.kind)
        if event.kind == "stim_on" and event.stimulus_id == "sad-0" and "fault" not in kinds:
            servers[-1].process.kill()  # the audio server dies while the music plays
        if event.kind == "fault" and event.fault == "audio" and len(servers) == 1:
            threading.Timer(1.0, pulse["restart"]).start()  # type: ignore[arg-type]

    result, store = _run(tmp_path, on_event)
    assert result.status == "completed", result.messages  # type: ignore[attr-defined]
    assert any("audio output" in m for m in result.messages)  # type: ignore[attr-defined]
    stored = store.trials(result.session_id)  # type: ignore[attr-defined]
    assert ("sad-0", "interrupted") in [(t.stimulus_id, t.status) for t in stored]
    assert sorted(t.stimulus_id for t in stored if t.status == "complete") == [
        "happy-0", "relaxing-0", "sad-0", "tense-0"]
    store.close()


def test_the_audio_server_gone_for_good_fails_the_session_after_max_outage(
        tmp_path: Path, pulse: dict[str, object]) -> None:
    servers: list[PulseServer] = pulse["servers"]  # type: ignore[assignment]

    def on_event(runner: SessionRunner, event: RunnerEvent) -> None:
        if event.kind == "stim_on" and event.stimulus_id == "sad-0":
            servers[-1].process.kill()

    result, store = _run(tmp_path, on_event, max_outage_s=3.0)
    assert result.status == "failed" and "audio output" in result.reason  # type: ignore[attr-defined]
    assert store.session(result.session_id).status == "failed"  # type: ignore[attr-defined]
    labelled = [t for t in store.trials(result.session_id) if t.label]  # type: ignore[attr-defined]
    assert [t.stimulus_id for t in labelled] == ["happy-0"]
    store.close()
