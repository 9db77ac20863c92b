"""Lab Streaming Layer inlet: EmotivPRO's EEG outlet or any LSL stream with EPOC labels.

:class:`LslSource` finds a stream by name or by ``key=value`` properties
(``type=EEG``), reads its channels **by label** and delivers the 14 EPOC channels in
EPOC order, in µV, at 128 Hz:

- **EmotivPRO layout** (labels ``Counter`` and ``Interpolate`` beside the 14
  electrodes; 19 channels with ``Markers`` since EmotivPRO 3.0, 18 before): 128 or
  256 Hz only (256 is resampled to 128, stateful across chunks). ``Counter`` gives an
  exact count of dropped samples; its modulus is learnt at its first wrap (0..rate-1
  as documented, 0..rate as an older manual says, or whatever the stream does --
  a mismatch with the nominal rate is a warning); a sample is a duplicate only when
  its counter *and* its time repeat. ``Interpolate`` > 0 marks samples the headset
  filled in. A ``HardwareMarker`` or ``Markers`` value that changes (to a non-zero
  value) becomes a device event, ``hardware:<value>`` or ``emotivpro:<value>``, stored
  as a marker at its sample.
- **Generic streams** whose labels include the 14 EPOC names: any regular rate of at
  least 128 Hz that is an exact fraction of 128 Hz (denominator below 1000) is
  resampled to 128 Hz; other rates and irregular streams are refused.

Units come from each channel's ``unit`` field: volts, millivolts, microvolts (also the
MNE integer exponents ``"0"``, ``"-3"``, ``"-6"`` that mne-lsl writes); a missing unit
means µV (EmotivPRO). Timestamps are the sender's LSL timestamps with the clock offset
removed (liblsl's ``clocksync`` and ``monotonize`` post-processing). Samples with NaN or
infinite values (or beyond float32's range) are never passed on: they are counted as
lost, with a gap.

Clock sanity: the first samples of a stream must be stamped within
:data:`MAX_CLOCK_SKEW_S` of this machine's LSL clock once the offset is removed. A bridge
that stamps with Unix time (or another clock) would put every trial window seconds off,
silently, so such a stream is refused with the offset named -- or, with
``restamp=True`` (``lsl:NAME?restamp=arrival``), re-stamped from the arrival time, and
the device notes say so.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition.channels import (
    EPOC_CHANNELS,
    SFREQ_HZ,
    match_channels,
    missing_channels,
    unit_scale_to_uv,
)
from acquisition.errors import SourceError
from acquisition.ringbuffer import SourceEvent
from acquisition.sources.base import (
    BaseSource,
    DeviceInfo,
    FatalSourceError,
    ReadResult,
    local_clock,
)
from acquisition.sources.quality import QualityReader
from acquisition.sources.resample import StreamResampler

log = logging.getLogger(__name__)

#: Stream properties a target may name (``lsl:type=EEG``, ``lsl:name=X,type=EEG``).
TARGET_KEYS = ("name", "type", "source_id", "hostname")

#: liblsl channel_format codes
_FORMAT_NAMES = {1: "float32", 2: "double64", 3: "string", 4: "int32", 5: "int16", 6: "int8",
                 7: "int64"}

#: Rates EmotivPRO streams at.
EMOTIV_RATES_HZ = (128.0, 256.0)

#: Largest distance (s) between a stream's corrected stamps and this machine's clock.
MAX_CLOCK_SKEW_S = 5.0

#: Largest magnitude of a sample (the store keeps float32).
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: Default shortest time between two reads of the inlet (see ``LslSource``).
MIN_READ_INTERVAL_S = 0.005

@dataclass(frozen=True)
class StreamTarget:
    """Which stream to look for: properties that must all match."""

    props: tuple[tuple[str, str], ...]

    @property
    def predicate(self) -> str:
        """The XPath 1.0 predicate for ``pylsl.resolve_bypred`` (type ignores case)."""
        parts = []
        for key, value in self.props:
            if key == "type":
                lower, upper = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                parts.append(f"translate(type,'{lower}','{upper}')='{value.upper()}'")
            else:
                parts.append(f"{key}='{value}'")
        return " and ".join(parts)

    def describe(self) -> str:
        return " and ".join(f"{key} {value!r}" for key, value in self.props)


def parse_target(target: str) -> StreamTarget:
    """Parse ``NAME``, ``type=EEG``, ``name=X`` or ``name=X,type=EEG``.

    Raises
    ------
    SourceError
        For an empty target, an unknown property or a value with a quote.
    """
    text = target.strip()
    if not text:
        raise SourceError("lsl target must be a stream name or type=TYPE, got ''")
    key0 = text.split("=", 1)[0].strip().lower()
    if "=" in text and key0 in TARGET_KEYS:
        props = []
        for part in text.split(","):
            key, eq, value = part.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not eq or key not in TARGET_KEYS or not value:
                raise SourceError(
                    f"lsl target {target!r}: each part must be KEY=VALUE with KEY one of "
                    f"{', '.join(TARGET_KEYS)}, got {part.strip()!r}"
                )
            props.append((key, value))
    else:
        props = [("name", text)]
    for key, value in props:
        if "'" in value:
            raise SourceError(f"lsl target {key} must not contain a quote, got {value!r}")
    return StreamTarget(tuple(props))


@dataclass(frozen=True)
class StreamLayout:
    """How to read one stream: where the EPOC channels are and how to scale them."""

    stream: str
    layout: str  # "emotivpro-19", "emotivpro-18", "emotivpro" or "generic"
    native_sfreq_hz: float
    eeg_index: tuple[int, ...]  # 14 column indices in EPOC order
    scale_to_uv: tuple[float, ...]  # 14 factors
    units: tuple[str, ...]  # the 14 units as the stream states them
    counter_index: int | None = None
    interpolate_index: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    hardware_marker_index: int | None = None  # EmotivPRO's HardwareMarker (Extender triggers)
    markers_index: int | None = None  # EmotivPRO's Markers (its own markers, since 3.0)

    @property
    def emotiv(self) -> bool:
        return self.counter_index is not None

    @property
    def resampled(self) -> bool:
        return self.native_sfreq_hz != SFREQ_HZ


def analyse_layout(
    stream: str,
    labels: list[str | None] | None,
    units: list[str | None] | None,
    sfreq_hz: float,
    n_channels: int,
) -> StreamLayout:
    """Decide how to read a stream from its channel labels, units and rate.

    Parameters
    ----------
    stream : str
        Stream name (for messages).
    labels, units : list of str or None
        From the stream description (``desc/channels/channel/label`` and ``unit``).
    sfreq_hz : float
        Nominal rate (0 = irregular).
    n_channels : int
        Channel count of the stream.

    Raises
    ------
    SourceError
        When the EPOC labels are missing, a unit is unknown or the rate is not accepted;
        the message names the stream, the value and the rule.
    """
    if not labels or all(not label for label in labels):
        raise SourceError(
            f"LSL stream {stream!r} has no channel labels in its description: Duygu reads "
            "channels by label (AF3 ... AF4), never by position"
        )
    names = [label or "" for label in labels][:n_channels]
    index = match_channels(names)
    if index is None:
        missing = missing_channels(names)
        raise SourceError(
            f"LSL stream {stream!r} lacks the EPOC channel labels {', '.join(missing)} "
            f"(it has {', '.join(names[:24])}{' ...' if len(names) > 24 else ''})"
        )
    upper = [name.strip().upper() for name in names]
    counter = upper.index("COUNTER") if "COUNTER" in upper else None
    hardware = upper.index("HARDWAREMARKER") if "HARDWAREMARKER" in upper else None
    marker_col = upper.index("MARKERS") if "MARKERS" in upper else None
    interpolate = next((i for i, u in enumerate(upper) if u in ("INTERPOLATE", "INTERPOLATED")), None)
    emotiv = counter is not None and interpolate is not None
    unit_list = [(units[i] if units and i < len(units) else None) or "" for i in index]
    scales = []
    for i, unit in zip(index, unit_list, strict=True):
        scale = unit_scale_to_uv(unit)
        if scale is None:
            raise SourceError(
                f"LSL stream {stream!r} channel {names[i]} unit must be V, mV, µV or nV "
                f"(or an MNE exponent such as -6), got {unit!r}"
            )
        scales.append(scale)
    if not math.isfinite(sfreq_hz) or sfreq_hz <= 0:
        raise SourceError(
            f"sfreq must be a regular rate, got {sfreq_hz:g} (LSL stream {stream!r} is "
            "irregular: EEG needs a nominal rate)"
        )
    notes: list[str] = []
    if emotiv:
        if sfreq_hz not in EMOTIV_RATES_HZ:
            raise SourceError(
                f"sfreq must be 128 or 256 Hz, got {sfreq_hz:g} (EmotivPRO layout of LSL "
                f"stream {stream!r})"
            )
        layout = {19: "emotivpro-19", 18: "emotivpro-18"}.get(n_channels, "emotivpro")
        notes.append(f"EmotivPRO layout ({n_channels} channels), Counter and Interpolate read by label")
    else:
        layout = "generic"
        if sfreq_hz < SFREQ_HZ:
            raise SourceError(
                f"sfreq must be >= 128 Hz for a generic EEG stream, got {sfreq_hz:g} "
                f"(LSL stream {stream!r})"
            )
        ratio = Fraction(SFREQ_HZ / sfreq_hz).limit_denominator(1000)
        if abs(float(ratio) - SFREQ_HZ / sfreq_hz) > 1e-12:
            raise SourceError(
                f"sfreq must be a rate that 128 Hz divides as a fraction with a denominator "
                f"below 1000, got {sfreq_hz:g} (LSL stream {stream!r})"
            )
        notes.append("generic stream: EPOC channels read by label; no Counter, so "
                     "dropped samples inside the stream cannot be counted")
    if sfreq_hz != SFREQ_HZ:
        notes.append(f"resampled {sfreq_hz:g} -> {SFREQ_HZ:g} Hz (polyphase, stateful)")
    if any(scale != 1.0 for scale in scales):
        notes.append(f"units {sorted(set(unit_list))} converted to µV")
    return StreamLayout(
        stream=stream,
        layout=layout,
        native_sfreq_hz=float(sfreq_hz),
        eeg_index=tuple(index),
        scale_to_uv=tuple(scales),
        units=tuple(unit_list),
        counter_index=counter if emotiv else None,
        interpolate_index=interpolate if emotiv else None,
        notes=tuple(notes),
        hardware_marker_index=hardware,
        markers_index=marker_col,
    )


def _pylsl() -> Any:
    import pylsl
    import pylsl.util

    return pylsl


class _Resampling:
    """A :class:`StreamResampler` that knows absolute sample positions across gaps.

    Before a gap it flushes the outputs whose centre lies on real input (holding the last
    value, as the resampler holds the first one at its start) and resets. For integer
    decimation (256 -> 128) the output grid stays on every ``down``-th native sample
    across gaps, so the number of missing output slots is exact.
    """

    def __init__(self, in_hz: float, out_hz: float, n_channels: int) -> None:
        self.rs = StreamResampler(in_hz, out_hz, n_channels)
        self.up, self.down = self.rs.up, self.rs.down
        self.in_hz = in_hz
        self.n_channels = n_channels
        self.next_abs = 0  # absolute native index of the next input sample
        self.last_out_pos: float | None = None  # absolute native position of the last output
        self.pending_lost = 0  # output slots missed, reported with the next output
        self._new_segment()

    def _new_segment(self) -> None:
        self.rs.reset()
        self.origin: int | None = None
        self.n_in = 0
        self.n_out = 0
        self.skip = 0
        self.flags = np.zeros(0, dtype=bool)  # interpolated flags of inputs since origin
        self.flags_start = 0

    def _interp_count(self, j0: int, j1: int) -> int:
        if self.up != 1 or j1 <= j0:
            return 0
        centres = np.arange(j0, j1) * self.down - self.flags_start
        count = int(self.flags[centres].sum())
        keep = j1 * self.down - self.flags_start
        self.flags = self.flags[keep:]
        self.flags_start += keep
        return count

    def _emit(self, out: NDArray[np.float64], times: NDArray[np.float64]) -> ReadResult:
        j0 = self.n_out
        self.n_out += len(times)
        assert self.origin is not None
        self.last_out_pos = self.origin + (self.n_out - 1) * self.down / self.up
        lost, self.pending_lost = self.pending_lost, 0
        return ReadResult(out, times, lost, self._interp_count(j0, self.n_out))

    def flush(self) -> ReadResult | None:
        """Outputs still held for the last real inputs (then the resampler is reset)."""
        result = None
        if self.n_in > 0:
            out, times = self.rs.flush()
            if len(times):
                result = self._emit(out, times)
        self._new_segment()
        return result

    def process(
        self,
        data: NDArray[np.float64],
        times: NDArray[np.float64],
        flags: NDArray[np.bool_],
        lost_native: int,
    ) -> list[ReadResult]:
        """Resample one gap-free run of native samples preceded by ``lost_native`` losses."""
        results: list[ReadResult] = []
        if lost_native > 0:
            tail = self.flush()
            if tail is not None:
                results.append(tail)
        abs_first = self.next_abs + lost_native
        self.next_abs = abs_first + len(times)
        if self.origin is None:
            if self.up == 1:
                self.skip = (-abs_first) % self.down  # stay on the grid of every down-th sample
            self.origin = abs_first + self.skip
        if self.skip:
            drop = min(self.skip, len(times))
            self.skip -= drop
            data, times, flags = data[drop:], times[drop:], flags[drop:]
        if len(times) == 0:
            return results
        if self.n_in == 0 and self.last_out_pos is not None:
            self.pending_lost += max(
                0, round((self.origin - self.last_out_pos) * self.up / self.down) - 1
            )
        self.flags = np.concatenate([self.flags, flags])
        self.n_in += len(times)
        out, out_times = self.rs.process(data, times)
        if len(out_times):
            results.append(self._emit(out, out_times))
        return results


class LslSource(BaseSource):
    """EEG from a Lab Streaming Layer stream (EmotivPRO's EEG outlet or a generic one).

    Parameters
    ----------
    target : str
        A stream name (``EmotivDataStream-EEG``) or ``KEY=VALUE`` properties joined by
        commas: ``type=EEG``, ``name=X``, ``source_id=X``, ``hostname=X``.
    max_chunk_samples : int
        Largest chunk pulled at once.
    min_read_interval_s : float
        Shortest time between two reads of the inlet. The reader blocks on the inlet
        until a sample arrives (never polls), then takes everything that is there; when
        samples come faster than this (a fast replay, a 256 Hz stream sent sample by
        sample), the next read waits out the interval so that several pushes are taken
        at once: the cost of a read is mostly fixed, so this bounds the reader's CPU at
        any rate. At EmotivPRO's rhythm (a chunk every ~31 ms at 128 Hz) it adds no
        delay; in the worst case a sample waits this long. 0 reads at every push.
    dejitter : bool
        Also smooth timestamps with liblsl's dejitter. Off by default: liblsl fits
        timestamps against the count of samples received, so after dropped samples it
        would misplace the ones that follow.
    restamp : bool
        Stamp samples from their arrival time (spaced at the nominal rate) instead of
        the sender's stamps: for bridges that stamp on another clock. Without it such a
        stream is refused at connect time.
    **kwargs
        :class:`~acquisition.sources.base.BaseSource` options (``buffer_seconds``,
        ``loss_timeout_s``, ``reconnect``).

    Notes
    -----
    On reconnect after a loss the source looks for the same stream again; if the first
    stream had a ``source_id``, only a stream with that ``source_id`` is accepted (a
    restarted EmotivPRO or player keeps it), so another headset is never picked up.
    """

    kind = "lsl"

    def __init__(self, target: str, *, max_chunk_samples: int = 1024, dejitter: bool = False,
                 restamp: bool = False, min_read_interval_s: float = MIN_READ_INTERVAL_S,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = parse_target(target)
        self.max_chunk_samples = int(max_chunk_samples)
        if not (0.0 <= min_read_interval_s <= 0.05):
            raise SourceError(f"min_read_interval_s must be between 0 and 0.05 s, got {min_read_interval_s!r}")
        self.min_read_interval_s = float(min_read_interval_s)
        self._next_read = 0.0  # monotonic time before which the inlet is not read again
        self.dejitter = dejitter
        self.restamp = restamp
        #: corrected stamp minus local clock of the first samples (s), once measured
        self.clock_skew_s: float | None = None
        self._last_restamp: float | None = None
        self.layout: StreamLayout | None = None
        self.source_id: str = ""
        self.hostname: str = ""
        #: dropped samples counted at the stream's own rate (exact, from Counter)
        self.native_lost = 0
        #: samples dropped because they held NaN or infinite values
        self.invalid_samples = 0
        #: samples received twice (same Counter and timestamp) and dropped
        self.duplicates = 0
        self._inlet: Any = None
        self._pending: deque[ReadResult] = deque()
        self._reset_stream_state()

    # -- BaseSource hooks -------------------------------------------------------------
    def _open(self, timeout_s: float) -> DeviceInfo:
        pylsl = _pylsl()
        t_end = time.monotonic() + timeout_s
        predicate = self.target.predicate
        described = self.target.describe()
        if self.source_id:  # reconnecting: only the same device
            predicate += f" and source_id='{self.source_id}'"
            described += f" and source_id {self.source_id!r}"
        candidates = pylsl.resolve_bypred(predicate, 1, max(0.05, timeout_s))
        if not candidates:
            raise SourceError(f"no LSL stream with {described} found within {timeout_s:g} s")
        first_error: SourceError | None = None
        for info in candidates:
            try:
                return self._open_stream(pylsl, info, max(1.0, t_end - time.monotonic()),
                                         len(candidates))
            except SourceError as exc:
                first_error = first_error or exc
        assert first_error is not None
        raise first_error

    def _open_stream(self, pylsl: Any, info: Any, timeout_s: float, n_candidates: int) -> DeviceInfo:
        flags = pylsl.proc_clocksync | pylsl.proc_monotonize
        if self.dejitter:
            flags |= pylsl.proc_dejitter
        name = info.name()
        if info.channel_format() == pylsl.cf_string:
            raise SourceError(f"LSL stream {name!r} carries strings; EEG needs numbers")
        inlet = pylsl.StreamInlet(info, max_buflen=360, max_chunklen=0, recover=True,
                                  processing_flags=flags)
        try:
            full = inlet.info(timeout=timeout_s)
            layout = analyse_layout(name, full.get_channel_labels(), full.get_channel_units(),
                                    full.nominal_srate(), full.channel_count())
            inlet.open_stream(timeout=timeout_s)
            offset_s = inlet.time_correction(timeout=timeout_s)
        except pylsl.util.TimeoutError:
            inlet.close_stream()
            raise SourceError(
                f"LSL stream {name!r} did not answer (description, subscription or clock "
                f"offset) within {timeout_s:g} s"
            ) from None
        except BaseException:
            inlet.close_stream()
            raise
        self._close()
        self._inlet = inlet
        self.layout = layout
        self.source_id = full.source_id() or ""
        self.hostname = full.hostname() or ""
        self._reset_stream_state()
        try:
            self._first_chunk(min(timeout_s, 2.0))
        except SourceError:
            self._close()
            raise
        labels = tuple(label or "" for label in (full.get_channel_labels() or []))
        notes = [*layout.notes, f"type {full.type()!r}, clock offset {offset_s * 1e3:.3f} ms"]
        manufacturer = full.desc().child_value("manufacturer")
        if manufacturer:  # e.g. "Emotiv (simulated by Duygu)": the app marks such a stream simulated
            notes.append(f"manufacturer {manufacturer!r}")
        if self.restamp:
            notes.append("stamped from arrival time (restamp): the sender's stamps are not used")
        elif self.clock_skew_s is not None:
            notes.append(f"stamps within {abs(self.clock_skew_s):.3f} s of this machine's clock")
        if n_candidates > 1:
            notes.append(f"{n_candidates} streams matched {self.target.describe()}; using this one")
        return DeviceInfo(kind="lsl", name=name, native_sfreq_hz=layout.native_sfreq_hz,
                          native_channels=labels, serial=self.source_id, notes=notes)

    def _read(self, timeout_s: float) -> ReadResult | None:
        if self._pending:
            return self._pending.popleft()
        if self._inlet is None or self.layout is None or self._stop.is_set():
            return None  # (stopping: the inlet is not touched again)
        wait_s = self._next_read - time.monotonic()
        if wait_s > 0 and self._stop.wait(min(wait_s, timeout_s)):  # let a fast stream gather
            return None
        self._pull(timeout_s)
        return self._pending.popleft() if self._pending else None

    def _pull(self, timeout_s: float) -> None:
        """Pull a chunk, check or replace its stamps, convert it into ``_pending``.

        Takes what the inlet already holds; when it holds nothing, blocks in liblsl until
        the first sample arrives (or ``timeout_s``) and takes whatever else came with
        it. Samples that were already waiting mean the stream outpaces the reads: the
        next read then waits ``min_read_interval_s``; after a wait for the stream, or a
        full pull (a backlog), it follows at once (the rest of a chunk can trail its
        first sample).
        """
        assert self._inlet is not None and self.layout is not None
        inlet, n_max = self._inlet, self.max_chunk_samples
        samples, stamps = inlet.pull_chunk(timeout=0.0, max_samples=n_max, as_numpy=True)
        if len(stamps) == n_max:  # a backlog: read on at once
            self._next_read = 0.0
        elif len(stamps):
            self._next_read = time.monotonic() + self.min_read_interval_s
        else:
            samples, stamps = inlet.pull_chunk(timeout=timeout_s, max_samples=n_max, min_samples=1,
                                               as_numpy=True)
            self._next_read = 0.0
            if len(stamps) == 0:
                return
        stamps = np.asarray(stamps, dtype=np.float64)
        if self.restamp:
            stamps = self._arrival_stamps(len(stamps))
        elif self.clock_skew_s is None:
            self._check_clock(stamps)
        self._pending.extend(self._convert(np.asarray(samples), stamps))

    def _first_chunk(self, timeout_s: float) -> None:
        """Read the first samples at connect time, so a stream on another clock is refused
        before anything is recorded (a silent stream is checked at its first chunk)."""
        self._pull(timeout_s)

    def _check_clock(self, stamps: NDArray[np.float64]) -> None:
        skew = float(stamps[-1]) - local_clock()
        if abs(skew) > MAX_CLOCK_SKEW_S:
            assert self.layout is not None
            raise FatalSourceError(
                f"LSL stream {self.layout.stream!r} is stamped {skew:+.1f} s away from this machine's LSL "
                f"clock (after the clock offset is removed): it uses another clock (Unix time?); fix the "
                f"sender, or add ?restamp=arrival to the source to stamp samples on arrival"
            )
        self.clock_skew_s = skew

    def _arrival_stamps(self, n: int) -> NDArray[np.float64]:
        """Stamps for ``n`` samples that arrived now: the newest at the arrival time, the
        others spaced at the nominal rate, never earlier than the previous chunk's."""
        assert self.layout is not None
        period = 1.0 / self.layout.native_sfreq_hz
        stamps = np.asarray(local_clock() - period * np.arange(n - 1, -1, -1), dtype=np.float64)
        last = self._last_restamp
        if last is not None and stamps[0] <= last:
            stamps = np.asarray(last + period * np.arange(1, n + 1), dtype=np.float64)
        self._last_restamp = float(stamps[-1])
        return stamps

    def _close(self) -> None:
        inlet, self._inlet = self._inlet, None
        self._pending.clear()
        if inlet is not None:
            inlet.close_stream()

    def quality_reader(self, on_error: Callable[[str], None] | None = None) -> QualityReader | None:
        """A reader of the quality stream EmotivPRO publishes beside this EEG stream (same
        host, same name prefix); ``None`` before the stream is connected."""
        if self.info is None or not self.hostname:
            return None
        return QualityReader(self.info.name, self.hostname, on_error=on_error)

    # -- conversion -------------------------------------------------------------------
    def _reset_stream_state(self) -> None:
        self.clock_skew_s = None
        self._last_restamp = None
        self._last_counter: int | None = None
        self._last_time: float | None = None
        self._counter_modulus: int | None = None  # learnt at the Counter's first wrap
        self._counter_max = -1
        self._counter_warned = False
        self._last_marks: dict[int, float] = {}  # marker column -> its previous value
        self._bad_carry = 0
        self._next_read = 0.0
        layout = self.layout
        # precomputed once per stream: the columns to read and the unit factors (None = µV)
        self._eeg_cols = np.asarray(layout.eeg_index if layout is not None else (), dtype=np.intp)
        scales = np.asarray(layout.scale_to_uv if layout is not None else (), dtype=np.float64)
        self._scale: NDArray[np.float64] | None = None if np.all(scales == 1.0) else scales
        self._resampling = (
            _Resampling(layout.native_sfreq_hz, SFREQ_HZ, len(EPOC_CHANNELS))
            if layout is not None and layout.resampled else None
        )

    def _counter_lost(self, c_prev: NDArray[np.int64], c: NDArray[np.int64], t_prev: NDArray[np.float64],
                      t: NDArray[np.float64], modulus: int) -> NDArray[np.int64]:
        """Samples missing between consecutive samples: the Counter step modulo its
        modulus, plus the whole counter cycles the timestamps say passed; negative = the
        counter went back (a repeat, or an inconsistent counter)."""
        assert self.layout is not None
        rate = self.layout.native_sfreq_hz
        d = (c - c_prev - 1) % modulus
        est = np.rint((t - t_prev) * rate) - 1
        return (d + np.rint((est - d) / modulus).astype(np.int64) * modulus).astype(np.int64)

    def _learn_modulus(self, c_raw: NDArray[np.int64], t: NDArray[np.float64]) -> int:
        """The Counter's modulus: learnt at its first wrap, from the candidates (the rate,
        the rate + 1 of an older Emotiv manual, the largest value seen + 1) the one whose
        step across the wrap the timestamps confirm; widened if a larger value appears."""
        assert self.layout is not None
        rate = int(self.layout.native_sfreq_hz)
        prev_c = [self._last_counter] if self._last_counter is not None else []
        prev_t = [self._last_time] if self._last_time is not None else []
        full_c = np.concatenate([np.asarray(prev_c, dtype=np.int64), c_raw])
        full_t = np.concatenate([np.asarray(prev_t, dtype=np.float64), t])
        if self._counter_modulus is None:
            wraps = np.flatnonzero(np.diff(full_c) < 0)
            if len(wraps):
                k = int(wraps[0])
                self._counter_max = max(self._counter_max, int(full_c[: k + 1].max()))
                before, after = int(full_c[k]), int(full_c[k + 1])
                est = round(float(full_t[k + 1] - full_t[k]) * rate) - 1
                candidates = sorted({rate, rate + 1, self._counter_max + 1} - {0})
                candidates = [m for m in candidates if m > max(before, after)]
                self._counter_modulus = min(candidates, key=lambda m: (abs((after - before - 1) % m - est), m != rate))
        self._counter_max = max(self._counter_max, int(c_raw.max()))
        modulus = self._counter_modulus or max(rate, self._counter_max + 1)
        if self._counter_max >= modulus:
            modulus = self._counter_modulus = self._counter_max + 1
        if self._counter_modulus is not None and self._counter_modulus != rate and not self._counter_warned:
            self._counter_warned = True
            self.last_error = (f"LSL stream {self.layout.stream!r}: Counter runs 0..{self._counter_modulus - 1}, "
                               f"not 0..{rate - 1} as at the nominal {rate} Hz; losses are counted modulo "
                               f"{self._counter_modulus}")
            log.warning(self.last_error)
        return modulus

    def _convert(self, raw: NDArray[Any], stamps: NDArray[np.float64]) -> list[ReadResult]:
        fast = self._convert_steady(raw, stamps)
        if fast is not None:
            return fast
        layout = self.layout
        assert layout is not None
        n = len(stamps)
        eeg = raw[:, self._eeg_cols].astype(np.float64)  # a copy in EPOC order
        if self._scale is not None:
            eeg *= self._scale
        counter = flags = None
        if layout.emotiv:
            assert layout.counter_index is not None and layout.interpolate_index is not None
            counter = raw[:, layout.counter_index].astype(np.float64)
            flags = raw[:, layout.interpolate_index] > 0  # NaN is not "interpolated"
        finite = bool(np.isfinite(eeg).all()) and (counter is None or bool(np.isfinite(counter).all()))
        # a finite float32 value read as µV is within float32's range; anything else is checked
        if finite and ((raw.dtype == np.float32 and self._scale is None) or np.abs(eeg).max() <= FLOAT32_MAX):
            good: NDArray[np.bool_] = np.ones(n, dtype=bool)  # the usual chunk: every sample valid
        else:
            with np.errstate(invalid="ignore"):
                good = np.asarray(np.isfinite(eeg).all(axis=1) & (np.abs(eeg) <= FLOAT32_MAX).all(axis=1))
            if counter is not None:
                good &= np.isfinite(counter)
        n_bad = n - int(good.sum())
        if n_bad:
            self.invalid_samples += n_bad
            self.last_error = (f"lsl source dropped {n_bad} sample(s) with NaN, infinite or out-of-range "
                               f"values from stream {layout.stream!r} ({self.invalid_samples} in all)")
            log.warning(self.last_error)
        rows = np.flatnonzero(good)
        if len(rows) == 0:
            self._bad_carry += n
            return []
        if counter is not None:
            rows, lost = self._emotiv_lost(rows, counter, stamps)
            if len(rows) == 0:
                return []
        else:
            bad_before = np.cumsum(~good)[rows]
            lost = np.diff(bad_before, prepend=0).astype(np.int64)
            lost[0] += self._bad_carry
        self._device_events(raw, rows, stamps)
        self._bad_carry = n - 1 - int(rows[-1]) if counter is None else 0
        self.native_lost += int(lost.sum())
        starts = np.flatnonzero(lost > 0)
        bounds = [0, *[int(s) for s in starts if s > 0], len(rows)]
        results: list[ReadResult] = []
        for a, b in pairwise(bounds):
            seg = rows[a:b]
            seg_flags = flags[seg] if flags is not None else np.zeros(len(seg), dtype=bool)
            if self._resampling is not None:
                results.extend(self._resampling.process(eeg[seg], stamps[seg], seg_flags,
                                                        int(lost[a])))
            else:
                results.append(ReadResult(eeg[seg], stamps[seg], int(lost[a]),
                                          int(seg_flags.sum())))
        return results

    def _convert_steady(self, raw: NDArray[Any], stamps: NDArray[np.float64]) -> list[ReadResult] | None:
        """The usual EmotivPRO chunk in a few array operations, or ``None`` when it is not
        one (then :meth:`_convert` checks everything sample by sample).

        Usual means: the Counter's modulus is known and every Counter follows the previous
        one, no step in time long enough to hide a whole Counter cycle, every value
        finite, no marker, no resampling -- exactly the chunks for which the full checks
        would find nothing to report.
        """
        layout = self.layout
        modulus = self._counter_modulus
        if (layout is None or not layout.emotiv or modulus is None or self._last_counter is None
                or self._last_time is None or self._resampling is not None or self._scale is not None
                or raw.dtype != np.float32):
            return None
        assert layout.counter_index is not None and layout.interpolate_index is not None
        n = len(stamps)
        counter = raw[:, layout.counter_index]
        expected = (self._last_counter + 1 + np.arange(n)) % modulus
        if not np.array_equal(counter, expected):  # a loss, a repeat, NaN or a fraction
            return None
        # a step of half a Counter cycle or more in time could hide whole lost cycles
        steps = np.diff(stamps, prepend=self._last_time)
        if steps.max() * layout.native_sfreq_hz >= modulus / 2:
            return None
        eeg = raw[:, self._eeg_cols].astype(np.float64)  # a copy in EPOC order
        if not np.isfinite(eeg).all():  # (a finite float32 is within float32's range)
            return None
        for col in (layout.hardware_marker_index, layout.markers_index):
            if col is not None and (self._last_marks.get(col, 0.0) != 0.0 or raw[:, col].any()):
                return None
        self._last_counter = int(expected[-1])
        self._last_time = float(stamps[-1])
        self._bad_carry = 0
        interpolated = int(np.count_nonzero(raw[:, layout.interpolate_index] > 0))
        return [ReadResult(eeg, stamps, 0, interpolated)]

    def _emotiv_lost(self, rows: NDArray[np.intp], counter: NDArray[np.float64],
                     stamps: NDArray[np.float64]) -> tuple[NDArray[np.intp], NDArray[np.int64]]:
        assert self.layout is not None
        half_period = 0.5 / self.layout.native_sfreq_hz
        modulus = self._learn_modulus(np.rint(counter[rows]).astype(np.int64), stamps[rows])
        while True:
            c = np.rint(counter[rows]).astype(np.int64) % modulus
            t = stamps[rows]
            if self._last_counter is None:
                c_prev = np.concatenate([c[:1], c[:-1]])
                t_prev = np.concatenate([t[:1], t[:-1]])
                lost = self._counter_lost(c_prev, c, t_prev, t, modulus)
                lost[0] = int(rows[0])  # invalid samples before the first valid one
            else:
                assert self._last_time is not None
                c_prev = np.concatenate([[self._last_counter % modulus], c[:-1]])
                t_prev = np.concatenate([[self._last_time], t[:-1]])
                lost = self._counter_lost(c_prev, c, t_prev, t, modulus)
            back = np.flatnonzero(lost < 0)
            if self._last_counter is None:
                back = back[back > 0]
            if len(back) == 0:
                break
            j = int(back[0])
            if c[j] == c_prev[j] and abs(t[j] - t_prev[j]) < half_period:  # counter and time repeat
                self.duplicates += 1
                self.last_error = f"lsl source dropped a repeated sample (Counter {c[j]})"
                log.warning(self.last_error)
                rows = np.delete(rows, j)
                if len(rows) == 0:
                    return rows, np.zeros(0, dtype=np.int64)
                continue
            lost[back] = 0  # the counter went back but time went on: not a duplicate
            self.last_error = (f"LSL stream {self.layout.stream!r}: Counter went back ({c_prev[j]} -> {c[j]}) "
                               "while time went on; the samples are kept")
            log.warning(self.last_error)
            break
        self._last_counter = int(c[-1])
        self._last_time = float(t[-1])
        return rows, lost

    def _device_events(self, raw: NDArray[Any], rows: NDArray[np.intp], stamps: NDArray[np.float64]) -> None:
        """``HardwareMarker`` and ``Markers`` values that change to a non-zero value, as
        device events in the ring buffer (before their samples are pushed)."""
        layout = self.layout
        assert layout is not None
        for col, prefix in ((layout.hardware_marker_index, "hardware"), (layout.markers_index, "emotivpro")):
            if col is None or len(rows) == 0:
                continue
            values = raw[rows, col].astype(np.float64)
            last = self._last_marks.get(col, 0.0)
            if last == 0.0 and not values.any():  # no marker in this chunk (NaN counts as any)
                continue
            prev = np.concatenate([[last], values[:-1]])
            with np.errstate(invalid="ignore"):
                changed = np.flatnonzero(np.isfinite(values) & (values != prev) & (values != 0))
            for r in changed:
                self.buffer.add_event(SourceEvent(float(stamps[rows[r]]), f"{prefix}:{values[r]:g}"))
            self._last_marks[col] = float(values[-1])


def list_streams(timeout_s: float = 1.0) -> list[dict[str, object]]:
    """LSL streams visible now, with their layout as Duygu would read them.

    Parameters
    ----------
    timeout_s : float
        How long to listen for streams; each stream's description is then fetched with
        the same timeout (in parallel).

    Returns
    -------
    list of dict
        ``name, type, channel_count, sfreq_hz, source_id, hostname, channel_format,
        epoc_labels (bool), layout, missing (EPOC labels absent), usable, reason, spec``.
    """
    from concurrent.futures import ThreadPoolExecutor

    pylsl = _pylsl()
    infos = pylsl.resolve_streams(wait_time=timeout_s)

    def describe(info: Any) -> dict[str, object]:
        row: dict[str, object] = {
            "name": info.name(),
            "type": info.type(),
            "channel_count": info.channel_count(),
            "sfreq_hz": info.nominal_srate(),
            "source_id": info.source_id(),
            "hostname": info.hostname(),
            "channel_format": _FORMAT_NAMES.get(info.channel_format(), "unknown"),
            "epoc_labels": False,
            "layout": None,
            "missing": list(EPOC_CHANNELS),
            "usable": False,
            "reason": "",
            "spec": f"lsl:{info.name()}",
        }
        labels: list[str | None] | None = None
        units: list[str | None] | None = None
        try:
            inlet = pylsl.StreamInlet(info, recover=False)
            try:
                full = inlet.info(timeout=max(0.5, timeout_s))
                labels, units = full.get_channel_labels(), full.get_channel_units()
            finally:
                inlet.close_stream()
        except Exception as exc:  # a stream that vanished or would not describe itself
            row["reason"] = f"no description: {exc}"
            return row
        names = [label or "" for label in labels or []]
        row["missing"] = missing_channels(names)
        row["epoc_labels"] = not row["missing"]
        try:
            layout = analyse_layout(info.name(), labels, units, info.nominal_srate(),
                                    info.channel_count())
        except SourceError as exc:
            row["reason"] = str(exc)
        else:
            row["layout"] = layout.layout
            row["usable"] = True
        return row

    if not infos:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(infos))) as pool:
        rows = list(pool.map(describe, infos))
    return sorted(rows, key=lambda r: (str(r["name"]), str(r["source_id"])))
