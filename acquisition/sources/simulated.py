"""A simulated Emotiv EPOC+ worn by a simulated participant, with a documented model.

**This is a simulation, not EEG.** It exists so that the whole loop (acquisition,
sessions, training, live prediction) can be demonstrated and tested with no headset,
and it is built to be as hard as a real participant in the ways that matter to an
honest evaluation: participants differ, trials differ, the signal drifts, artefacts
happen, and the emotion effect is modest. docs/SOURCES.md gives the numbers.

Signal, per channel, in µV:

* a DC offset near 4200 µV (drawn once per channel, like the real headset);
* an aperiodic background (1/f^β, β a participant trait) of about 10 µV RMS, whose level
  per channel follows a slow impedance drift;
* rhythms: theta (4-8 Hz), alpha (IAF ± 2 Hz, IAF a participant trait; strongest over
  O1/O2, then P7/P8), beta (13-30 Hz) and gamma (30-45 Hz), each band's log-amplitude
  the sum of the participant's trait, the emotion effect, the trial's own offset, a slow
  drift and fast arousal fluctuations;
* 50 Hz mains, about 3 µV;
* artefacts, at rates scaled by the participant's proneness: eye blinks on frontal
  channels, EMG bursts on the temporal and lateral-frontal channels, electrode pops, slow
  head movements and rare one-sample glitches (like the UCI eye-state recording's).

Emotion. A hidden state (``happy``, ``sad``, ``relaxing``, ``tense`` or ``neutral``) sits
on the valence x arousal plane (happy +/+, tense -/+, sad -/-, relaxing +/-). The shared
pattern, in log-amplitude per unit of ``strength``: arousal ``a`` lowers theta (-0.25 a)
and alpha (-0.35 a) and raises beta (+0.35 a) and gamma (+0.25 a); valence ``v`` gives
frontal alpha asymmetry (left frontal alpha -0.3 v, right +0.3 v: approach/withdrawal).
Each participant responds with their own weight (0.5-1.3) of that pattern plus an
idiosyncratic pattern of their own, so a model of one participant transfers imperfectly
to another.

Trials. Every :meth:`EpocSimulator.set_state` begins a new episode with its own random
offset of the band powers (global per band, an asymmetry and a per-channel part), shared
by every window of the episode: what makes a random split of windows leak.

The output is fully determined by the seed, the participant code and the sample index
at which each state was set (samples are made in fixed blocks).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, lfilter, lfilter_zi, sosfilt

try:  # the compiled kernel behind scipy.signal.sosfilt: the public call's checks and axis
    # moves cost more than filtering a 32-sample block (the simulator runs 96x real time)
    from scipy.signal._sosfilt import _sosfilt as _sosfilt_kernel
except ImportError:  # another SciPy layout: the public function gives the same numbers
    _sosfilt_kernel = None

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

DEFAULT_STRENGTH = 0.45
"""Scale of the emotion effect: the demo's grouped accuracy is well above chance and well
below perfect (docs/SOURCES.md)."""

_STATES = tuple(EMOTIONS)
_BANDS = ("theta", "alpha", "beta", "gamma")
_BAND_HZ = {"theta": (4.0, 8.0), "beta": (13.0, 30.0), "gamma": (30.0, 45.0)}  # alpha: IAF ± 2
_BAND_UV = {"theta": 5.0, "alpha": 7.0, "beta": 3.0, "gamma": 1.2}
_ALPHA_SPATIAL = {"O1": 2.2, "O2": 2.2, "P7": 1.5, "P8": 1.5, "T7": 0.9, "T8": 0.9}
_LEFT_FRONTAL = ("AF3", "F3", "F7", "FC5")
_RIGHT_FRONTAL = ("AF4", "F4", "F8", "FC6")
_BLINK_UV = {"AF3": 150.0, "AF4": 150.0, "F7": 90.0, "F8": 90.0, "F3": 60.0, "F4": 60.0,
             "FC5": 25.0, "FC6": 25.0}
_EMG_WEIGHT = {"T7": 1.0, "T8": 1.0, "F7": 0.7, "F8": 0.7, "FC5": 0.5, "FC6": 0.5}
# Paul Kellet's economy pinking filter (-3 dB/octave over the EEG range)
_PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
_PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])

# variability, in log-amplitude (natural log) standard deviations
EPISODE_GLOBAL_SD = 0.16  # per band, all channels: a trial's overall band powers
EPISODE_ASYM_SD = 0.10  # per band, left vs right frontal
EPISODE_CHANNEL_SD = 0.10  # per band and channel
DRIFT_SD, DRIFT_TAU_S = 0.10, 90.0  # slow drift of each band's power
AROUSAL_SD, AROUSAL_TAU_S = 0.06, 4.0  # fast arousal fluctuations within a trial
IMPEDANCE_SD, IMPEDANCE_TAU_S = 0.15, 120.0  # slow change of each channel's noise level
IDIOSYNCRASY_SD = 0.25  # a participant's own emotion pattern, per band and channel


def _shared_pattern(state: str) -> NDArray[np.float64]:
    """The shared emotion pattern in log-amplitude per unit strength; shape (4, 14)."""
    if state not in EMOTIONS:
        raise ValueError(f"state must be one of {sorted(EMOTIONS)}, got {state!r}")
    v, a = EMOTIONS[state]
    out = np.zeros((4, len(EPOC_CHANNELS)))
    out[0] -= 0.25 * a  # theta
    out[1] -= 0.35 * a  # alpha
    out[2] += 0.35 * a  # beta
    out[3] += 0.25 * a  # gamma
    for ch in _LEFT_FRONTAL:
        out[1, EPOC_CHANNELS.index(ch)] -= 0.3 * v
    for ch in _RIGHT_FRONTAL:
        out[1, EPOC_CHANNELS.index(ch)] += 0.3 * v
    return out


def _code_seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


@dataclass(frozen=True)
class ParticipantTraits:
    """What makes one simulated participant unlike another (drawn from their code).

    Attributes
    ----------
    code : str
        The participant code the traits were drawn from.
    iaf_hz : float
        Individual alpha frequency, 9-11.5 Hz (the alpha rhythm spans IAF ± 2 Hz).
    band_scale : ndarray, shape (4,)
        Amplitude factor of theta, alpha, beta, gamma (log-normal, SD 0.35).
    asymmetry : float
        Baseline frontal alpha asymmetry (log ratio right/left, SD 0.25).
    aperiodic_exponent : float
        Exponent β of the 1/f^β background, 0.8-1.6.
    artefact_proneness : float
        Factor on every artefact rate, 0.5-2.
    response_weight : float
        Weight of the shared emotion pattern, 0.5-1.3.
    idiosyncrasy : ndarray, shape (5, 4, 14)
        The participant's own emotion pattern (per state, band, channel; neutral is 0).
    """

    code: str
    iaf_hz: float
    band_scale: NDArray[np.float64]
    asymmetry: float
    aperiodic_exponent: float
    artefact_proneness: float
    response_weight: float
    idiosyncrasy: NDArray[np.float64]

    @classmethod
    def draw(cls, code: str) -> ParticipantTraits:
        rng = np.random.default_rng(_code_seed(f"traits:{code}"))
        idio = rng.normal(0.0, IDIOSYNCRASY_SD, (len(_STATES), 4, len(EPOC_CHANNELS)))
        idio[_STATES.index("neutral")] = 0.0
        return cls(
            code=code,
            iaf_hz=float(rng.uniform(9.0, 11.5)),
            band_scale=np.exp(rng.normal(0.0, 0.35, 4)),
            asymmetry=float(rng.normal(0.0, 0.25)),
            aperiodic_exponent=float(rng.uniform(0.8, 1.6)),
            artefact_proneness=float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))),
            response_weight=float(rng.uniform(0.5, 1.3)),
            idiosyncrasy=idio,
        )

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "iaf_hz": round(self.iaf_hz, 3),
                "band_scale": [round(float(x), 3) for x in self.band_scale],
                "asymmetry": round(self.asymmetry, 3), "aperiodic_exponent": round(self.aperiodic_exponent, 3),
                "artefact_proneness": round(self.artefact_proneness, 3),
                "response_weight": round(self.response_weight, 3)}


def _sosfilt_columns(sos: NDArray[np.float64], x: NDArray[np.float64],
                     zi: NDArray[np.float64]) -> NDArray[np.float64]:
    """Filter each column of ``x`` (samples, channels) with ``sos``; ``zi`` (channels,
    sections, 2) is the running state, updated in place. Same numbers as
    ``scipy.signal.sosfilt(sos, x, axis=0, zi=...)``."""
    y = np.array(x.T, dtype=np.float64, order="C")
    if _sosfilt_kernel is not None:
        _sosfilt_kernel(sos, y, zi)
        return y.T
    out, zf = sosfilt(sos, y, axis=-1, zi=zi.transpose(1, 0, 2))  # zi as (sections, channels, 2)
    zi[...] = zf.transpose(1, 0, 2)
    return out.T


def _ou_step(x: NDArray[np.float64], dt: float, tau: float, sd: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """One exact step of an Ornstein-Uhlenbeck process with stationary SD ``sd``."""
    decay = np.exp(-dt / tau)
    return x * decay + sd * np.sqrt(1.0 - decay**2) * rng.standard_normal(x.shape)


class EpocSimulator:
    """Deterministic generator of simulated EPOC+ samples (no thread, no clock).

    Parameters
    ----------
    seed : int
        Seed of every random draw of the signal.
    strength : float
        Scale of the emotion effect (0 turns it off).
    participant : str, optional
        Code of the simulated participant: their traits are drawn from it (the same code
        gives the same person whatever the seed). Default ``S<seed>``.
    variability : float
        Scale of everything that varies between trials and over time (episode offsets,
        drift, arousal fluctuations, impedance, idiosyncrasy); 0 gives a textbook
        participant whose every trial of a state looks the same.
    artefacts : bool
        EMG bursts, electrode pops and head movements (blinks and glitches have their own
        rates).
    glitch_rate_hz, blink_rate_hz : float
        Rates of one-sample glitches and eye blinks (blinks scaled by the proneness).
    """

    block = 32  # samples are made in fixed blocks, so any chunking gives the same stream

    def __init__(self, seed: int = 0, strength: float = DEFAULT_STRENGTH, participant: str | None = None,
                 variability: float = 1.0, artefacts: bool = True, glitch_rate_hz: float = 1 / 120,
                 blink_rate_hz: float = 0.25) -> None:
        self.seed = seed
        self.strength = float(strength)
        self.participant = participant or f"S{seed}"
        self.traits = ParticipantTraits.draw(self.participant)
        self.variability = float(variability)
        self.artefacts = artefacts
        self.glitch_rate_hz = glitch_rate_hz
        self.blink_rate_hz = blink_rate_hz
        n = len(EPOC_CHANNELS)
        self._rng = np.random.default_rng([seed, _code_seed(f"signal:{self.participant}") % 2**32])
        self._episode_rng = np.random.default_rng([seed, _code_seed(f"episodes:{self.participant}") % 2**32])
        rng = self._rng
        self.offsets_uv = 4200.0 + rng.normal(0.0, 60.0, n)
        self._mains_phase = rng.uniform(0, 2 * np.pi, n)
        self._mains_uv = 3.0 * (1 + 0.3 * rng.standard_normal(n)).clip(0.3)
        traits = self.traits
        spatial = np.ones((4, n))
        spatial[1] = [_ALPHA_SPATIAL.get(c, 0.8) for c in EPOC_CHANNELS]
        base = np.log(spatial * np.array([_BAND_UV[b] for b in _BANDS])[:, None] * traits.band_scale[:, None])
        for ch in _LEFT_FRONTAL:
            base[1, EPOC_CHANNELS.index(ch)] -= traits.asymmetry / 2
        for ch in _RIGHT_FRONTAL:
            base[1, EPOC_CHANNELS.index(ch)] += traits.asymmetry / 2
        self._base_log = base
        bands = dict(_BAND_HZ, alpha=(traits.iaf_hz - 2.0, traits.iaf_hz + 2.0))
        self._sos = [butter(2, bands[b], btype="bandpass", fs=SFREQ_HZ, output="sos") for b in _BANDS]
        self._zi = [np.zeros((n, len(s), 2)) for s in self._sos]  # per channel: (sections, 2)
        self._band_rms = [float(np.sqrt(np.sum(sosfilt(s, np.r_[1.0, np.zeros(4095)]) ** 2))) for s in self._sos]
        # aperiodic background: pink (β = 1) plus a leaky-integrated part for β > 1
        self._pink_zi = lfilter_zi(_PINK_B, _PINK_A)[:, None] * np.zeros((1, n))
        self._pink_rms = float(np.sqrt(np.sum(lfilter(_PINK_B, _PINK_A, np.r_[1.0, np.zeros(8191)]) ** 2)))
        self._red_pole = 0.995
        self._red_zi = np.zeros((1, n))
        self._red_rms = float(1.0 / np.sqrt(1 - self._red_pole**2))
        self._red_mix = max(0.0, traits.aperiodic_exponent - 1.0)
        self._blink_uv = np.array([_BLINK_UV.get(c, 0.0) for c in EPOC_CHANNELS])
        self._blink_shape = np.hanning(int(0.3 * SFREQ_HZ))
        self._emg_weight = np.array([_EMG_WEIGHT.get(c, 0.0) for c in EPOC_CHANNELS])
        self._emg_sos = butter(4, 20.0, btype="highpass", fs=SFREQ_HZ, output="sos")
        self._emg_zi = np.zeros((n, len(self._emg_sos), 2))
        self._tail_len = self.block + int(5 * SFREQ_HZ)
        self._tail = np.zeros((self._tail_len, n))  # artefacts still to add to later blocks
        self._emg_left = 0  # samples of the current EMG burst still to come
        self._emg_uv = 0.0
        # slow and fast variation
        self._drift = np.zeros((4, 1))
        self._arousal = 0.0
        self._impedance = np.zeros(n)
        self.n_generated = 0
        self._n_made = 0
        self._pending = np.zeros((0, n))
        self._lock = threading.Lock()
        self._state = "neutral"
        self._target = self._state_log("neutral")
        self._gain_log = self._target.copy()
        self._changed: str | None = None
        self.state_history: list[tuple[int, str]] = [(0, "neutral")]
        """``(sample index, state)``: the first sample made after each :meth:`set_state`."""

    # -- state --------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    def set_state(self, state: str) -> None:
        """Set the hidden emotional state; a new episode (trial) with its own band-power
        offset begins with the next sample block."""
        target = self._state_log(state)
        with self._lock:
            self._state = state
            self._target = target
            self._changed = state

    def _state_log(self, state: str) -> NDArray[np.float64]:
        """Target log-amplitude offsets of a new episode in ``state``; shape (4, 14)."""
        shared = _shared_pattern(state)  # raises on an unknown state
        traits = self.traits
        v = self.variability
        effect = self.strength * (traits.response_weight * shared
                                  + v * traits.idiosyncrasy[_STATES.index(state)] * (state != "neutral"))
        rng = self._episode_rng
        n = len(EPOC_CHANNELS)
        episode = rng.normal(0.0, EPISODE_GLOBAL_SD, (4, 1)) + rng.normal(0.0, EPISODE_CHANNEL_SD, (4, n))
        asym = rng.normal(0.0, EPISODE_ASYM_SD, (4, 1))
        for ch in _LEFT_FRONTAL:
            episode[:, EPOC_CHANNELS.index(ch)] -= asym[:, 0]
        for ch in _RIGHT_FRONTAL:
            episode[:, EPOC_CHANNELS.index(ch)] += asym[:, 0]
        return effect + v * episode

    # -- samples ------------------------------------------------------------------------
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
        dt = m / SFREQ_HZ
        v = self.variability
        with self._lock:
            target = self._target
            if self._changed is not None:
                self.state_history.append((self._n_made, self._changed))
                self._changed = None
        self._gain_log = self._gain_log + (1.0 - np.exp(-dt / 0.5)) * (target - self._gain_log)
        self._drift = _ou_step(self._drift, dt, DRIFT_TAU_S, DRIFT_SD, rng)
        self._arousal = float(_ou_step(np.array(self._arousal), dt, AROUSAL_TAU_S, AROUSAL_SD, rng))
        self._impedance = _ou_step(self._impedance, dt, IMPEDANCE_TAU_S, IMPEDANCE_SD, rng)
        fast = np.array([-0.25, -0.35, 0.35, 0.25])[:, None] * self._arousal
        amp = np.exp(self._base_log + self._gain_log + v * (self._drift + fast))
        x = np.zeros((m, n))
        noise = rng.standard_normal((5, m, n))  # the background's, then each band's
        white = noise[0]
        pink, self._pink_zi = lfilter(_PINK_B, _PINK_A, white, axis=0, zi=self._pink_zi)
        red, self._red_zi = lfilter([1.0], [1.0, -self._red_pole], white, axis=0, zi=self._red_zi)
        background = pink / self._pink_rms + self._red_mix * red / self._red_rms
        x += background / np.sqrt(1 + self._red_mix**2) * 10.0 * np.exp(v * self._impedance)
        for b, (sos, rms) in enumerate(zip(self._sos, self._band_rms, strict=True)):
            band = _sosfilt_columns(sos, noise[b + 1], self._zi[b])
            x += band / rms * amp[b]
        t = (self._n_made + np.arange(m)) / SFREQ_HZ
        x += self._mains_uv * np.sin(2 * np.pi * 50.0 * t[:, None] + self._mains_phase)
        x += self.offsets_uv
        self._artefacts(x, m)
        if rng.random() < 1 - np.exp(-self.glitch_rate_hz * dt):  # rare one-sample glitches
            x[rng.integers(m), rng.integers(n)] = rng.uniform(2e5, 7.2e5)
        self._n_made += m
        return x

    def _artefacts(self, x: NDArray[np.float64], m: int) -> None:
        """Add blinks, EMG bursts, electrode pops and head movements to block ``x``."""
        rng = self._rng
        n = len(EPOC_CHANNELS)
        dt = m / SFREQ_HZ
        prone = self.traits.artefact_proneness
        tail = self._tail
        shape = self._blink_shape
        for j in np.flatnonzero(rng.random(m) < self.blink_rate_hz * prone / SFREQ_HZ):
            tail[j:j + len(shape)] += rng.uniform(0.7, 1.3) * shape[:, None] * self._blink_uv
        emg_noise = _sosfilt_columns(self._emg_sos, rng.standard_normal((m, n)), self._emg_zi)
        if self.artefacts:
            if self._emg_left <= 0 and rng.random() < 1 - np.exp(-0.03 * prone * dt):
                self._emg_left = int(rng.uniform(0.3, 1.5) * SFREQ_HZ)
                self._emg_uv = float(rng.uniform(5.0, 20.0))
            if self._emg_left > 0:  # broadband muscle activity above 20 Hz
                k = min(m, self._emg_left)
                x[:k] += emg_noise[:k] * self._emg_uv * self._emg_weight
                self._emg_left -= k
            if rng.random() < 1 - np.exp(-0.005 * prone * dt):  # an electrode pop: step, then decay
                at, c = int(rng.integers(m)), int(rng.integers(n))
                decay = np.exp(-np.arange(self._tail_len - at) / (0.3 * SFREQ_HZ))
                tail[at:, c] += rng.choice([-1.0, 1.0]) * rng.uniform(100.0, 400.0) * decay
            if rng.random() < 1 - np.exp(-0.01 * prone * dt):  # a slow head movement
                at = int(rng.integers(m))
                length = min(int(rng.uniform(1.0, 4.0) * SFREQ_HZ), self._tail_len - at)
                steps = np.arange(length)
                wave = np.hanning(length) * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * steps / SFREQ_HZ)
                tail[at:at + length] += wave[:, None] * rng.uniform(30.0, 80.0) * rng.uniform(0.3, 1.0, n)
        x += tail[:m]
        self._tail = np.concatenate([tail[m:], np.zeros((m, n))])


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
        Scale of the emotion effect.
    participant : str, optional
        Code of the simulated participant (their traits; default ``S<seed>``).
    dropouts : bool
        Drop a few samples now and then, as a real headset's radio link does (1-8 samples
        about every 20 s, deterministic per seed), reported as device losses.
    """

    kind = "simulated"

    def __init__(self, seed: int = 0, speed: float = 1.0, chunk_samples: int = 4,
                 strength: float = DEFAULT_STRENGTH, participant: str | None = None, dropouts: bool = False,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.seed = seed
        self.speed = speed
        self.chunk_samples = chunk_samples
        self.participant = participant
        self.dropouts = dropouts
        self.simulator = EpocSimulator(seed, strength=strength, participant=participant)
        self.dropped = 0  # samples left out by ``dropouts``
        self._drop_rng = np.random.default_rng([seed, 7])
        self._next_drop = self._draw_drop(0)
        self._t0 = 0.0
        self._wall0 = 0.0
        self._sent = 0

    def set_state(self, state: str) -> None:
        """Set the hidden emotional state of the simulated participant."""
        self.simulator.set_state(state)

    @property
    def state(self) -> str:
        return self.simulator.state

    def _draw_drop(self, after: int) -> int:
        return after + int(self._drop_rng.uniform(10.0, 30.0) * SFREQ_HZ)

    def _open(self, timeout_s: float) -> DeviceInfo:
        self._t0 = local_clock()
        self._wall0 = time.monotonic()
        self._sent = 0
        who = self.simulator.participant
        return DeviceInfo(
            kind="simulated",
            name=f"Simulated EPOC+ (seed {self.seed}, participant {who})",
            native_sfreq_hz=SFREQ_HZ,
            native_channels=EPOC_CHANNELS,
            serial=f"SIM-{self.seed:04d}",
            notes=["simulation: synthetic signals from a documented model of a participant, not EEG",
                   f"simulated participant {who}: " + ", ".join(
                       f"{k} {v}" for k, v in self.simulator.traits.as_dict().items() if k != "code")],
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
        lost = 0
        if self.dropouts and self._sent >= self._next_drop:  # the radio link drops a few samples
            lost = min(int(self._drop_rng.integers(1, 9)), n - 1)
            self.simulator.generate(lost)  # made by the headset, never received
            self._sent += lost
            self.dropped += lost
            n -= lost
            self._next_drop = self._draw_drop(self._sent)
        elif self.dropouts:
            n = min(n, self._next_drop - self._sent)  # a chunk ends where a drop begins
        data = self.simulator.generate(n)
        times = self._t0 + (self._sent + np.arange(n)) / rate
        self._sent += n
        return ReadResult(data, times, lost=lost)

    def _close(self) -> None:
        return None
