"""Helpers for the source tests: small recordings on disk and a pausable source."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.sources.base import BaseSource, DeviceInfo, ReadResult, local_clock


def _smallest_delay(source: BaseSource, since: float, until: float, deadline: float) -> float:
    """Observe ``source`` each time samples arrive between the monotonic times ``since``
    and ``until`` (at least once).

    Returns the smallest ``SFREQ_HZ * now - total`` seen: the source's delay behind the
    wall clock in samples, plus a constant. ``total`` is read before ``now``, so a push
    in between can only make one observation larger, never smaller.
    """
    best, n_seen = math.inf, 0
    cursor = source.buffer.total
    while time.monotonic() < until or n_seen == 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"{source.kind} source delivered nothing new before the deadline")
        if not source.buffer.wait_for(cursor, 0.5):
            continue
        total = source.buffer.total
        now = time.monotonic()
        cursor = total
        if now >= since:
            best = min(best, SFREQ_HZ * now - total)
            n_seen += 1
    return best


def drift_samples(source: BaseSource, span_s: float = 3.0, window_s: float = 1.0,
                  timeout_s: float = 60.0) -> float:
    """Samples a streaming source gains (< 0) or loses (> 0) on 128 Hz wall time over ``span_s``.

    The source is observed whenever new samples arrive, in a window of ``window_s`` at
    the start and another ``span_s`` later. A busy machine only ever makes an
    observation later than the push it follows, which adds to the delay, so the
    smallest delay in each window is what the source itself achieved; the difference
    of the two is the drift, free of scheduling noise that a start and an end reading
    would each carry.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    first = _smallest_delay(source, t0, t0 + window_s, deadline)
    last = _smallest_delay(source, t0 + span_s, t0 + span_s + window_s, deadline)
    return last - first


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    """Write a CSV with ``header`` and ``rows`` (cells written with ``str``)."""
    lines = [",".join(header)] + [",".join(str(c) for c in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ramp_recording(n_samples: int) -> NDArray[np.float64]:
    """(n, 14) samples: AF3 is the sample index, channel c is index + 1000 c."""
    idx = np.arange(n_samples, dtype=np.float64)[:, None]
    return idx + 1000.0 * np.arange(len(EPOC_CHANNELS))[None, :]


def write_epoc_edf(
    path: Path,
    data_uv: NDArray[np.float64],
    sfreq_hz: float,
    labels: tuple[str, ...] | None = None,
    unit: str = "uV",
    bdf: bool = False,
) -> Path:
    """Write ``data_uv`` (n, 14) as an EDF (or BDF) with one signal per column."""
    import edfio

    labels = labels or tuple(f"EEG {name}" for name in EPOC_CHANNELS)
    scale = {"uV": 1.0, "mV": 1e-3, "V": 1e-6}[unit]
    signal_cls = edfio.BdfSignal if bdf else edfio.EdfSignal
    signals = []
    for j, label in enumerate(labels):
        x = data_uv[:, j] * scale
        lo, hi = float(x.min()), float(x.max())
        signals.append(
            signal_cls(x, sfreq_hz, label=label, physical_dimension=unit, physical_range=(lo - abs(lo) * 0.01 - 1e-6, hi + abs(hi) * 0.01 + 1e-6))
        )
    container = edfio.Bdf(signals) if bdf else edfio.Edf(signals)
    container.write(path)
    return path


class PausableSource(BaseSource):
    """A real source whose device can be paused and resumed by the test.

    It produces a sample-index ramp on every channel at 128 Hz (paced by the wall
    clock); while paused it delivers nothing and cannot be reopened, like an unplugged
    headset. Samples due while paused are never delivered (the device missed them).
    """

    kind = "pausable"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.feeding = threading.Event()
        self.feeding.set()
        self.opens = 0
        self.refused = threading.Event()  # set when an open failed while unplugged
        self._drop = 0
        self._wall0 = 0.0
        self._t0 = 0.0
        self._next = 0  # index of the next sample to deliver
        #: monotonic time at which the last samples were handed to the reader
        self.last_delivery = 0.0

    def pause(self) -> None:
        self.feeding.clear()

    def resume(self) -> None:
        self.feeding.set()

    def drop_next(self, n_samples: int) -> None:
        """Skip the next ``n_samples`` and report them as dropped by the device."""
        self._drop = n_samples

    def _due(self) -> int:
        return int((time.monotonic() - self._wall0) * SFREQ_HZ)

    def _open(self, timeout_s: float) -> DeviceInfo:
        if not self.feeding.is_set():
            from acquisition.errors import SourceError

            self.refused.set()
            raise SourceError("pausable device is unplugged")
        if self.opens == 0:
            self._wall0 = time.monotonic()
            self._t0 = local_clock()
        self.opens += 1
        self._next = max(self._next, self._due())  # samples due while away are gone
        return DeviceInfo(kind=self.kind, name="pausable test device", native_sfreq_hz=SFREQ_HZ)

    def _read(self, timeout_s: float) -> ReadResult | None:
        if not self.feeding.is_set():
            time.sleep(timeout_s)  # an unplugged device: nothing arrives within the timeout
            return None
        due = self._due()
        if due - self._next < 4:
            time.sleep(min(timeout_s, (self._next + 4 - due) / SFREQ_HZ))
            due = self._due()
            if due <= self._next:
                return None
        drop, self._drop = self._drop, 0
        idx = np.arange(self._next + drop, max(due, self._next + drop + 1))
        self._next = int(idx[-1]) + 1
        data = np.repeat(idx[:, None].astype(np.float64), len(EPOC_CHANNELS), axis=1)
        self.last_delivery = time.monotonic()
        return ReadResult(data, self._t0 + idx / SFREQ_HZ, lost=drop)

    def _close(self) -> None:
        return None


def quality_failing_source(monkeypatch: Any) -> PausableSource:
    """A :class:`PausableSource` whose headset contact-quality reader (a real
    :class:`~acquisition.sources.quality.QualityReader`) fails in its own thread: LSL's
    stream resolution raises ("network is down") for as long as ``monkeypatch`` holds."""
    import pylsl

    from acquisition.sources.quality import QualityReader

    def broken_resolve(**_kwargs: object) -> object:
        raise OSError("network is down")

    monkeypatch.setattr(pylsl, "resolve_streams", broken_resolve)

    class WithQuality(PausableSource):
        def quality_reader(self, on_error: Any = None) -> QualityReader:
            return QualityReader("X-EEG", "host", on_error=on_error)

    return WithQuality()
