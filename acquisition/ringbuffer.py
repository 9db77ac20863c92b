"""A fixed-size, thread-safe ring buffer of multichannel samples.

One writer (a source's reader thread) pushes chunks; any number of readers take copies
of the latest seconds (:meth:`RingBuffer.latest`) or of everything after an absolute
sample index they remember (:meth:`RingBuffer.since`). The buffer never grows. A reader
that falls so far behind that the samples it asks for were already overwritten gets
what is left and an explicit count of what it missed; the buffer counts such overruns.

The buffer also holds the stream's :class:`Gap` records (the writer adds one when samples
are missing) and its :class:`SourceEvent` records (triggers the device itself reports,
such as EmotivPRO's ``HardwareMarker`` channel), so everything downstream of a source --
the recorder, the live predictor -- learns about them from the same object it reads
samples from.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from acquisition.errors import DataError


@dataclass(frozen=True)
class Gap:
    """An interval with no data: after sample ``after_index`` and before the next one."""

    after_index: int
    start_time: float
    end_time: float
    n_missing: int
    reason: str


@dataclass(frozen=True)
class SourceEvent:
    """Something the device marked at time ``t`` (EEG clock): ``text`` is a marker word
    (``hardware:5``, ``emotivpro:12``)."""

    t: float
    text: str


@dataclass(frozen=True)
class Chunk:
    """A copy of consecutive samples taken from a :class:`RingBuffer`.

    Attributes
    ----------
    data : ndarray, shape (n_samples, n_channels)
        Samples in µV.
    timestamps : ndarray, shape (n_samples,)
        Time of each sample on the EEG clock (LSL ``local_clock`` seconds).
    first_index : int
        Absolute index of ``data[0]`` since the buffer was created.
    missed : int
        Samples the reader asked for that had already been overwritten (overrun).
    """

    data: NDArray[np.float64]
    timestamps: NDArray[np.float64]
    first_index: int
    missed: int = 0

    @property
    def next_index(self) -> int:
        """The index to pass to :meth:`RingBuffer.since` next time."""
        return self.first_index + len(self.timestamps)

    def __len__(self) -> int:
        return len(self.timestamps)


class RingBuffer:
    """Fixed-capacity numpy ring buffer with absolute sample indices.

    Parameters
    ----------
    n_channels : int
        Number of channels per sample.
    capacity : int
        Samples kept; older ones are overwritten.
    sfreq_hz : float
        Nominal rate, used to convert seconds to samples in :meth:`latest`.
    """

    def __init__(self, n_channels: int, capacity: int, sfreq_hz: float) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 sample, got {capacity}")
        self.n_channels = n_channels
        self.capacity = capacity
        self.sfreq_hz = sfreq_hz
        self._data = np.zeros((capacity, n_channels), dtype=np.float64)
        self._times = np.zeros(capacity, dtype=np.float64)
        self._total = 0  # absolute index of the next sample to be written
        self._overruns = 0
        self._missed = 0
        self._gaps: list[Gap] = []
        self._events: list[SourceEvent] = []
        self._cond = threading.Condition(threading.Lock())

    # -- writer ---------------------------------------------------------------------
    def push(self, data: NDArray[np.floating], timestamps: NDArray[np.floating]) -> int:
        """Append ``data`` (n_samples, n_channels) with their timestamps.

        Returns the absolute index of the first pushed sample.
        """
        data = np.asarray(data, dtype=np.float64)
        timestamps = np.asarray(timestamps, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != self.n_channels:
            raise DataError(
                f"chunk must have shape (n, {self.n_channels}), got {data.shape}"
            )
        if len(timestamps) != len(data):
            raise DataError(
                f"chunk has {len(data)} samples but {len(timestamps)} timestamps"
            )
        n = len(data)
        with self._cond:
            first = self._total
            if n > self.capacity:  # only the newest samples can be kept
                data, timestamps = data[-self.capacity :], timestamps[-self.capacity :]
                skip = n - self.capacity
            else:
                skip = 0
            m = len(data)
            start = (first + skip) % self.capacity
            end = start + m
            if end <= self.capacity:
                self._data[start:end] = data
                self._times[start:end] = timestamps
            else:
                k = self.capacity - start
                self._data[start:] = data[:k]
                self._data[: m - k] = data[k:]
                self._times[start:] = timestamps[:k]
                self._times[: m - k] = timestamps[k:]
            self._total = first + n
            self._cond.notify_all()
        return first

    def add_gap(self, gap: Gap) -> None:
        """Record that samples are missing after absolute index ``gap.after_index``."""
        with self._cond:
            self._gaps.append(gap)

    def add_event(self, event: SourceEvent) -> None:
        """Record a device event (added before the sample it marks is pushed)."""
        with self._cond:
            self._events.append(event)

    # -- readers --------------------------------------------------------------------
    @property
    def gaps(self) -> list[Gap]:
        """Every gap recorded so far, oldest first (a copy)."""
        with self._cond:
            return list(self._gaps)

    def gaps_since(self, n_known: int) -> list[Gap]:
        """The gaps after the first ``n_known`` (for readers that keep a count)."""
        with self._cond:
            return self._gaps[n_known:]

    def events_since(self, n_known: int) -> list[SourceEvent]:
        """The device events after the first ``n_known``."""
        with self._cond:
            return self._events[n_known:]

    def index_at(self, t: float) -> int | None:
        """Absolute index of the first held sample stamped at or after ``t``; ``None`` when
        no such sample has arrived yet (the oldest held sample if ``t`` is older)."""
        with self._cond:
            n = min(self._total, self.capacity)
            if n == 0:
                return None
            first = self._total - n
            idx = (np.arange(first, self._total) % self.capacity)
            times = self._times[idx]
        if times[-1] < t:
            return None
        return first + int(np.searchsorted(times, t, side="left"))

    @property
    def total(self) -> int:
        """Absolute index of the next sample (= samples pushed so far)."""
        with self._cond:
            return self._total

    @property
    def overruns(self) -> int:
        """How many reads asked for samples that had been overwritten."""
        with self._cond:
            return self._overruns

    @property
    def missed(self) -> int:
        """Samples lost to overruns, over all readers."""
        with self._cond:
            return self._missed

    def _copy(self, first: int, stop: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        n = stop - first
        idx = (np.arange(first, stop) % self.capacity) if n else np.empty(0, dtype=np.int64)
        return self._data[idx].copy(), self._times[idx].copy()

    def since(self, index: int, max_samples: int | None = None) -> Chunk:
        """Samples from absolute ``index`` on (a copy).

        If some of them were already overwritten, the chunk starts at the oldest sample
        still held and ``missed`` says how many were lost; the overrun is counted.
        """
        with self._cond:
            oldest = max(0, self._total - self.capacity)
            missed = 0
            if index < oldest:
                missed = oldest - index
                self._overruns += 1
                self._missed += missed
                index = oldest
            stop = self._total if max_samples is None else min(self._total, index + max_samples)
            stop = max(stop, index)
            data, times = self._copy(index, stop)
        return Chunk(data, times, index, missed)

    def latest(self, seconds: float | None = None, n_samples: int | None = None) -> Chunk:
        """The newest ``seconds`` (or ``n_samples``) of data held, oldest first (a copy)."""
        if n_samples is None:
            if seconds is None:
                raise ValueError("latest() needs seconds or n_samples")
            n_samples = round(seconds * self.sfreq_hz)
        with self._cond:
            held = min(self._total, self.capacity)
            n = min(n_samples, held)
            first = self._total - n
            data, times = self._copy(first, self._total)
        return Chunk(data, times, first, 0)

    def wait_for(self, index: int, timeout_s: float) -> bool:
        """Block until sample ``index`` exists (``total > index``) or the timeout ends."""
        with self._cond:
            return self._cond.wait_for(lambda: self._total > index, timeout=timeout_s)
