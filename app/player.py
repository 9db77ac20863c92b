"""The stimulus player: plays music excerpts and stamps their onset and offset on the
EEG clock from the audio stream's DAC time.

One PortAudio output stream stays open for the whole session and plays silence between
stimuli, so its latency is settled before the first stimulus. A segment is handed to
the stream's callback; the callback writes it and records
``time.outputBufferDacTime`` (when the first frame of the buffer reaches the DAC, on
PortAudio's clock) plus the frame offset inside the buffer. PortAudio's clock is
mapped to LSL's ``local_clock`` with an offset measured right before each segment
(``local_clock() - stream.time``, the tightest of a few probes). So a marker says when
the sound came out, not when :meth:`StimulusPlayer.play` returned.

Only this module (in ``app/``) imports sounddevice; the session runner sees it through
the :class:`acquisition.session.runner.Player` interface.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition.errors import DuyguError, SourceError
from acquisition.session.protocol import Stimulus, read_segment
from acquisition.session.runner import PlaybackTimes
from acquisition.sources.base import local_clock

log = logging.getLogger(__name__)


def _monotonic() -> float:
    import time

    return time.monotonic()


class AudioError(SourceError):
    """No usable audio output (no device, PortAudio missing, stream failed)."""


def _sounddevice() -> Any:
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library missing
        raise AudioError(f"no audio output: PortAudio is not available ({exc}); install libportaudio2") from None
    return sd


def find_output_device(device: str | int | None = None) -> dict[str, Any]:
    """The output device to use, as sounddevice describes it.

    Raises
    ------
    AudioError
        There is no output device (or not the one named).
    """
    sd = _sounddevice()
    try:
        info = sd.query_devices(device, "output")
    except (ValueError, sd.PortAudioError) as exc:
        name = "default" if device is None else repr(device)
        raise AudioError(f"no audio output device ({name}): {exc}; use --no-audio to run silently") from None
    if int(info.get("max_output_channels", 0)) < 1:
        raise AudioError(f"audio device {info.get('name')!r} has no output channels; use --no-audio to run silently")
    return dict(info)


def check_output(device: str | int | None = None) -> str:
    """Describe the audio output, or raise :class:`AudioError` (for the preflight)."""
    info = find_output_device(device)
    return f"{info['name']} ({int(info['default_samplerate'])} Hz, {int(info['max_output_channels'])} ch)"


def prepare_segment(data: NDArray[np.floating], sfreq_hz: float, out_hz: float, out_channels: int,
                    fade_ms: float = 15.0) -> NDArray[np.float32]:
    """Resample to the device rate, map channels (mono <-> stereo), apply fades.

    Parameters
    ----------
    data : ndarray, shape (n_frames,) or (n_frames, n_channels)
    sfreq_hz, out_hz : float
        File and device rates (``scipy.signal.resample_poly`` if they differ).
    out_channels : int
        Device channels: mono is copied to every channel, stereo is averaged to mono
        for a mono device, extra file channels are dropped.
    fade_ms : float
        Linear fade-in and fade-out length.
    """
    from scipy.signal import resample_poly

    x = np.asarray(data, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if abs(sfreq_hz - out_hz) > 1e-6:
        ratio = Fraction(out_hz / sfreq_hz).limit_denominator(1000)
        x = resample_poly(x, ratio.numerator, ratio.denominator, axis=0)
    if out_channels == 1:
        x = x.mean(axis=1, keepdims=True)
    elif x.shape[1] == 1:
        x = np.repeat(x, out_channels, axis=1)
    elif x.shape[1] < out_channels:
        x = np.concatenate([x, np.zeros((len(x), out_channels - x.shape[1]))], axis=1)
    else:
        x = x[:, :out_channels]
    n_fade = min(len(x) // 2, round(fade_ms / 1000.0 * out_hz))
    if n_fade > 0:
        ramp = np.linspace(0.0, 1.0, n_fade, endpoint=False)[:, None]
        x[:n_fade] *= ramp
        x[-n_fade:] *= ramp[::-1]
    return np.ascontiguousarray(np.clip(x, -1.0, 1.0), dtype=np.float32)


@dataclass
class _Playing:
    data: NDArray[np.float32]
    clock_offset_s: float
    pos: int = 0
    end: int = 0
    onset_t: float | None = None
    offset_t: float | None = None
    stop_requested: bool = False
    stopped_early: bool = False
    glitches: int = 0


class StimulusPlayer:
    """Plays stimuli through sounddevice with DAC-time onset/offset on the EEG clock.

    Parameters
    ----------
    device : str or int, optional
        Output device (sounddevice name or index); default device if ``None``.
    latency_s : float
        Requested output latency. The DAC time accounts for whatever it really is, so a
        generous buffer costs no accuracy; it avoids underruns on a busy machine (with
        0.15 s, two CPU-bound processes on two cores caused underruns; 0.3 s did not).
        A :meth:`stop` fades out at most this long after it is called.
    fade_ms : float
        Fade-in/out of every segment and of :meth:`stop` (10-20 ms avoids clicks).
    samplerate_hz : float, optional
        Stream rate (default: the device's default rate).
    settle_timeout_s : float
        :meth:`open` waits at most this long for the stream's latency to settle.
    preroll_s : float
        :meth:`open` lets the stream play silence at least this long: the audio server
        adjusts its buffering while a new stream starts, and DAC times are only
        trustworthy after that (PulseAudio needs about a second).

    Use as ``with StimulusPlayer() as player: player.play(stim, 30.0); player.wait()``.
    """

    def __init__(self, device: str | int | None = None, *, latency_s: float = 0.3, fade_ms: float = 15.0,
                 samplerate_hz: float | None = None, settle_timeout_s: float = 5.0,
                 preroll_s: float = 2.0) -> None:
        self.device = device
        self.latency_s = latency_s
        self.fade_ms = fade_ms
        self.settle_timeout_s = settle_timeout_s
        self.preroll_s = preroll_s
        self._requested_hz = samplerate_hz
        self.samplerate_hz = 0.0
        self.channels = 0
        self.device_name = ""
        self._stream: Any = None
        self._lock = threading.Lock()
        self._playing: _Playing | None = None
        self._started = threading.Event()
        self._done = threading.Event()
        self._settled = threading.Condition()
        self._intercepts: list[tuple[float, float]] = []  # (callback time, dac - frames/rate)
        self._frames_out = 0
        self._first_callback_t = float("inf")
        self._last_callback_mono = 0.0  # time.monotonic() of the latest callback
        self.errors: list[str] = []

    # -- life cycle ---------------------------------------------------------------------
    def open(self) -> StimulusPlayer:
        """Open and start the output stream, wait until its latency is stable.

        Raises
        ------
        AudioError
            No output device, or the stream cannot be opened.
        """
        if self._stream is not None:
            return self
        sd = _sounddevice()
        info = find_output_device(self.device)
        self.device_name = str(info["name"])
        self.samplerate_hz = float(self._requested_hz or info["default_samplerate"])
        self.channels = min(2, int(info["max_output_channels"]))
        self._last_callback_mono = _monotonic()
        try:
            self._stream = sd.OutputStream(
                device=self.device, samplerate=self.samplerate_hz, channels=self.channels,
                dtype="float32", latency=self.latency_s, callback=self._callback,
            )
            self._stream.start()
        except sd.PortAudioError as exc:
            self._stream = None
            raise AudioError(f"audio output {self.device_name!r} cannot be opened: {exc}") from None
        if not self._wait_settled(self.settle_timeout_s):
            log.warning("audio output latency did not settle within %.1f s", self.settle_timeout_s)
        return self

    def close(self) -> None:
        """Stop and close the stream (safe to call twice, and on a dead output)."""
        stream, self._stream = self._stream, None
        with self._lock:
            self._playing = None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception as exc:  # the output already died; nothing is left to stop
                log.warning("closing the audio stream: %s", exc)
        self._done.set()

    def __enter__(self) -> StimulusPlayer:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def latency_ms(self) -> float:
        """Output latency PortAudio reports (ms)."""
        return float(self._stream.latency) * 1000.0 if self._stream is not None else float("nan")

    # -- playing ------------------------------------------------------------------------
    def play(self, stimulus: Stimulus, duration_s: float, timeout_s: float = 5.0) -> float | None:
        """Decode, prepare and start a stimulus excerpt; return once the stream has begun
        writing it, with its onset time (EEG clock, DAC time of the first frame)."""
        data, sfreq_hz = read_segment(stimulus.path, stimulus.start_s, duration_s)
        return self.play_array(data, sfreq_hz, timeout_s=timeout_s)

    def play_array(self, data: NDArray[np.floating], sfreq_hz: float, timeout_s: float = 5.0) -> float | None:
        """Play raw samples (``(n,)`` or ``(n, channels)`` at ``sfreq_hz``); see :meth:`play`."""
        if self._stream is None:
            self.open()
        seg = prepare_segment(data, sfreq_hz, self.samplerate_hz, self.channels, self.fade_ms)
        playing = _Playing(seg, self.clock_offset_s(), end=len(seg))
        self._started.clear()
        self._done.clear()
        with self._lock:
            if self._playing is not None and self._playing.offset_t is None:
                raise DuyguError("a stimulus is already playing; stop() or wait() first")
            self._playing = playing
        if not self._started.wait(timeout_s):
            raise AudioError(f"audio output {self.device_name!r} did not start playing within {timeout_s:g} s")
        return playing.onset_t

    @property
    def stall_limit_s(self) -> float:
        """No callback for this long means the output died (server killed, device gone)."""
        return max(1.0, 4 * self.latency_s)

    def wait(self, timeout_s: float | None = None) -> PlaybackTimes | None:
        """Block until the segment has been played out (its offset reached the DAC).

        Returns ``None`` on timeout, else the onset/offset times on the EEG clock.

        Raises
        ------
        AudioError
            The stream stopped calling back for :attr:`stall_limit_s` (the output died).
        """
        deadline = None if timeout_s is None else _monotonic() + timeout_s
        while not self._done.wait(0.1):
            if self._stream is not None and _monotonic() - self._last_callback_mono > self.stall_limit_s:
                raise AudioError(f"audio output {self.device_name!r} stopped playing "
                                 f"(no audio callback for {self.stall_limit_s:g} s)")
            if deadline is not None and _monotonic() > deadline:
                return None
        times = self._times()
        if times is not None:
            remaining = times.offset_t - local_clock()
            if remaining > 0:
                threading.Event().wait(remaining)  # the last buffer is still in the device
        return times

    def stop(self, timeout_s: float = 2.0) -> PlaybackTimes | None:
        """Fade the current segment out (``fade_ms``) and return its times."""
        with self._lock:
            playing = self._playing
            if playing is None:
                return None
            if playing.offset_t is None:
                playing.stop_requested = True
        return self.wait(timeout_s)

    @property
    def playing(self) -> bool:
        with self._lock:
            return self._playing is not None and self._playing.offset_t is None

    def clock_offset_s(self, probes: int = 5) -> float:
        """``local_clock() - stream.time``, from the probe with the tightest bracket."""
        if self._stream is None:
            raise AudioError("audio output is not open")
        best = (float("inf"), 0.0)
        for _ in range(probes):
            before = local_clock()
            stream_t = float(self._stream.time)
            after = local_clock()
            best = min(best, (after - before, (before + after) / 2 - stream_t))
        return best[1]

    # -- internals ----------------------------------------------------------------------
    def _times(self) -> PlaybackTimes | None:
        with self._lock:
            p = self._playing
        if p is None or p.onset_t is None or p.offset_t is None:
            return None
        return PlaybackTimes(p.onset_t, p.offset_t, stopped_early=p.stopped_early, glitches=p.glitches)

    def _wait_settled(self, timeout_s: float, window_s: float = 0.4, tol_s: float = 0.0005) -> bool:
        def settled() -> bool:
            pts = self._intercepts
            if len(pts) < 4 or pts[-1][0] - self._first_callback_t < max(window_s, self.preroll_s):
                return False
            recent = [b for a, b in pts if a >= pts[-1][0] - window_s]
            return len(recent) >= 4 and max(recent) - min(recent) < tol_s

        with self._settled:
            return self._settled.wait_for(settled, timeout=timeout_s)

    def _callback(self, outdata: NDArray[np.float32], frames: int, time: Any, status: Any) -> None:
        self._last_callback_mono = _monotonic()
        dac = float(time.outputBufferDacTime)
        if status:
            self.errors.append(str(status))
            with self._lock:
                if self._playing is not None and self._playing.offset_t is None and self._playing.pos > 0:
                    self._playing.glitches += 1
        with self._settled:
            if not self._intercepts:
                self._first_callback_t = float(time.currentTime)
            self._intercepts.append((float(time.currentTime), dac - self._frames_out / self.samplerate_hz))
            if len(self._intercepts) > 2000:
                del self._intercepts[:1000]
            self._settled.notify_all()
        self._frames_out += frames
        outdata.fill(0.0)
        with self._lock:
            p = self._playing
            if p is None or p.offset_t is not None:
                return
            if p.stop_requested and not p.stopped_early:
                n_fade = min(p.end - p.pos, round(self.fade_ms / 1000.0 * self.samplerate_hz))
                ramp = np.linspace(1.0, 0.0, n_fade, endpoint=False, dtype=np.float32)[:, None]
                p.data[p.pos:p.pos + n_fade] *= ramp
                p.end = p.pos + n_fade
                p.stopped_early = True
            n = min(frames, p.end - p.pos)
            outdata[:n] = p.data[p.pos:p.pos + n]
            if p.pos == 0:
                p.onset_t = dac + p.clock_offset_s
                self._started.set()
            p.pos += n
            if p.pos >= p.end:
                if p.glitches or p.onset_t is None:
                    p.offset_t = dac + n / self.samplerate_hz + p.clock_offset_s
                else:  # the frames played, at the device's rate: free of the DAC stamps' jitter
                    p.offset_t = p.onset_t + p.end / self.samplerate_hz
                if p.onset_t is None:
                    p.onset_t = p.offset_t
                self._started.set()
                self._done.set()


def player_or_none(enabled: bool, device: str | int | None = None) -> tuple[StimulusPlayer | None, str]:
    """A player if audio is wanted and an output exists; else ``None`` and the reason."""
    if not enabled:
        return None, "audio disabled (--no-audio)"
    try:
        return StimulusPlayer(device), check_output(device)
    except AudioError as exc:
        return None, str(exc)


def describe(path: str | Path) -> str:
    """One line about an audio file (for logs)."""
    import soundfile as sf

    info = sf.info(str(path))
    return f"{Path(path).name}: {info.duration:.1f} s, {info.samplerate} Hz, {info.channels} ch, {info.format}"
