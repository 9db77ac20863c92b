"""A simulated Emotiv EPOC+ with a documented emotion model.

**This is a simulation, not EEG.** It exists so that the whole loop (acquisition,
sessions, training, live prediction) can be demonstrated and tested with no headset.

Signal model, per channel, in µV (all components independent per channel unless said):

* a DC offset near 4200 µV (drawn once per channel, like the real headset);
* a 1/f ("pink") background, about 10 µV RMS;
* band-limited rhythms: theta (4-8 Hz), alpha (8-12 Hz, strongest over O1/O2, then
  P7/P8), beta (13-30 Hz) and gamma (30-45 Hz);
* 50 Hz mains, about 3 µV;
* eye blinks (about one every 4 s) on frontal channels, 150 µV at AF3/AF4;
* rare glitches (about one per 2 minutes): one sample of one channel jumps to a huge
  value, like the four rows in the UCI eye-state recording.

Emotion model: a hidden state (``happy``, ``sad``, ``relaxing``, ``tense`` or
``neutral``) sits on the valence x arousal plane (happy +/+, tense -/+, sad -/-,
relaxing +/-). With ``v, a`` in {-1, 0, +1} and ``s`` the strength (default 1):

* arousal: alpha x exp(-0.35 a s), beta x exp(+0.35 a s), gamma x exp(+0.25 a s),
  theta x exp(-0.25 a s) — the beta/alpha ratio rises with arousal;
* valence: frontal alpha asymmetry — alpha on the left frontal channels (AF3, F3, F7,
  FC5) x exp(-0.3 v s), on the right ones (AF4, F4, F8, FC6) x exp(+0.3 v s) — positive
  valence means relatively more left-frontal activation (less alpha), as in Davidson's
  approach/withdrawal model.

A new state is approached smoothly (time constant 0.5 s). The output is fully
determined by the seed and by the sample index at which each state was set.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, lfilter, lfilter_zi, sosfilt, sosfilt_zi

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.sources.base import BaseSource, DeviceInfo, ReadResult, local_clock

EMOTIONS: dict[str, tuple[int, int]] = {
    "neutral": (0, 0),
    "happy": (1, 1),
    "tense": (-1, 1),
    "sad": (-1, -1),
    "relaxing": (1, -1),
}
"""Valence and arousal sign of each simulated state."""

_BANDS = {"theta": (4.0, 8.0), "alpha": (8.0, 12.0), "beta": (13.0, 30.0), "gamma": (30.0, 45.0)}
_BAND_UV = {"theta": 5.0, "alpha": 7.0, "beta": 3.0, "gamma": 1.2}
_ALPHA_SPATIAL = {"O1": 2.2, "O2": 2.2, "P7": 1.5, "P8": 1.5, "T7": 0.9, "T8": 0.9}
_LEFT_FRONTAL = ("AF3", "F3", "F7", "FC5")
_RIGHT_FRONTAL = ("AF4", "F4", "F8", "FC6")
_BLINK_UV = {"AF3": 150.0, "AF4": 150.0, "F7": 90.0, "F8": 90.0, "F3": 60.0, "F4": 60.0,
             "FC5": 25.0, "FC6": 25.0}
# Paul Kellet's economy pinking filter (-3 dB/octave over the EEG range)
_PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
_PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])


def _band_gains(state: str, strength: float) -> NDArray[np.float64]:
    """Gain per (band, channel) for an emotional state; shape (4, 14)."""
    if state not in EMOTIONS:
        raise ValueError(f"state must be one of {sorted(EMOTIONS)}, got {state!r}")
    v, a = EMOTIONS[state]
    s = float(strength)
    gains = np.ones((4, len(EPOC_CHANNELS)))
    gains[0] *= np.exp(-0.25 * a * s)  # theta
    gains[1] *= np.exp(-0.35 * a * s)  # alpha
    gains[2] *= np.exp(0.35 * a * s)  # beta
    gains[3] *= np.exp(0.25 * a * s)  # gamma
    for ch in _LEFT_FRONTAL:
        gains[1, EPOC_CHANNELS.index(ch)] *= np.exp(-0.3 * v * s)
    for ch in _RIGHT_FRONTAL:
        gains[1, EPOC_CHANNELS.index(ch)] *= np.exp(0.3 * v * s)
    return gains


class EpocSimulator:
    """Deterministic generator of simulated EPOC+ samples (no thread, no clock).

    Parameters
    ----------
    seed : int
        Seed of every random draw.
    strength : float
        Scale of the emotion effects (0 turns them off).
    glitch_rate_hz, blink_rate_hz : float
        Rates of glitches and eye blinks.
    """

    block = 32  # samples are made in fixed blocks, so any chunking gives the same stream

    def __init__(self, seed: int = 0, strength: float = 1.0, glitch_rate_hz: float = 1 / 120,
                 blink_rate_hz: float = 0.25) -> None:
        self.seed = seed
        self.strength = strength
        self.glitch_rate_hz = glitch_rate_hz
        self.blink_rate_hz = blink_rate_hz
        self._rng = np.random.default_rng(seed)
        n = len(EPOC_CHANNELS)
        self.offsets_uv = 4200.0 + self._rng.normal(0.0, 60.0, n)
        self._mains_phase = self._rng.uniform(0, 2 * np.pi, n)
        self._mains_uv = 3.0 * (1 + 0.3 * self._rng.standard_normal(n)).clip(0.3)
        spatial = np.array([_ALPHA_SPATIAL.get(c, 0.8) for c in EPOC_CHANNELS])
        self._spatial = np.ones((4, n))
        self._spatial[1] = spatial
        self._sos = [butter(2, band, btype="bandpass", fs=SFREQ_HZ, output="sos") for band in _BANDS.values()]
        self._zi = [sosfilt_zi(s)[:, :, None] * np.zeros((1, 1, n)) for s in self._sos]
        self._band_rms = []
        for sos in self._sos:  # normalise each band filter to unit output RMS
            imp = sosfilt(sos, np.r_[1.0, np.zeros(4095)])
            self._band_rms.append(float(np.sqrt(np.sum(imp**2))))
        self._pink_zi = lfilter_zi(_PINK_B, _PINK_A)[:, None] * np.zeros((1, n))
        self._blink_uv = np.array([_BLINK_UV.get(c, 0.0) for c in EPOC_CHANNELS])
        self._blink_shape = np.hanning(int(0.3 * SFREQ_HZ))
        self._blink_tail = np.zeros(self.block + len(self._blink_shape))  # blink still to add
        imp = lfilter(_PINK_B, _PINK_A, np.r_[1.0, np.zeros(8191)])
        self._pink_rms = float(np.sqrt(np.sum(imp**2)))
        self.n_generated = 0
        self._n_made = 0
        self._pending = np.zeros((0, n))
        self._state = "neutral"
        self._target = _band_gains("neutral", strength)
        self._gains = self._target.copy()
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        return self._state

    def set_state(self, state: str) -> None:
        """Set the hidden emotional state (takes effect from the next sample)."""
        target = _band_gains(state, self.strength)
        with self._lock:
            self._state = state
            self._target = target

    def generate(self, n_samples: int) -> NDArray[np.float64]:
        """Return the next ``n_samples`` samples, shape (n_samples, 14), in µV."""
        parts = [self._pending]
        have = len(self._pending)
        while have < n_samples:
            parts.append(self._block(self.block))
            have += self.block
        allx = np.concatenate(parts)
        self._pending = allx[n_samples:]
        self.n_generated += n_samples
        return allx[:n_samples]

    def _block(self, m: int) -> NDArray[np.float64]:
        rng = self._rng
        n = len(EPOC_CHANNELS)
        with self._lock:
            target = self._target
        alpha = 1.0 - np.exp(-m / (0.5 * SFREQ_HZ))
        self._gains = self._gains + alpha * (target - self._gains)
        x = np.zeros((m, n))
        pink, self._pink_zi = lfilter(_PINK_B, _PINK_A, rng.standard_normal((m, n)), axis=0, zi=self._pink_zi)
        x += pink / self._pink_rms * 10.0
        for b, (sos, rms) in enumerate(zip(self._sos, self._band_rms, strict=True)):
            band, self._zi[b] = sosfilt(sos, rng.standard_normal((m, n)), axis=0, zi=self._zi[b])
            name = list(_BANDS)[b]
            x += band / rms * _BAND_UV[name] * self._spatial[b] * self._gains[b]
        t = (self._n_made + np.arange(m)) / SFREQ_HZ
        x += self._mains_uv * np.sin(2 * np.pi * 50.0 * t[:, None] + self._mains_phase)
        x += self.offsets_uv
        # eye blinks: each start adds a 0.3 s Hann bump, carried into later blocks
        starts = np.flatnonzero(rng.random(m) < self.blink_rate_hz / SFREQ_HZ)
        shape = self._blink_shape
        for i in starts:
            self._blink_tail[i:i + len(shape)] += rng.uniform(0.7, 1.3) * shape
        x += self._blink_tail[:m, None] * self._blink_uv
        self._blink_tail = np.r_[self._blink_tail[m:], np.zeros(m)]
        # rare glitches
        if rng.random() < 1 - np.exp(-self.glitch_rate_hz * m / SFREQ_HZ):
            x[rng.integers(m), rng.integers(n)] = rng.uniform(2e5, 7.2e5)
        self._n_made += m
        return x


class SimulatedEpocSource(BaseSource):
    """The simulated EPOC+ as a live source, paced by the wall clock.

    Parameters
    ----------
    seed : int
        Seed of the simulator.
    speed : float
        Samples are produced ``speed`` times faster than real time; timestamps follow
        the wall clock (sample ``k`` is stamped ``t0 + k / (128 * speed)``).
    chunk_samples : int
        Samples delivered per read (4 = every 31 ms at 1x).
    strength : float
        Scale of the emotion effects.
    """

    kind = "simulated"

    def __init__(self, seed: int = 0, speed: float = 1.0, chunk_samples: int = 4,
                 strength: float = 1.0, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.seed = seed
        self.speed = speed
        self.chunk_samples = chunk_samples
        self.simulator = EpocSimulator(seed, strength=strength)
        self._t0 = 0.0
        self._wall0 = 0.0
        self._sent = 0

    def set_state(self, state: str) -> None:
        """Set the hidden emotional state of the simulated participant."""
        self.simulator.set_state(state)

    @property
    def state(self) -> str:
        return self.simulator.state

    def _open(self, timeout_s: float) -> DeviceInfo:
        self._t0 = local_clock()
        self._wall0 = time.monotonic()
        self._sent = 0
        return DeviceInfo(
            kind="simulated",
            name=f"Simulated EPOC+ (seed {self.seed})",
            native_sfreq_hz=SFREQ_HZ,
            native_channels=EPOC_CHANNELS,
            serial=f"SIM-{self.seed:04d}",
            notes=["simulation: synthetic signals with a documented emotion model, not EEG"],
        )

    def _read(self, timeout_s: float) -> ReadResult | None:
        rate = SFREQ_HZ * self.speed
        due = int((time.monotonic() - self._wall0) * rate)
        if due - self._sent < self.chunk_samples:
            wait = (self._sent + self.chunk_samples) / rate - (time.monotonic() - self._wall0)
            time.sleep(max(0.0, min(wait, timeout_s)))  # pacing of the simulated device
            due = int((time.monotonic() - self._wall0) * rate)
            if due - self._sent < self.chunk_samples:
                return None
        n = due - self._sent
        data = self.simulator.generate(n)
        times = self._t0 + (self._sent + np.arange(n)) / rate
        self._sent += n
        return ReadResult(data, times)

    def _close(self) -> None:
        return None
