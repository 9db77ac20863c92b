"""Stimulus onsets marked on the EEG clock match the audio that actually played.

A short protocol (5 tone bursts of 0.5 s, 0.3 s silences) runs through the real session
runner and the real :class:`app.player.StimulusPlayer` into a PulseAudio null sink
started by the test. The sink's monitor is recorded with its own ADC timestamps (on the
same clock); each audio onset found in the recording is compared with its stored
``stim_on`` marker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.support.pulse import (
    MonitorRecorder,
    PulseServer,
    find_onsets,
    reinit_portaudio,
    start_pulse,
)

pytestmark = [pytest.mark.audio, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def pulse() -> Iterator[PulseServer]:
    # a short private folder: unix socket paths are limited to 108 bytes
    runtime = Path(tempfile.mkdtemp(prefix="duygu-pa-"))
    server = start_pulse(runtime)
    # audio threads created from now on (PortAudio's) inherit a higher priority, so a busy
    # machine (parallel test workers) does not starve the stream callbacks
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in server.env().items():
                mp.setenv(key, value)
            reinit_portaudio()
            yield server
    finally:
        with contextlib.suppress(PermissionError):
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        server.stop()
        reinit_portaudio()
        shutil.rmtree(runtime, ignore_errors=True)


def _write_protocol(folder: Path, n: int = 5, music_s: float = 0.5, silence_s: float = 0.3,
                    baseline_s: float = 1.5) -> Path:
    sfreq = 22050
    t = np.arange(int(1.0 * sfreq)) / sfreq
    lines = ["[protocol]", 'name = "timing"', f"music_s = {music_s}", f"silence_s = {silence_s}",
             'order = "fixed"', f"baseline_s = {baseline_s}"]
    for k in range(n):
        # a square-ish tone: full level from its first samples (sharp onset)
        tone = 0.6 * np.sign(np.sin(2 * np.pi * (440 + 110 * k) * t + 0.3))
        sf.write(str(folder / f"tone{k}.wav"), tone.astype(np.float32), sfreq)
        lines += ["[[stimuli]]", f'id = "tone{k}"', f'path = "tone{k}.wav"', f'genre = "g{k % 2}"',
                  f'emotion = "{("happy", "sad", "relaxing", "tense")[k % 4]}"']
    path = folder / "timing.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_marked_onsets_match_the_played_audio(pulse: PulseServer, tmp_path: Path) -> None:
    from acquisition.session.protocol import load_protocol, preflight
    from acquisition.session.runner import SessionRunner
    from acquisition.sources.simulated import SimulatedEpocSource
    from acquisition.store.sqlite import SessionStore
    from app.player import StimulusPlayer, check_output

    protocol = load_protocol(_write_protocol(tmp_path))
    report = preflight(protocol, audio_check=lambda: check_output("pulse"), store_dir=tmp_path)
    assert report.audio_output and "pulse" in report.audio_output

    monitor = MonitorRecorder()
    assert monitor.start(), "the monitor's ADC timing did not settle"
    store = SessionStore(tmp_path / "store.sqlite")
    source = SimulatedEpocSource(seed=1)
    try:
        with source:
            runner = SessionRunner(protocol, source, store, "P01", player=StimulusPlayer("pulse"),
                                   labels="auto")
            result = runner.run()
    finally:
        monitor.stop()
    assert result.status == "completed"
    markers = {m.text: m.t for m in store.markers(result.session_id)}
    marked = np.array([markers[f"stim_on:tone{k}"] for k in range(5)])
    x, t = monitor.signal()
    onsets = find_onsets(x, t)
    assert len(onsets) == 5, f"found {len(onsets)} audio onsets, expected 5"
    offsets_ms = (onsets - np.sort(marked)) * 1000.0
    print("onset - marker (ms):", np.round(offsets_ms, 2))
    assert abs(offsets_ms.mean()) <= 5.0, offsets_ms
    assert offsets_ms.std() <= 2.0, offsets_ms
    # the stored trials carry the same onsets and sample indices inside the EEG
    trials = store.trials(result.session_id)
    assert [tr.stimulus_id for tr in trials] == [f"tone{k}" for k in range(5)]
    assert np.allclose([tr.onset_t for tr in trials], marked)
    _data, stamps, indices = store.eeg(result.session_id)
    for tr in trials:
        pos = np.searchsorted(indices, tr.onset_index)
        assert abs(stamps[pos] - tr.onset_t) <= 1.0 / 128 + 1e-6
    store.close()


def test_stop_fades_out_early_and_reports_times(pulse: PulseServer) -> None:
    from app.player import StimulusPlayer

    sfreq = 22050
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(3 * sfreq) / sfreq)
    with StimulusPlayer("pulse") as player:
        assert player.samplerate_hz > 0 and player.channels >= 1
        onset = player.play_array(tone, sfreq)
        assert onset is not None and player.playing
        times = player.stop()
        assert times is not None and times.stopped_early
        assert times.onset_t == onset and 0 < times.offset_t - times.onset_t < 0.5
        assert not player.playing
        again = player.play_array(tone[: sfreq // 4], sfreq)  # the stream keeps running
        done = player.wait(5.0)
        assert done is not None and done.onset_t == again and not done.stopped_early
        assert done.offset_t - done.onset_t == pytest.approx(0.25, abs=0.002)


def test_prepare_segment_resamples_maps_channels_and_fades() -> None:
    from app.player import prepare_segment

    sfreq = 22050
    mono = np.ones(sfreq, np.float32) * 0.5
    out = prepare_segment(mono, sfreq, 44100, 2, fade_ms=10)
    assert out.shape == (44100, 2) and out.dtype == np.float32
    assert np.array_equal(out[:, 0], out[:, 1])
    n_fade = 441
    assert out[0, 0] == 0 and abs(out[n_fade, 0] - 0.5) < 0.01 and abs(out[22050, 0] - 0.5) < 0.01
    assert np.all(np.diff(out[:n_fade, 0]) >= -1e-6) and out[-1, 0] < 0.01
    stereo = np.stack([np.full(1000, 0.2), np.full(1000, 0.6)], axis=1)
    down = prepare_segment(stereo, 48000, 48000, 1, fade_ms=0)
    assert down.shape == (1000, 1) and np.allclose(down, 0.4)


def test_no_audio_device_is_a_clear_error() -> None:
    from app.player import AudioError, StimulusPlayer, check_output

    with pytest.raises(AudioError, match=r"no audio output device \('no-such-device-xyz'\).*--no-audio"):
        check_output("no-such-device-xyz")
    with pytest.raises(AudioError, match=r"no audio output device"):
        StimulusPlayer("no-such-device-xyz").open()
