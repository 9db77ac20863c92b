"""Replay of recorded EEG as a live source: CSV, EDF/BDF, and Duygu's session store.

A recording is loaded and validated whole when the source opens (:func:`read_recording`),
converted to the 14 EPOC+ channels in µV at 128 Hz, then played at ``speed`` x real time
by the wall clock. Sample ``k`` of the replay is stamped ``t0 + k / (128 * speed)`` on
the LSL clock. At the end the source stops (``EndOfStream``) or starts over (``loop``).

Accepted files:

* CSV with a header of channel labels: the 14 EPOC labels in any order (aliases such as
  ``P`` for P7 and prefixes such as ``EEG AF3`` are understood), other columns ignored; an
  optional ``time`` column (seconds) gives the rate, otherwise 128 Hz. Duygu's own
  ``duygu record`` CSV (``time,AF3,...,AF4``) and the UCI eye-state CSV both fit.
* EDF/EDF+ and BDF/BDF+ (``.edf``, ``.bdf``): signals matched by label, physical units
  converted to µV, any rate resampled to 128 Hz.
* ``STORE.sqlite#SESSION_ID`` (or ``.db``): the EEG of a session in Duygu's store.
* XDF (``.xdf``, LabRecorder's format, read with pyxdf): the EEG stream (by type and EPOC
  labels, or the one named by ``stream=``) with its own timestamps -- which give its rate
  and its gaps.

Gaps stay gaps: a jump in a CSV's ``time`` column, an EDF ``BAD_ACQ_SKIP`` annotation
(how Duygu's exports mark missing samples) and the gaps of a stored session are replayed
as a live source reports a loss -- the samples are not there, the next chunk says how
many are missing (a :class:`~acquisition.ringbuffer.Gap`), and its timestamps jump by the
missing time. Values that are NaN, infinite or beyond float32's range are refused.
"""

from __future__ import annotations

import csv
import itertools
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition.channels import (
    EPOC_CHANNELS,
    SFREQ_HZ,
    canonical_label,
    match_channels,
    missing_channels,
    unit_scale_to_uv,
)
from acquisition.errors import DataError, SourceError
from acquisition.sources.base import BaseSource, DeviceInfo, EndOfStream, ReadResult, local_clock
from acquisition.sources.resample import resample_offline

log = logging.getLogger(__name__)

#: Largest magnitude a sample may have (the store keeps float32).
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: Rates a ``time`` column is snapped to when it is within 1 % of one of them.
COMMON_RATES_HZ = (128.0, 256.0, 250.0, 500.0, 512.0, 1000.0, 1024.0, 2048.0, 200.0, 160.0, 125.0)


class RecordingError(DataError, SourceError):
    """A recording cannot be replayed: bad data (a DataError) for a source (a SourceError)."""


@dataclass(frozen=True)
class Recording:
    """A recording converted to Duygu's form.

    Attributes
    ----------
    data : ndarray, shape (n_samples, 14)
        µV, EPOC order, at :attr:`sfreq_hz` (always 128 Hz).
    sfreq_hz : float
        128.0.
    native_sfreq_hz : float
        Rate of the file before resampling.
    labels : tuple of str
        The file's labels used for AF3 ... AF4, in EPOC order.
    notes : list of str
        What was done to the file (ignored columns, resampling, ...).
    gaps : tuple of (int, int)
        ``(after_row, n_missing)``: samples missing after row ``after_row`` of ``data``
        (at 128 Hz), in row order.
    timestamps : ndarray, optional
        The recording's own time of each row (XDF: LSL clock of the recording machine),
        when the file has one; ``None`` otherwise.
    """

    data: NDArray[np.float64]
    sfreq_hz: float
    native_sfreq_hz: float
    labels: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    gaps: tuple[tuple[int, int], ...] = ()
    timestamps: NDArray[np.float64] | None = None

    @property
    def duration_s(self) -> float:
        return len(self.data) / self.sfreq_hz


def load_recording(path: str | Path) -> tuple[NDArray[np.float64], float]:
    """Load a recording as ``(data (n, 14) µV in EPOC order, sfreq_hz)`` at 128 Hz.

    Raises
    ------
    RecordingError
        (a :class:`DataError` and a :class:`SourceError`) naming what is wrong: a missing
        file, missing channels, a non-numeric or NaN cell (row and column), ...
    """
    rec = read_recording(path)
    return rec.data, rec.sfreq_hz


def read_recording(path: str | Path, stream: str | None = None) -> Recording:
    """Load and validate a CSV, EDF/BDF or XDF file or ``STORE#SESSION`` (see
    :func:`load_recording`); ``stream`` picks the EEG stream of an XDF file by name."""
    text = str(path)
    store_path, session_id = _split_store_spec(text)
    if store_path is not None:
        return _read_store(store_path, session_id)
    p = Path(text)
    if not p.is_file():
        raise RecordingError(f"replay file not found: {text}")
    suffix = p.suffix.lower()
    if suffix in (".edf", ".bdf", ".rec"):
        return _read_edf(p)
    if suffix in (".sqlite", ".db", ".sqlite3"):
        raise RecordingError(f"replay of a session store needs a session id: {text}#SESSION_ID")
    if suffix == ".xdf":
        return read_xdf(p, stream).recording
    return _read_csv(p)


# -- XDF (LabRecorder) -------------------------------------------------------------------
@dataclass
class XdfContents:
    """What an XDF file holds for Duygu: its EEG stream as a :class:`Recording` (with
    the stream's own timestamps) and every string marker stream, ``name -> [(t, text)]``."""

    recording: Recording
    stream: str
    markers: dict[str, list[tuple[float, str]]]


def _first(value: Any, default: Any = None) -> Any:
    """pyxdf keeps every XML value in a list."""
    if isinstance(value, list):
        return value[0] if value else default
    return value if value is not None else default


def _xdf_channels(info: dict[str, Any]) -> tuple[list[str], list[str]]:
    labels, units = [], []
    desc = _first(info.get("desc"))
    channels = _first(desc.get("channels")) if isinstance(desc, dict) else None
    for ch in (channels or {}).get("channel", []) if isinstance(channels, dict) else []:
        labels.append(str(_first(ch.get("label"), "")))
        units.append(str(_first(ch.get("unit"), "")))
    return labels, units


def read_xdf(path: str | Path, stream: str | None = None) -> XdfContents:
    """Read a LabRecorder XDF file: the EEG stream and the marker streams.

    The EEG stream is the one named ``stream``, else the first of type ``EEG`` whose
    labels include the 14 EPOC channels, else the first with those labels. Its timestamps
    (clock-synchronised, not dejittered, so a hole stays a hole) give the rate when the
    stream has none, and every step longer than 1.5 sample periods is a gap.

    Raises
    ------
    RecordingError
        An unreadable file, no such stream, no EEG stream with the EPOC labels.
    """
    import pyxdf

    p = Path(path)
    try:
        streams, _header = pyxdf.load_xdf(str(p), dejitter_timestamps=False, verbose=False)
    except Exception as exc:  # pyxdf raises plain exceptions for foreign or truncated files
        raise RecordingError(f"{p.name}: not a readable XDF file: {' '.join(str(exc).split())[:200]}") from None
    numeric, markers = [], {}
    for st in streams:
        info = st["info"]
        name = str(_first(info.get("name"), "?"))
        if str(_first(info.get("channel_format"), "")) == "string":
            markers[name] = [(float(t), str(v[0]) if isinstance(v, list) else str(v))
                             for t, v in zip(st["time_stamps"], st["time_series"], strict=False)]
        else:
            numeric.append((name, st))
    names = [n for n, _ in numeric]
    if stream is not None:
        chosen = [(n, st) for n, st in numeric if n == stream]
        if not chosen:
            raise RecordingError(f"{p.name}: no numeric stream named {stream!r} (streams: {', '.join(names) or 'none'})")
    else:
        with_labels = [(n, st) for n, st in numeric if match_channels(_xdf_channels(st["info"])[0]) is not None]
        chosen = [(n, st) for n, st in with_labels
                  if str(_first(st["info"].get("type"), "")).strip().upper() == "EEG"] or with_labels
        if not chosen:
            raise RecordingError(f"{p.name}: no EEG stream with the 14 EPOC channel labels "
                                 f"(streams: {', '.join(names) or 'none'}; pick one with ?stream=NAME)")
    name, st = chosen[0]
    labels, units = _xdf_channels(st["info"])
    order = match_channels(labels)
    if order is None:
        raise RecordingError(f"{p.name}: stream {name!r} lacks the EPOC channels {', '.join(missing_channels(labels))}")
    series = np.asarray(st["time_series"], dtype=np.float64)
    times = np.asarray(st["time_stamps"], dtype=np.float64)
    if series.ndim != 2 or len(series) < 2:
        raise RecordingError(f"{p.name}: stream {name!r} holds {len(series)} sample(s); nothing to replay")
    scales = []
    for i in order:
        scale = unit_scale_to_uv(units[i] if i < len(units) else "")
        if scale is None:
            raise RecordingError(f"{p.name}: stream {name!r} channel {labels[i]} has unit {units[i]!r}; "
                                 "expected V, mV, µV or nV")
        scales.append(scale)
    data = series[:, order] * np.asarray(scales)
    keep = np.isfinite(data).all(axis=1) & (np.abs(data) <= FLOAT32_MAX).all(axis=1)
    notes = [f"XDF stream {name!r} of {p.name}"]
    if not keep.all():
        notes.append(f"{int((~keep).sum())} sample(s) with NaN, infinite or out-of-range values left out")
        data, times = data[keep], times[keep]
    nominal = float(_first(st["info"].get("nominal_srate"), 0) or 0)
    if nominal > 0:
        sfreq_hz = nominal
        steps = np.diff(times)
        jumps = np.flatnonzero(steps > 1.5 / sfreq_hz)
        gaps = [(int(r), max(1, round(float(steps[r]) * sfreq_hz) - 1)) for r in jumps]
    else:
        sfreq_hz, gaps, time_notes = _rate_from_times(p.name, times)
        notes += time_notes
    if gaps:
        notes.append(f"{len(gaps)} gap(s) in the stream's timestamps: replayed as gaps")
    rec = _to_analysis_rate(data, sfreq_hz, tuple(labels[i] for i in order), notes, gaps)
    # the recording's own time of every output row: each piece from its first sample
    bounds = [0, *[a + 1 for a, _ in gaps], len(times)]
    out_times = []
    for (a, b), (oa, ob) in zip(itertools.pairwise(bounds), itertools.pairwise([0, *[a + 1 for a, _ in rec.gaps], len(rec.data)]),
                                strict=True):
        out_times.append(times[a] + np.arange(ob - oa) / SFREQ_HZ if b > a else np.zeros(0))
    stamps = np.concatenate(out_times) if out_times else None
    rec = Recording(rec.data, rec.sfreq_hz, rec.native_sfreq_hz, rec.labels, rec.notes, rec.gaps, stamps)
    return XdfContents(rec, name, markers)


# -- CSV ---------------------------------------------------------------------------------
def _read_csv(path: Path) -> Recording:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RecordingError(f"{path.name}: cannot read as CSV: {exc}") from None
    if not rows:
        raise RecordingError(f"{path.name}: the file is empty")
    header = [cell.strip() for cell in rows[0]]
    body = rows[1:]
    if not body:
        raise RecordingError(f"{path.name}: header only, no samples")
    cols: dict[str, int] = {}
    for i, label in enumerate(header):
        name = canonical_label(label)
        if name is not None and name not in cols:
            cols[name] = i
    missing = missing_channels(header)
    if missing:
        raise RecordingError(
            f"{path.name}: missing column(s) {', '.join(missing)} (header: {','.join(header)})"
        )
    time_col = next((i for i, h in enumerate(header) if h.lower() in ("time", "timestamp")), None)
    width = len(header)
    for r, row in enumerate(body):
        if len(row) != width:
            raise RecordingError(
                f"{path.name} line {r + 2}: {len(row)} cells, the header has {width}"
            )
    order = [cols[name] for name in EPOC_CHANNELS]
    used = order + ([time_col] if time_col is not None else [])
    table = _numeric(path.name, body, used, header)
    data = table[:, : len(order)]
    notes = []
    ignored = [h for i, h in enumerate(header) if i not in used]
    if ignored:
        notes.append(f"ignored column(s): {', '.join(ignored)}")
    aliased = [f"{header[i]}->{name}" for name, i in zip(EPOC_CHANNELS, order, strict=True) if header[i] != name]
    if aliased:
        notes.append(f"labels read as: {', '.join(aliased)}")
    sfreq_hz = SFREQ_HZ
    native_gaps: list[tuple[int, int]] = []
    if time_col is not None:
        sfreq_hz, native_gaps, time_notes = _rate_from_times(path.name, table[:, -1])
        notes += time_notes
    labels = tuple(header[i] for i in order)
    return _to_analysis_rate(data, sfreq_hz, labels, notes, native_gaps)


def _numeric(name: str, body: list[list[str]], cols: list[int], header: list[str]) -> NDArray[np.float64]:
    """The chosen columns as floats; names the first bad cell (line and column)."""
    cells = [[row[c] for c in cols] for row in body]
    try:
        table = np.array(cells, dtype=np.float64)
    except ValueError:
        for r, row in enumerate(cells):
            for j, cell in enumerate(row):
                try:
                    float(cell)
                except ValueError:
                    raise RecordingError(
                        f"{name} line {r + 2}, column {header[cols[j]]}: not a number: {cell.strip()!r}"
                    ) from None
        raise
    bad = ~np.isfinite(table)
    if bad.any():
        r, j = (int(v) for v in np.argwhere(bad)[0])
        raise RecordingError(
            f"{name} line {r + 2}, column {header[cols[j]]}: sample is {body[r][cols[j]].strip()} "
            f"({int(bad.sum())} non-finite cell(s) in all); NaN/inf samples cannot be replayed"
        )
    huge = np.abs(table[:, : len(EPOC_CHANNELS)]) > FLOAT32_MAX
    if huge.any():
        r, j = (int(v) for v in np.argwhere(huge)[0])
        raise RecordingError(
            f"{name} line {r + 2}, column {header[cols[j]]}: sample {body[r][cols[j]].strip()} is beyond "
            f"float32's range ({int(huge.sum())} such cell(s) in all); it cannot be stored"
        )
    return table


def _rate_from_times(name: str, times: NDArray[np.float64]) -> tuple[float, list[tuple[int, int]], list[str]]:
    """The rate of a ``time`` column, its gaps ``(after_row, n_missing)`` at that rate, notes."""
    if len(times) < 2:
        return SFREQ_HZ, [], []
    steps = np.diff(times)
    if np.any(steps <= 0):
        r = int(np.flatnonzero(steps <= 0)[0])
        raise RecordingError(
            f"{name} line {r + 3}, column time: {times[r + 1]:.6f} does not increase "
            f"(previous {times[r]:.6f})"
        )
    estimate = 1.0 / float(np.median(steps))
    sfreq_hz = next((f for f in COMMON_RATES_HZ if abs(estimate / f - 1) < 0.01), round(estimate, 3))
    jumps = np.flatnonzero(steps > 1.5 / sfreq_hz)
    gaps = [(int(r), max(1, round(float(steps[r]) * sfreq_hz) - 1)) for r in jumps]
    notes = []
    if gaps:
        missing_s = sum(n for _, n in gaps) / sfreq_hz
        notes.append(f"time column has {len(gaps)} gap(s), {missing_s:.2f} s missing: replayed as gaps")
    return sfreq_hz, gaps, notes


# -- EDF / BDF ---------------------------------------------------------------------------
def _read_edf(path: Path) -> Recording:
    import edfio

    with path.open("rb") as f:
        is_bdf = f.read(8) == b"\xffBIOSEMI"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            edf = edfio.read_bdf(path) if is_bdf else edfio.read_edf(path, lazy_load_data=False)
    except (ValueError, OSError, IndexError, UnicodeDecodeError) as exc:
        kind = "BDF" if is_bdf else "EDF"
        raise RecordingError(f"{path.name}: not a readable {kind} file: {exc}") from None
    notes = [f"{path.name}: {w.message}" for w in caught]  # e.g. a truncated last record
    for note in notes:
        log.warning(note)
    signals: list[Any] = list(edf.signals)
    labels = [s.label for s in signals]
    missing = missing_channels(labels)
    if missing:
        raise RecordingError(
            f"{path.name}: no signal for {', '.join(missing)} (signals: {', '.join(labels) or 'none'})"
        )
    chosen: dict[str, Any] = {}
    for s in signals:
        name = canonical_label(s.label)
        if name is not None and name not in chosen:
            chosen[name] = s
    skips_s = sorted((float(a.onset), float(a.duration or 0.0)) for a in getattr(edf, "annotations", ())
                     if str(a.text).strip().upper() == "BAD_ACQ_SKIP" and (a.duration or 0) > 0)
    columns: list[NDArray[np.float64]] = []
    channel_gaps: list[list[tuple[int, int]]] = []
    rates = set()
    for name in EPOC_CHANNELS:
        sig = chosen[name]
        unit = sig.physical_dimension.strip()
        scale = unit_scale_to_uv(unit)
        if scale is None:
            raise RecordingError(
                f"{path.name}: signal {sig.label} has unit {unit!r}; expected µV, mV, V or nV"
            )
        x = np.asarray(sig.data, dtype=np.float64) * scale
        rate = float(sig.sampling_frequency)
        rates.add(rate)
        # samples under a BAD_ACQ_SKIP annotation were never recorded (Duygu's exports
        # fill them to keep EDF's grid): they become gaps again
        keep = np.ones(len(x), dtype=bool)
        for onset_s, duration_s in skips_s:
            keep[max(0, round(onset_s * rate)):max(0, round((onset_s + duration_s) * rate))] = False
        native_gaps = _gaps_of_mask(keep)
        pieces, gaps = _resample_pieces(x[keep][:, None], rate, native_gaps)
        columns.append(pieces[:, 0])
        channel_gaps.append(gaps)
    n = min(len(c) for c in columns)
    data = np.stack([c[:n] for c in columns], axis=1)
    bad = ~np.isfinite(data)
    if bad.any():
        r, j = (int(v) for v in np.argwhere(bad)[0])
        raise RecordingError(f"{path.name}: signal {EPOC_CHANNELS[j]} sample {r} is not finite")
    huge = np.abs(data) > FLOAT32_MAX
    if huge.any():
        r, j = (int(v) for v in np.argwhere(huge)[0])
        raise RecordingError(f"{path.name}: signal {EPOC_CHANNELS[j]} sample {r} is beyond float32's range")
    native = max(rates)
    if rates != {SFREQ_HZ}:
        notes.append(f"resampled from {', '.join(f'{r:g}' for r in sorted(rates))} Hz to {SFREQ_HZ:g} Hz")
    edf_gaps = tuple((a, m) for a, m in channel_gaps[0] if a < n - 1)
    if edf_gaps:
        notes.append(f"{len(edf_gaps)} BAD_ACQ_SKIP gap(s), {sum(m for _, m in edf_gaps) / SFREQ_HZ:.2f} s: "
                     "replayed as gaps")
    labels_used = tuple(chosen[name].label for name in EPOC_CHANNELS)
    return Recording(data, SFREQ_HZ, native, labels_used, notes, edf_gaps)


def _gaps_of_mask(keep: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """``(after_row, n_missing)`` in the kept rows for every run of dropped rows after
    the first kept one (a missing start or end is not a gap: nothing lies beyond it)."""
    gaps: list[tuple[int, int]] = []
    kept_so_far = 0
    run = 0
    for k in keep:
        if k:
            if run and kept_so_far:
                gaps.append((kept_so_far - 1, run))
            run = 0
            kept_so_far += 1
        else:
            run += 1
    return gaps


# -- session store -----------------------------------------------------------------------
def _split_store_spec(text: str) -> tuple[Path | None, int]:
    base, hash_, sid = text.rpartition("#")
    if not hash_ or Path(base).suffix.lower() not in (".sqlite", ".db", ".sqlite3"):
        return None, 0
    if not sid.strip().isdigit():
        raise RecordingError(f"session id after '#' must be an integer, got {sid!r} in {text!r}")
    return Path(base), int(sid)


def _read_store(path: Path, session_id: int) -> Recording:
    if not path.is_file():
        raise RecordingError(f"session store not found: {path}")
    from acquisition.errors import StoreError
    from acquisition.store.sqlite import SessionStore

    try:
        store = SessionStore(path, readonly=True)
        try:
            info = store.session(session_id)
            data, _times, indices = store.eeg(session_id)
            stored_gaps = store.gaps(session_id)
        finally:
            store.close()
    except StoreError as exc:
        raise RecordingError(f"cannot replay session {session_id} of {path.name}: {exc}") from None
    if len(data) == 0:
        raise RecordingError(f"session {session_id} of {path.name} has no EEG")
    notes = [f"session {session_id} of {path.name}"]
    if getattr(info, "source", ""):
        notes.append(f"recorded from {info.source}")  # a replayed simulation is still a simulation
    # a piece ends where the recorder missed samples (an index jump) or a recorded gap follows
    missing_after: dict[int, int] = {}
    for row in np.flatnonzero(np.diff(indices) > 1):
        missing_after[int(row)] = int(indices[row + 1] - indices[row] - 1)
    for g in stored_gaps:
        at = int(np.searchsorted(indices, g.after_index, side="right")) - 1
        if 0 <= at < len(indices) - 1:
            missing_after[at] = missing_after.get(at, 0) + max(1, int(g.n_missing))
    gaps = sorted(missing_after.items())
    if gaps:
        notes.append(f"{len(gaps)} gap(s), {sum(m for _, m in gaps)} sample(s) missing: replayed as gaps")
    sfreq_hz = float(getattr(info, "sfreq_hz", SFREQ_HZ) or SFREQ_HZ)
    return _to_analysis_rate(np.asarray(data, dtype=np.float64), sfreq_hz, EPOC_CHANNELS, notes, gaps)


# -- shared ------------------------------------------------------------------------------
def _resample_pieces(data: NDArray[np.float64], sfreq_hz: float,
                     gaps: list[tuple[int, int]]) -> tuple[NDArray[np.float64], list[tuple[int, int]]]:
    """Resample each gap-free piece to 128 Hz on its own (never filtering across a gap);
    returns the rows and the gaps ``(after_row, n_missing)`` in 128 Hz rows."""
    bounds = [0, *[a + 1 for a, _ in gaps], len(data)]
    out: list[NDArray[np.float64]] = []
    out_gaps: list[tuple[int, int]] = []
    n_out = 0
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        piece = data[a:b] if sfreq_hz == SFREQ_HZ else resample_offline(data[a:b], sfreq_hz, SFREQ_HZ)
        out.append(piece)
        n_out += len(piece)
        if k < len(gaps) and n_out:
            out_gaps.append((n_out - 1, max(1, round(gaps[k][1] * SFREQ_HZ / sfreq_hz))))
    rows = np.concatenate(out) if out else data[:0]
    return rows, out_gaps


def _to_analysis_rate(
    data: NDArray[np.float64], sfreq_hz: float, labels: tuple[str, ...], notes: list[str],
    gaps: list[tuple[int, int]] | None = None,
) -> Recording:
    if sfreq_hz != SFREQ_HZ:
        notes = [*notes, f"resampled from {sfreq_hz:g} Hz to {SFREQ_HZ:g} Hz"]
    rows, out_gaps = _resample_pieces(data, sfreq_hz, list(gaps or []))
    return Recording(np.ascontiguousarray(rows, dtype=np.float64), SFREQ_HZ, sfreq_hz, labels, notes,
                     tuple(out_gaps))


class ReplaySource(BaseSource):
    """Plays a recording as a live source, paced by the wall clock.

    Parameters
    ----------
    path : str or Path
        CSV, EDF/BDF file, or ``STORE.sqlite#SESSION_ID``.
    speed : float
        Samples come ``speed`` times faster than real time; sample ``k`` is stamped
        ``t0 + k / (128 * speed)``.
    loop : bool
        Start over at the end instead of stopping.
    chunk_samples : int
        Samples per read at 1x (reads never wait for more than this).
    **kwargs
        :class:`~acquisition.sources.base.BaseSource` options.
    """

    kind = "replay"

    def __init__(self, path: str | Path, speed: float = 1.0, loop: bool = False,
                 chunk_samples: int = 4, stream: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not speed > 0 or not np.isfinite(speed):
            raise SourceError(f"replay speed must be > 0, got {speed}")
        self.path = str(path)
        self.stream = stream
        self.speed = float(speed)
        self.loop = loop
        self.chunk_samples = max(1, int(chunk_samples))
        self.recording: Recording | None = None
        self._t0 = 0.0
        self._wall0 = 0.0
        self._sent = 0  # samples played in all (keeps counting across loops)
        self._skipped = 0  # samples the recording misses before the next one (its gaps)
        self._pending_lost = 0  # missing samples reported with the next chunk

    def _open(self, timeout_s: float) -> DeviceInfo:
        if self.recording is None:
            self.recording = read_recording(self.path, self.stream)
            self._sent = 0
        self._gap_rows = np.asarray([a for a, _ in self.recording.gaps], dtype=np.int64)
        self._gap_missing = np.asarray([m for _, m in self.recording.gaps], dtype=np.int64)
        rate = SFREQ_HZ * self.speed
        # (re)start the clock so that the next sample is due now
        self._wall0 = time.monotonic() - self._sent / rate
        self._t0 = local_clock() - self._sent / rate
        rec = self.recording
        notes = [f"replay of {self.path} at {self.speed:g}x" + (", looping" if self.loop else ""), *rec.notes]
        return DeviceInfo(
            kind=self.kind,
            name=Path(self.path.partition("#")[0]).name,
            native_sfreq_hz=rec.native_sfreq_hz,
            native_channels=rec.labels,
            serial="",
            notes=notes,
        )

    def _read(self, timeout_s: float) -> ReadResult | None:
        rec = self.recording
        if rec is None:
            return None
        n_total = len(rec.data)
        pos = self._sent % n_total if self.loop else self._sent
        if pos >= n_total:
            raise EndOfStream
        rate = SFREQ_HZ * self.speed
        left = n_total - pos if not self.loop else None
        need = self.chunk_samples if left is None else min(self.chunk_samples, left)
        due = int((time.monotonic() - self._wall0) * rate)
        if due - self._sent < need:
            wait_s = (self._sent + need) / rate - (time.monotonic() - self._wall0)
            time.sleep(max(0.0, min(wait_s, timeout_s)))  # pacing of the replayed device
            due = int((time.monotonic() - self._wall0) * rate)
            if due - self._sent < need:
                return None
        n = min(due - self._sent, n_total - pos)  # a chunk never wraps round a loop
        k = int(np.searchsorted(self._gap_rows, pos))
        at_gap = k < len(self._gap_rows) and self._gap_rows[k] < pos + n
        if at_gap:
            n = int(self._gap_rows[k]) - pos + 1  # a chunk ends at a gap
        lost, self._pending_lost = self._pending_lost, 0
        idx = pos + np.arange(n)
        times = self._t0 + (self._sent + self._skipped + np.arange(n)) / rate
        self._sent += n
        if at_gap:
            self._pending_lost = int(self._gap_missing[k])
            self._skipped += self._pending_lost
        return ReadResult(rec.data[idx], times, lost=lost, lost_reason="gap in the recording")

    def _close(self) -> None:
        return None
