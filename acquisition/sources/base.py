"""The one interface every signal source implements.

A source owns a reader thread that pulls chunks from its device (``_read``), pushes them
into a fixed-size :class:`~acquisition.ringbuffer.RingBuffer` in EPOC order, µV, at
128 Hz, and watches the stream: no data for ``loss_timeout_s`` marks the source ``lost``,
closes the device and reconnects with back-off; the missing interval is kept as a
:class:`~acquisition.ringbuffer.Gap` in the ring buffer, never filled with invented
samples.

Subclasses implement three hooks: :meth:`BaseSource._open` (connect, return a
:class:`DeviceInfo`), :meth:`BaseSource._read` (return a :class:`ReadResult` or ``None``
when nothing arrived within the timeout; raise :class:`EndOfStream` when a finite
recording ends) and :meth:`BaseSource._close`.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.errors import SourceError
from acquisition.ringbuffer import Gap, RingBuffer

log = logging.getLogger(__name__)


def local_clock() -> float:
    """The EEG clock: LSL's ``local_clock`` (seconds, monotonic, shared by processes)."""
    import pylsl

    return float(pylsl.local_clock())


class SourceStatus(enum.StrEnum):
    """Where a source is in its life."""

    IDLE = "idle"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    LOST = "lost"
    STOPPED = "stopped"


class EndOfStream(Exception):  # a signal, not an error
    """Raised by ``_read`` when a finite recording has been played to its end."""


class FatalSourceError(SourceError):
    """Raised by ``_read`` for a fault reconnecting cannot cure (a stream stamped on
    another clock, say): the source stops, with the reason in ``last_error``."""


@dataclass
class DeviceInfo:
    """What a source knows about the device behind it."""

    kind: str
    name: str
    native_sfreq_hz: float
    native_channels: tuple[str, ...] = ()
    serial: str = ""
    notes: list[str] = field(default_factory=list)
    #: EPOC name -> the device's own name of the channel used for it (when they differ)
    channel_map: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "name": self.name,
            "native_sfreq_hz": self.native_sfreq_hz,
            "native_channels": list(self.native_channels),
            "serial": self.serial,
            "notes": list(self.notes),
            "channel_map": dict(self.channel_map),
        }


@dataclass
class ReadResult:
    """One chunk from a device, already in EPOC order, µV, at 128 Hz."""

    data: NDArray[np.float64]
    timestamps: NDArray[np.float64]
    lost: int = 0  # samples the device says it dropped just before this chunk
    interpolated: int = 0  # samples in this chunk the device filled in
    lost_reason: str = "device dropped samples"  # why ``lost`` samples are missing


@dataclass
class SourceCounters:
    """Running counts of a source."""

    received: int = 0
    lost: int = 0
    interpolated: int = 0
    reconnects: int = 0


class BaseSource(ABC):
    """Base class of every signal source (use as ``with source: ...``).

    Parameters
    ----------
    buffer_seconds : float
        Ring buffer length.
    loss_timeout_s : float
        No data for this long marks the source ``lost`` and starts reconnecting.
    reconnect : bool
        Reconnect by itself after a loss (with back-off from 0.25 s to 2 s).
    """

    kind = "base"
    channels: tuple[str, ...] = EPOC_CHANNELS
    sfreq_hz: float = SFREQ_HZ

    def __init__(
        self,
        *,
        buffer_seconds: float = 600.0,
        loss_timeout_s: float = 2.0,
        reconnect: bool = True,
    ) -> None:
        self.buffer = RingBuffer(len(self.channels), int(buffer_seconds * self.sfreq_hz), self.sfreq_hz)
        self.loss_timeout_s = loss_timeout_s
        self.reconnect = reconnect
        self.counters = SourceCounters()
        self.info: DeviceInfo | None = None
        self.last_error: str | None = None
        self._status = SourceStatus.IDLE
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[SourceStatus], None]] = []
        self._status_cond = threading.Condition()

    # -- public API -----------------------------------------------------------------
    @property
    def gaps(self) -> list[Gap]:
        """The gaps of this stream so far (held by its ring buffer)."""
        return self.buffer.gaps

    @property
    def status(self) -> SourceStatus:
        return self._status

    def add_status_listener(self, callback: Callable[[SourceStatus], None]) -> None:
        """Call ``callback(status)`` (from the reader thread) on every status change."""
        self._listeners.append(callback)

    def connect(self, timeout_s: float = 10.0) -> BaseSource:
        """Open the device and start the reader thread.

        Raises
        ------
        SourceError
            If the device cannot be opened (the message says why).
        """
        if self._thread is not None:
            return self
        self._set_status(SourceStatus.CONNECTING)
        try:
            self.info = self._open_checked(timeout_s)
        except BaseException:
            self._set_status(SourceStatus.STOPPED)
            raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"duygu-{self.kind}-reader", daemon=True)
        self._thread.start()
        return self

    def disconnect(self, timeout_s: float = 5.0) -> None:
        """Stop the reader thread and close the device. Safe to call twice."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        self._safe_close()
        self._set_status(SourceStatus.STOPPED)

    def wait_for_status(self, status: SourceStatus, timeout_s: float) -> bool:
        """Block until the source reaches ``status`` or the timeout ends."""
        with self._status_cond:
            return self._status_cond.wait_for(lambda: self._status == status, timeout=timeout_s)

    def wait_for_samples(self, n_total: int, timeout_s: float) -> bool:
        """Block until at least ``n_total`` samples have been received in all."""
        return self.buffer.wait_for(n_total - 1, timeout_s)

    def stats(self) -> dict[str, object]:
        """Counters, status and device info as plain data (for JSON and the GUI)."""
        return {
            "status": str(self._status),
            "received": self.counters.received,
            "lost": self.counters.lost,
            "interpolated": self.counters.interpolated,
            "reconnects": self.counters.reconnects,
            "overruns": self.buffer.overruns,
            "gaps": len(self.gaps),
            "device": self.info.as_dict() if self.info else None,
            "last_error": self.last_error,
        }

    def quality_reader(self, on_error: Callable[[str], None] | None = None) -> Any:
        """A :class:`~acquisition.sources.quality.QualityReader` for the headset's own
        contact-quality stream, or ``None`` when the device has none (the default)."""
        return None

    def __enter__(self) -> BaseSource:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # -- hooks ------------------------------------------------------------------------
    @abstractmethod
    def _open(self, timeout_s: float) -> DeviceInfo:
        """Connect to the device; raise :class:`SourceError` with a reason on failure."""

    @abstractmethod
    def _read(self, timeout_s: float) -> ReadResult | None:
        """Return the next chunk, or ``None`` if nothing arrived within ``timeout_s``."""

    @abstractmethod
    def _close(self) -> None:
        """Release the device. Must not raise."""

    # -- machinery --------------------------------------------------------------------
    def _open_checked(self, timeout_s: float) -> DeviceInfo:
        try:
            return self._open(timeout_s)
        except SourceError:
            raise
        except Exception as exc:  # a library error: name the source and keep the reason
            raise SourceError(f"{self.kind} source could not connect: {exc}") from exc

    def _set_status(self, status: SourceStatus) -> None:
        with self._status_cond:
            if status == self._status:
                return
            self._status = status
            self._status_cond.notify_all()
        log.info("%s source: %s", self.kind, status)
        for callback in list(self._listeners):
            try:
                callback(status)
            except Exception:
                log.exception("status listener failed")

    def _safe_close(self) -> None:
        try:
            self._close()
        except Exception:
            log.exception("%s source: error while closing", self.kind)

    def _push(self, res: ReadResult, last_time: float | None) -> None:
        n = len(res.timestamps)
        if res.lost:
            start = last_time if last_time is not None else float(res.timestamps[0])
            self.buffer.add_gap(
                Gap(self.buffer.total - 1, start, float(res.timestamps[0]), int(res.lost), res.lost_reason)
            )
            self.counters.lost += int(res.lost)
        self.buffer.push(res.data, res.timestamps)
        self.counters.received += n
        self.counters.interpolated += int(res.interpolated)

    def _run(self) -> None:
        last_data = time.monotonic()
        last_time: float | None = None
        lost_at: int | None = None  # buffer index when the loss began
        if self.buffer.total > 0:  # connected again after a disconnect: the time between is a gap
            lost_at = self.buffer.total - 1
            last_time = float(self.buffer.latest(n_samples=1).timestamps[-1])
        backoff = 0.25
        while not self._stop.is_set():
            try:
                res = self._read(0.05)
            except EndOfStream:
                self._set_status(SourceStatus.STOPPED)
                self._safe_close()
                return
            except FatalSourceError as exc:
                self.last_error = str(exc)
                log.error(self.last_error)
                self._safe_close()
                self._set_status(SourceStatus.STOPPED)
                return
            except Exception as exc:  # the device failed: treat like a loss
                self.last_error = f"{self.kind} source read failed: {exc}"
                log.warning(self.last_error)
                res = None
                last_data = min(last_data, time.monotonic() - self.loss_timeout_s)
            if res is not None and len(res.timestamps) > 0:
                if lost_at is not None:
                    if last_time is not None:  # a loss before the first sample leaves no gap
                        t0 = float(res.timestamps[0])
                        missing = max(0, round((t0 - last_time) * self.sfreq_hz) - 1)
                        self.buffer.add_gap(Gap(lost_at, last_time, t0, missing, "device lost"))
                    lost_at = None
                try:
                    self._push(res, last_time)
                except Exception as exc:  # a malformed chunk: never end the reader silently
                    self.last_error = f"{self.kind} source could not take a chunk: {type(exc).__name__}: {exc}"
                    log.exception(self.last_error)
                    lost_at = self.buffer.total - 1
                    self._set_status(SourceStatus.LOST)
                    self._safe_close()
                    if not self.reconnect:
                        self._set_status(SourceStatus.STOPPED)
                        return
                    continue
                last_time = float(res.timestamps[-1])
                last_data = time.monotonic()
                backoff = 0.25
                self._set_status(SourceStatus.STREAMING)
                continue
            if self._status != SourceStatus.LOST and time.monotonic() - last_data > self.loss_timeout_s:
                lost_at = self.buffer.total - 1
                self._set_status(SourceStatus.LOST)
                self._safe_close()
                if not self.reconnect:
                    self._set_status(SourceStatus.STOPPED)
                    return
            if self._status == SourceStatus.LOST:
                if self._stop.wait(backoff):
                    break
                backoff = min(2.0, backoff * 2)
                try:
                    self.info = self._open_checked(timeout_s=1.0)
                except SourceError as exc:
                    self.last_error = str(exc)
                    continue
                self.counters.reconnects += 1
                last_data = time.monotonic()
                self._set_status(SourceStatus.CONNECTING)
