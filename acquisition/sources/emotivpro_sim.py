"""EmotivPRO, simulated: the LSL streams EmotivPRO publishes, from a simulated participant.

For rehearsing a whole study with no headset -- EmotivPRO's side, LabRecorder and Duygu
-- and for tests that need "EmotivPRO". It publishes exactly what EmotivPRO's LSL outlet
publishes (docs/EMOTIVPRO.md):

* ``<prefix>-EEG``: type ``EEG``, float32, 128 or 256 Hz, channels ``Timestamp, Counter,
  Interpolate, AF3 … AF4, HardwareMarker, Markers`` (µV; ``Counter`` runs 0..rate-1);
* ``<prefix>-Contact-Quality``: 2 Hz, ``Timestamp, BatteryPercent, Overall, Signal``, then
  the 14 sensors on EmotivPRO's 0-4 scale;
* ``<prefix>-Motion``: 32 Hz, ``Timestamp, Counter, Interpolate, Q0 … Q3, ACCX … ACCZ,
  MAGX … MAGZ``.

The EEG comes from :class:`~acquisition.sources.simulated.EpocSimulator`. Its state
can follow a running Duygu session: the simulator listens to Duygu's marker stream and
feels the emotion of each stimulus from ``stim_on:<id>`` to ``stim_off:<id>`` (the
emotion named in the protocol, or the emotion word in the id). Codes arriving on the
``<markers>-emotivpro`` stream (Duygu's ``--emotivpro-markers``) land in the EEG's
``Markers`` channel, as EmotivPRO's inlet puts them there.

Faults on demand: ``dropouts`` leaves out 1-8 samples now and then (about every 20 s) (the ``Counter``
jumps, as when the radio link drops samples); ``outage_at_s`` stops the samples for
``outage_s`` seconds (the headset out of range), the counter running on. Every sample
left out is listed in :attr:`EmotivProSimulator.summary`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.sources.resample import StreamResampler
from acquisition.sources.simulated import DEFAULT_STRENGTH, EMOTIONS, EpocSimulator

log = logging.getLogger(__name__)

EEG_LABELS = ("Timestamp", "Counter", "Interpolate", *EPOC_CHANNELS, "HardwareMarker", "Markers")
CONTACT_LABELS = ("Timestamp", "BatteryPercent", "Overall", "Signal", *EPOC_CHANNELS)
MOTION_LABELS = ("Timestamp", "Counter", "Interpolate", "Q0", "Q1", "Q2", "Q3", "ACCX", "ACCY", "ACCZ",
                 "MAGX", "MAGY", "MAGZ")
MOTION_HZ = 32.0
CONTACT_HZ = 2.0


def emotion_of(stimulus_id: str, emotions: dict[str, str] | None = None) -> str:
    """The emotion a stimulus stands for: from the protocol's table, else the emotion word
    in its id (``bells-happy`` -> happy), else neutral."""
    if emotions and stimulus_id in emotions and emotions[stimulus_id] in EMOTIONS:
        return emotions[stimulus_id]
    words = stimulus_id.lower().replace("_", "-").split("-")
    return next((w for w in words if w in EMOTIONS), "neutral")


def _outlet(name: str, kind: str, labels: tuple[str, ...], rate: float, source_id: str, unit: str = "") -> Any:
    import pylsl

    info = pylsl.StreamInfo(name, kind, len(labels), rate, pylsl.cf_float32, source_id)
    desc = info.desc()
    desc.append_child_value("manufacturer", "Emotiv (simulated by Duygu)")
    channels = desc.append_child("channels")
    for label in labels:
        ch = channels.append_child("channel")
        ch.append_child_value("label", label)
        if unit and label in EPOC_CHANNELS:
            ch.append_child_value("unit", unit)
    return pylsl.StreamOutlet(info, chunk_size=0, max_buffered=360)


class EmotivProSimulator:
    """Publish EmotivPRO's EEG, Contact-Quality and Motion streams from a simulated participant.

    Parameters
    ----------
    prefix : str
        Stream names are ``<prefix>-EEG``, ``<prefix>-Contact-Quality``, ``<prefix>-Motion``.
    seed : int
        Seed of the simulated signals.
    rate : {128, 256}
        EEG rate (256 Hz is the simulator's 128 Hz upsampled by a polyphase filter).
    participant : str, optional
        Simulated participant code (default ``S<seed>``).
    dropouts : bool
        Leave out 1-8 samples about every ``dropout_every_s`` seconds (default 20).
    outage_at_s, outage_s : float, optional
        Stop the samples ``outage_at_s`` seconds after the start, for ``outage_s`` seconds.
    follow_markers : str, optional
        Name of Duygu's marker stream to follow (``None``: the state stays neutral
        unless :meth:`set_state` is called).
    emotions : dict, optional
        Stimulus id -> emotion (a protocol's table) for ``follow_markers``.
    contact : sequence of 14 ints, optional
        Fixed sensor levels 0-4 (default: from each channel's simulated impedance).
    battery_percent : float
        Battery level at the start (it drains by 1 % a minute).
    overall : float, optional
        A fixed ``Overall`` figure (default: the mean sensor level, in %).
    strength : float
        Emotion effect of the simulated participant.
    """

    def __init__(self, prefix: str = "EmotivDataStream", seed: int = 0, rate: int = 128,
                 participant: str | None = None, dropouts: bool = False, outage_at_s: float | None = None,
                 outage_s: float = 4.0, follow_markers: str | None = None, emotions: dict[str, str] | None = None,
                 contact: tuple[int, ...] | list[int] | None = None, battery_percent: float = 100.0,
                 overall: float | None = None,
                 strength: float = DEFAULT_STRENGTH, dropout_every_s: float = 20.0) -> None:
        if rate not in (128, 256):
            raise ValueError(f"rate must be 128 or 256, got {rate}")
        if contact is not None and (len(contact) != len(EPOC_CHANNELS) or any(c not in (0, 1, 2, 3, 4) for c in contact)):
            raise ValueError(f"contact must be {len(EPOC_CHANNELS)} levels from 0 to 4, got {list(contact)}")
        self.prefix = prefix
        self.rate = int(rate)
        self.simulator = EpocSimulator(seed, strength=strength, participant=participant)
        self.dropouts = dropouts
        self.outage_at_s = outage_at_s
        self.outage_s = float(outage_s)
        self.follow_markers = follow_markers
        self.emotions = dict(emotions or {})
        self.contact = tuple(contact) if contact is not None else None
        self.battery_percent = float(battery_percent)
        self.overall = overall
        self.source_id = f"EPOCPLUS-SIM{seed:04d}-{self.simulator.participant}"
        self._drop_rng = np.random.default_rng([seed, 11])
        self.dropout_every_s = float(dropout_every_s)
        self._drop_next = int(self._drop_rng.uniform(0.25, 0.75) * self.dropout_every_s * rate)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._marker_codes: list[tuple[float, float]] = []  # (time, code) for the Markers channel
        self.dropped: list[dict[str, Any]] = []
        self.outage: dict[str, Any] | None = None
        self.states: list[tuple[float, str]] = []
        self.n_sent = 0
        self.n_made = 0
        self.markers_followed = 0
        self.t0: float | None = None

    # -- control ------------------------------------------------------------------------
    def set_state(self, state: str, t: float | None = None) -> None:
        import pylsl

        self.simulator.set_state(state)
        with self._lock:
            self.states.append((pylsl.local_clock() if t is None else t, state))

    def stop(self) -> None:
        self._stop.set()

    @property
    def stream_names(self) -> tuple[str, str, str]:
        return f"{self.prefix}-EEG", f"{self.prefix}-Contact-Quality", f"{self.prefix}-Motion"

    @property
    def summary(self) -> dict[str, Any]:
        """What was published: samples made and sent, every sample left out, the states."""
        with self._lock:
            return {
                "prefix": self.prefix, "streams": list(self.stream_names), "source_id": self.source_id,
                "rate_hz": self.rate, "participant": self.simulator.participant, "seed": self.simulator.seed,
                "t0": self.t0, "samples_made": self.n_made, "samples_sent": self.n_sent,
                "dropouts": [dict(d) for d in self.dropped],
                "dropped_samples": sum(d["n"] for d in self.dropped),
                "outage": dict(self.outage) if self.outage else None,
                "markers_followed": self.markers_followed,
                "states": [[t, s] for t, s in self.states],
            }

    # -- running ------------------------------------------------------------------------
    def run(self, seconds: float | None = None, on_ready: Callable[[], None] | None = None) -> dict[str, Any]:
        """Publish until ``seconds`` have passed (``None``: until :meth:`stop`); return
        :attr:`summary`."""
        import pylsl

        eeg_name, cq_name, motion_name = self.stream_names
        eeg = _outlet(eeg_name, "EEG", EEG_LABELS, self.rate, self.source_id, unit="microvolts")
        contact = _outlet(cq_name, "Contact-Quality", CONTACT_LABELS, CONTACT_HZ, f"{self.source_id}-CQ")
        motion = _outlet(motion_name, "Motion", MOTION_LABELS, MOTION_HZ, f"{self.source_id}-MOT")
        threads = [threading.Thread(target=self._contact_loop, args=(contact,), name="sim-contact", daemon=True),
                   threading.Thread(target=self._motion_loop, args=(motion,), name="sim-motion", daemon=True)]
        if self.follow_markers:
            threads.append(threading.Thread(target=self._follow_loop, name="sim-markers", daemon=True))
            threads.append(threading.Thread(target=self._codes_loop, name="sim-codes", daemon=True))
        self.t0 = pylsl.local_clock()
        for th in threads:
            th.start()
        if on_ready is not None:
            on_ready()
        try:
            self._eeg_loop(eeg, seconds)
        finally:
            self._stop.set()
            for th in threads:
                th.join(2.0)
        return self.summary

    def _eeg_loop(self, outlet: Any, seconds: float | None) -> None:
        import pylsl

        assert self.t0 is not None
        rate = float(self.rate)
        up = StreamResampler(SFREQ_HZ, rate, len(EPOC_CHANNELS)) if self.rate != SFREQ_HZ else None
        fifo = np.zeros((0, len(EPOC_CHANNELS)))
        k = 0  # native samples made
        end_k = None if seconds is None else round(seconds * rate)
        outage = None
        if self.outage_at_s is not None:
            start = round(self.outage_at_s * rate)
            outage = (start, start + round(self.outage_s * rate))
        while not self._stop.is_set() and (end_k is None or k < end_k):
            due = int((pylsl.local_clock() - self.t0) * rate)
            if end_k is not None:
                due = min(due, end_k)
            need = 4 if end_k is None else min(4, end_k - k)  # the last chunk may be shorter
            if due - k < need:
                self._stop.wait(max(0.001, (k + need - due) / rate))
                continue
            n = due - k
            while len(fifo) < n:  # the 128 Hz simulator, upsampled when the rate is 256
                made = self.simulator.generate(16)
                if up is not None:
                    made = up.process(made, np.zeros(len(made)))[0]  # the stamps are set below
                fifo = np.concatenate([fifo, made])
            data, fifo = fifo[:n], fifo[n:]
            idx = np.arange(k, k + n)
            stamps = self.t0 + idx / rate
            rows = np.zeros((n, len(EEG_LABELS)), dtype=np.float32)
            rows[:, 0] = stamps
            rows[:, 1] = idx % self.rate
            rows[:, 3:3 + len(EPOC_CHANNELS)] = data
            rows[:, -1] = self._codes_between(stamps)
            keep = np.ones(n, dtype=bool)
            if self.dropouts:
                for start, size in self._drops_until(k + n):
                    a, b = max(start, k), min(start + size, k + n)
                    if a < b:
                        keep[a - k:b - k] = False
            if outage is not None and outage[0] < k + n and outage[1] > k:
                a, b = max(outage[0], k), min(outage[1], k + n)
                keep[a - k:b - k] = False
                with self._lock:
                    self.outage = {"index": outage[0], "n": outage[1] - outage[0],
                                   "t_start": float(self.t0 + outage[0] / rate),
                                   "t_end": float(self.t0 + outage[1] / rate)}
            if keep.any():
                outlet.push_chunk(rows[keep].tolist(), stamps[keep].tolist())
            with self._lock:
                self.n_sent += int(keep.sum())
                self.n_made += n
            k += n

    def _drops_until(self, stop: int) -> list[tuple[int, int]]:
        """Dropout events ``(first index, n)`` that begin before ``stop`` and may still
        overlap it (made on the way, each listed in :attr:`dropped` once)."""
        while self._drop_next < stop:
            size = int(self._drop_rng.integers(1, 9))
            with self._lock:
                self.dropped.append({"index": int(self._drop_next), "n": size,
                                     "t": float(self.t0 + self._drop_next / self.rate) if self.t0 else None})
            self._drop_next += size + int(self._drop_rng.uniform(0.5, 1.5) * self.dropout_every_s * self.rate)
        with self._lock:
            return [(d["index"], d["n"]) for d in self.dropped[-3:]]

    def _codes_between(self, stamps: np.ndarray) -> np.ndarray:
        """The Markers channel: each code received from EmotivPRO's inlet, at the first
        sample at or after its time."""
        out = np.zeros(len(stamps), dtype=np.float32)
        with self._lock:
            pending = [(t, c) for t, c in self._marker_codes if t <= stamps[-1]]
            self._marker_codes = [(t, c) for t, c in self._marker_codes if t > stamps[-1]]
        for t, code in pending:
            out[min(int(np.searchsorted(stamps, t)), len(stamps) - 1)] = code
        return out

    def _levels(self) -> list[int]:
        if self.contact is not None:
            return list(self.contact)
        imp = self.simulator._impedance  # slow drift of each channel's noise level (log)
        return [4 if v < 0.15 else 3 if v < 0.3 else 2 if v < 0.45 else 1 for v in imp]

    def _contact_loop(self, outlet: Any) -> None:
        import pylsl

        assert self.t0 is not None
        k = 0
        while not self._stop.is_set():
            t = self.t0 + k / CONTACT_HZ
            wait = t - pylsl.local_clock()
            if wait > 0 and self._stop.wait(wait):
                return
            levels = self._levels()
            battery = max(0.0, self.battery_percent - (t - self.t0) / 60.0)
            overall = self.overall if self.overall is not None else 100.0 * sum(levels) / (4 * len(levels))
            outlet.push_sample([t, round(battery), overall, 1.0 if min(levels) > 0 else 0.0, *levels], t)
            k += 1

    def _motion_loop(self, outlet: Any) -> None:
        import pylsl

        assert self.t0 is not None
        rng = np.random.default_rng([self.simulator.seed, 13])
        yaw = 0.0
        k = 0
        while not self._stop.is_set():
            t = self.t0 + k / MOTION_HZ
            wait = t - pylsl.local_clock()
            if wait > 0 and self._stop.wait(wait):
                return
            yaw += rng.normal(0.0, 0.002)  # the head turns a little
            q = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
            acc = rng.normal([0.0, 0.0, 1.0], 0.01)
            mag = rng.normal([20.0 * math.cos(yaw), -20.0 * math.sin(yaw), -40.0], 0.3)
            outlet.push_sample([t, k % int(MOTION_HZ), 0.0, *q, *acc, *mag], t)
            k += 1

    def _pull_loop(self, predicate: str, on_sample: Callable[[Any, float], None]) -> None:
        """Resolve the stream of ``predicate``, pass each of its samples to ``on_sample``, and
        look for it again whenever it goes away, until :meth:`stop`."""
        import pylsl
        import pylsl.util

        while not self._stop.is_set():
            found = pylsl.resolve_bypred(predicate, 1, 1.0)
            if not found:
                continue
            inlet = pylsl.StreamInlet(found[0], recover=True, processing_flags=pylsl.proc_clocksync)
            try:
                while not self._stop.is_set():
                    sample, t = inlet.pull_sample(timeout=0.2)
                    if sample is not None:
                        on_sample(sample, float(t))
            except pylsl.util.LostError:
                log.info("stream %s went away; looking for it again", predicate)

    def _follow_loop(self) -> None:
        """Follow Duygu's marker stream: the participant feels each stimulus's emotion."""
        assert self.follow_markers is not None

        def on_marker(sample: Any, t: float) -> None:
            text = str(sample[0])
            with self._lock:
                self.markers_followed += 1
            if text.startswith("stim_on:"):
                self.set_state(emotion_of(text.removeprefix("stim_on:"), self.emotions), t)
            elif text.startswith(("stim_off:", "trial_interrupted:", "pause", "session_end")):
                self.set_state("neutral", t)

        self._pull_loop(f"name='{self.follow_markers}' and type='Markers'", on_marker)

    def _codes_loop(self) -> None:
        """EmotivPRO's inlet: codes of ``<markers>-emotivpro`` go into the Markers channel."""

        def on_code(sample: Any, t: float) -> None:
            with self._lock:
                self._marker_codes.append((t, float(int(sample[0]))))

        self._pull_loop(f"name='{self.follow_markers}-emotivpro'", on_code)
