"""Export stored sessions as BIDS-EEG (EDF, written by MNE-BIDS) or as plain CSV files.

BIDS layout (one session; several get ``ses-<n>`` levels, see :func:`export_bids`)::

    OUT/dataset_description.json  README  participants.tsv/.json  scans.json
    OUT/sub-<label>/sub-<label>_scans.tsv
    OUT/sub-<label>/eeg/sub-<label>_task-listening_eeg.edf (+ _eeg.json)
                       sub-<label>_task-listening_channels.tsv
                       sub-<label>_task-listening_events.tsv (+ .json)
                       sub-<label>_space-CapTrak_electrodes.tsv (+ .json, _coordsystem.json)

MNE-BIDS writes the EDF, the montage files and the sidecars; Duygu then writes what it
knows better: ``events.tsv`` with the marker text as ``trial_type`` (``stim_on:<id>``,
``label:happy``, ...), one ``stimulus:<id>`` row per trial with its label, ratings,
status and contact quality, the session's marker code table as ``value``, and onsets
that are exact EEG-clock times (MNE-BIDS would snap them to a sample); the EEG sidecar
(device, reference, filters); ``participants.tsv`` (age, sex, store id).

Gaps. An EDF file is a continuous grid of samples. Samples missing from the recording
(device loss, dropped samples, recorder overruns) are grid points held at the channel's
physical minimum (a flat line at the bottom of the range, so the range and quantum stay
those of the real data) and covered by a ``BAD_ACQ_SKIP`` annotation (in the EDF and in
``_events.tsv``): the MNE name for skipped acquisition, which MNE's filters and
epoching respect. The file is padded the same way to a whole data record (1 s). The
filled points are never data: every one of them is annotated.

Range. EDF stores 16-bit integers; each channel's physical range is its data range. If a
channel's span exceeds :data:`MAX_SPAN_UV` (a glitch of hundreds of thousands of µV
would make the quantum coarse for every sample), its range is centred on its median and
the few samples outside are clipped to it and covered by a ``BAD_clipped`` annotation;
the CSV export always keeps exact values.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition import __version__
from acquisition.channels import MONTAGE
from acquisition.errors import StoreError
from acquisition.settings import partial_name, raise_if_ending, sweep_stale_partials
from acquisition.store.marker_codes import STIM_ON_BASE, TRIAL_BASE, code_of, marker_codes
from acquisition.store.sqlite import Participant, SessionInfo, SessionStore, Trial, bids_label

TASK = "listening"
BIDS_VERSION = "1.8.0"
MAX_SPAN_UV = 16384.0
"""Widest channel range written to EDF: a quantum of 0.25 µV, finer than the EPOC+'s 0.51 µV."""

# MNE jit-compiles a few helpers with numba when numba is installed (librosa brings it in).
# Duygu uses MNE only to write files, which gains nothing from them, while numba's first
# jitted call costs about 0.3 s (holding the GIL) in every export. A user's own setting wins.
os.environ.setdefault("MNE_USE_NUMBA", "false")
GAP_ANNOTATION = "BAD_ACQ_SKIP"
CLIP_ANNOTATION = "BAD_clipped"
PLACEHOLDER_AUTHORS = ("Unnamed author (set 'authors' in Duygu's settings.toml)", "Unnamed author")
"""``Authors`` when the settings name none (two entries: the validator warns about one)."""


@dataclass
class ContinuousEeg:
    """Stored samples placed on a continuous grid at the nominal rate.

    Attributes
    ----------
    data : ndarray, shape (n_grid, 14)
        Samples in µV; grid points with no sample are 0 here (see ``present``).
    present : ndarray of bool, shape (n_grid,)
        Which grid points hold a recorded sample.
    positions : ndarray of int, shape (n_stored,)
        Grid position of each stored sample.
    indices, timestamps : ndarray, shape (n_stored,)
        The stored samples' source indices and EEG-clock times.
    gaps : list of (start_position, n_samples)
        Runs of grid points with no sample (not counting end padding).
    sfreq_hz : float
    """

    data: NDArray[np.float64]
    present: NDArray[np.bool_]
    positions: NDArray[np.int64]
    indices: NDArray[np.int64]
    timestamps: NDArray[np.float64]
    gaps: list[tuple[int, int]]
    sfreq_hz: float

    def time_to_seconds(self, t: float) -> float:
        """EEG-clock time -> seconds from the first sample on the grid."""
        times, pos = self.timestamps, self.positions
        period = _clock_period(times) if len(times) > 1 else 1.0 / self.sfreq_hz
        if t <= times[0]:
            return float((t - times[0]) / period / self.sfreq_hz)
        if t >= times[-1]:
            return float((pos[-1] + (t - times[-1]) / period) / self.sfreq_hz)
        return float(np.interp(t, times, pos) / self.sfreq_hz)

    def position_of(self, index: int | None, seconds: float) -> int:
        """The grid sample of a source index (if stored), else the one at ``seconds``."""
        if index is not None:
            k = int(np.searchsorted(self.indices, index))
            if k < len(self.indices) and self.indices[k] == index:
                return int(self.positions[k])
        return max(0, math.floor(seconds * self.sfreq_hz + 1e-6))


def _clock_period(times: NDArray[np.float64]) -> float:
    """Median sample period on the EEG clock (shorter than 1/sfreq for sped-up sources)."""
    d = np.diff(times)
    d = d[d > 0]
    return float(np.median(d)) if len(d) else 1.0


def continuous(data: NDArray[np.float64], timestamps: NDArray[np.float64], indices: NDArray[np.int64],
               sfreq_hz: float) -> ContinuousEeg:
    """Place stored samples on a continuous grid, finding gaps from indices and times.

    A step between consecutive samples is the larger of the index step and, when the
    time step exceeds 1.5 sample periods, the time step in periods. Samples with a
    non-finite value count as missing.
    """
    n = len(data)
    if n == 0:
        raise StoreError("cannot lay out an empty recording")
    if n > 1:
        period = _clock_period(timestamps)
        dt = np.diff(timestamps)
        time_steps = np.where(dt > 1.5 * period, np.rint(dt / period), 1).astype(np.int64)
        steps = np.maximum(np.diff(indices), time_steps).clip(min=1)
        positions = np.concatenate([[0], np.cumsum(steps)])
    else:
        positions = np.zeros(1, dtype=np.int64)
    finite = np.isfinite(data).all(axis=1)  # a NaN sample counts as not recorded
    grid = np.zeros((int(positions[-1]) + 1, data.shape[1]))
    grid[positions[finite]] = data[finite]
    present = np.zeros(len(grid), dtype=bool)
    present[positions[finite]] = True
    gaps = _runs(~present)
    return ContinuousEeg(grid, present, positions.astype(np.int64), indices, timestamps, gaps, sfreq_hz)


def _prepare_out(out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise StoreError(f"export path {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise StoreError(f"export directory {out} is not empty; choose a new or empty directory")
    sweep_stale_partials(out)  # hidden folders of exports killed before they could clean up
    tmp = partial_name(out)
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise StoreError(f"cannot create export directory {out}: {exc.strerror}") from exc
    return out, tmp


@contextmanager
def _export_into(out_dir: str | Path, what: str) -> Iterator[tuple[Path, Path]]:
    """``(out, tmp)``: write the export into ``tmp``, a fresh hidden folder beside ``out``;
    it becomes ``out`` when the block ends and is removed when the block fails, so a
    failed export (a full disk, an unwritable file) never leaves half a folder."""
    out, tmp = _prepare_out(out_dir)
    try:
        yield out, tmp
        raise_if_ending()  # SIGTERM/SIGHUP came while it was written: it is not finished
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"cannot write {what} export to {out}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _finish_out(out, tmp)


def _finish_out(out: Path, tmp: Path) -> Path:
    try:
        if out.is_dir():
            out.rmdir()
        tmp.rename(out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"cannot create export directory {out}: {exc.strerror}") from exc
    return out


def _load(store: SessionStore, session_id: int) -> tuple[SessionInfo, ContinuousEeg]:
    info = store.session(session_id)
    data, times, idx = store.eeg(session_id)
    if len(data) == 0:
        raise StoreError(f"session {session_id} has no EEG samples to export")
    return info, continuous(data, times, idx, info.sfreq_hz)


def _tsv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "n/a"
        if isinstance(v, float):
            return f"{v:.6f}".rstrip("0").rstrip(".") if v != 0 else "0"
        return str(v).replace("\t", " ").replace("\n", " ")

    lines = ["\t".join(header)] + ["\t".join(cell(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, length) of each run of True."""
    if not mask.any():
        return []
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return [(int(a), int(b - a)) for a, b in zip(starts, stops, strict=True)]


def edf_ranges(data: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Physical min/max per channel and the samples that must be clipped.

    Returns ``(pmin, pmax, clipped)`` with ``clipped`` of shape (n_samples,): any
    channel of that sample lies outside its range.
    """
    lo = np.floor(data.min(axis=0) * 10) / 10
    hi = np.ceil(data.max(axis=0) * 10) / 10
    wide = hi - lo > MAX_SPAN_UV
    if wide.any():
        med = np.median(data, axis=0)
        lo = np.where(wide, np.floor((med - MAX_SPAN_UV / 2) * 10) / 10, lo)
        hi = np.where(wide, np.ceil((med + MAX_SPAN_UV / 2) * 10) / 10, hi)
    hi = np.where(hi - lo < 1.0, lo + 1.0, hi)
    clipped = ((data < lo) | (data > hi)).any(axis=1)
    return lo, hi, clipped


def _device_text(info: SessionInfo) -> tuple[str, str]:
    kind = str(info.device.get("kind", info.source.split(":")[0]))
    if kind == "simulated":
        return "Emotiv", "EPOC+ (simulated by Duygu: synthetic signals, not EEG)"
    if kind == "brainflow":
        return "BrainFlow", str(info.device.get("name", "BrainFlow board"))
    if kind == "xdf":
        return "n/a", f"{info.device.get('name', 'EEG stream')} (imported from an XDF recording)"
    notes = info.device.get("notes")
    if isinstance(notes, list) and any("simulated by Duygu" in str(n) for n in notes):
        return "Emotiv", "EPOC+ (EmotivPRO simulated by Duygu: synthetic signals, not EEG)"
    return "Emotiv", "EPOC+"


def export_bids(store: SessionStore, session_ids: int | Sequence[int], out_dir: str | Path,
                power_line_hz: float | None = 50.0, authors: Sequence[str] = ()) -> Path:
    """Write sessions as one BIDS-EEG dataset (EDF, through mne-bids) in ``out_dir``.

    One session gives ``sub-<label>/eeg/``; several give ``sub-<label>/ses-<n>/eeg/`` for
    every one of them (one dataset, any participants), ``n`` being the session's rank among
    its participant's sessions in the store (1 for the first visit; the same in every
    export). ``scans.tsv`` names each file's store session id.

    Parameters
    ----------
    store : SessionStore
    session_ids : int or sequence of int
    out_dir : str or Path
        New or empty directory; it becomes the dataset root.
    power_line_hz : float, optional
        Mains frequency for ``PowerLineFrequency`` (None writes "n/a").
    authors : sequence of str
        ``Authors`` of ``dataset_description.json``; none gives
        :data:`PLACEHOLDER_AUTHORS`.

    Returns
    -------
    Path
        The dataset root.

    Raises
    ------
    StoreError
        Unknown session, a session listed twice, no EEG, two participants with one BIDS
        label, a non-empty output directory, or a write failure.
    """
    ids = [session_ids] if isinstance(session_ids, int) else list(session_ids)
    if not ids:
        raise StoreError("no session to export")
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise StoreError(f"session {twice[0]} is listed twice")
    runs = [_bids_run(store, sid, power_line_hz) for sid in ids]
    for run in runs:
        visits = [s.id for s in store.sessions([run.info.participant])]
        run.visit = visits.index(run.info.id) + 1
    owners: dict[str, str] = {}
    for run in runs:
        other = owners.setdefault(run.sub.lower(), run.info.participant)
        if other != run.info.participant:
            raise StoreError(f"participants {other!r} and {run.info.participant!r} would share the BIDS "
                             f"subject label sub-{run.sub}; rename one of them")
    multi = len(runs) > 1
    with _export_into(out_dir, "BIDS") as (out, tmp):
        for run in runs:
            _write_bids_run(run, tmp, session=str(run.visit) if multi else None)
        _json(tmp / "scans.json", _SCANS_JSON)
        participants: dict[str, Participant] = {}
        for run in runs:
            participants.setdefault(run.sub, run.participant)
        _tsv(tmp / "participants.tsv", ["participant_id", "age", "sex", "duygu_id"],
             [[f"sub-{sub}", p.age, p.sex, p.id] for sub, p in sorted(participants.items())])
        _json(tmp / "participants.json", _PARTICIPANTS_JSON)
        names = ", ".join(str(r.info.id) for r in runs)
        _json(tmp / "dataset_description.json", {
            "Name": f"Duygu listening session{'s' if multi else ''} {names}",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw",
            "Authors": list(authors) or list(PLACEHOLDER_AUTHORS),
            "GeneratedBy": [{"Name": "Duygu", "Version": __version__,
                             "Description": "EEG emotion lab: session store export through MNE-BIDS"}],
        })
        (tmp / "README").write_text(_readme(runs), encoding="utf-8")
    return out


@dataclass
class _BidsRun:
    """One session laid out for BIDS: the grid, its events and what the sidecars say."""

    info: SessionInfo
    participant: Participant
    sub: str
    grid: NDArray[np.float64]  # (n_grid, n_channels) µV, gaps and padding filled, clipped
    events: list[dict[str, Any]]
    codes: dict[str, int]
    n_pad: int
    n_clipped: int
    n_gap: int
    n_gaps: int
    power_line_hz: float | None
    trials_with_bad_contact: int
    visit: int = 1


def _bids_run(store: SessionStore, session_id: int, power_line_hz: float | None) -> _BidsRun:
    info, eeg = _load(store, session_id)
    trials = store.trials(session_id)
    markers = store.markers(session_id)
    sfreq = info.sfreq_hz
    record_n = round(sfreq)
    n_data = len(eeg.data)
    n_grid = int(math.ceil(n_data / record_n) * record_n)
    grid = np.zeros((n_grid, eeg.data.shape[1]))
    grid[:n_data] = eeg.data
    present = np.zeros(n_grid, dtype=bool)
    present[:n_data] = eeg.present
    if not present.any():
        raise StoreError(f"session {session_id} has no finite EEG samples to export")
    pmin, pmax, clipped = edf_ranges(grid[present])
    grid = np.where(present[:, None], np.clip(grid, pmin, pmax), pmin)
    clipped_mask = np.zeros(n_grid, dtype=bool)
    clipped_mask[present] = clipped
    duration_s = n_grid / sfreq
    codes = _event_codes(info, trials)

    def at(t: float, index: int | None) -> tuple[float, int]:
        """Exact onset on the EEG clock (never snapped), and its sample on the grid."""
        onset = min(max(0.0, eeg.time_to_seconds(t)), duration_s)
        return onset, min(eeg.position_of(index, onset), n_grid - 1)

    events: list[dict[str, Any]] = []
    for tr in trials:
        onset, sample = at(tr.onset_t, tr.onset_index)
        offset, _ = at(tr.offset_t, tr.offset_index)
        events.append({
            "onset": onset, "duration": max(0.0, offset - onset), "trial_type": f"stimulus:{tr.stimulus_id}",
            "sample": sample, "stimulus": tr.stimulus_id, "label": tr.label, "intended": tr.intended,
            "valence": tr.valence, "arousal": tr.arousal, "status": tr.status,
            "contact": _contact_text(tr.contact), "store_id": tr.id,
        })
    for mk in markers:
        onset, sample = at(mk.t, mk.sample_index)
        events.append({"onset": onset, "duration": 0.0, "trial_type": mk.text, "sample": sample,
                       "store_id": mk.id})
    for start, n in eeg.gaps:
        events.append({"onset": start / sfreq, "duration": n / sfreq, "trial_type": GAP_ANNOTATION,
                       "sample": start})
    if n_grid > n_data:
        events.append({"onset": n_data / sfreq, "duration": (n_grid - n_data) / sfreq,
                       "trial_type": GAP_ANNOTATION, "sample": n_data})
    for start, n in _runs(clipped_mask):
        events.append({"onset": start / sfreq, "duration": n / sfreq, "trial_type": CLIP_ANNOTATION,
                       "sample": start})
    for e in events:
        e["value"] = code_of(e["trial_type"], codes)
    events.sort(key=lambda e: (e["onset"], e["trial_type"]))
    return _BidsRun(
        info=info, participant=store.participant(info.participant), sub=bids_label(info.participant),
        grid=grid, events=events, codes=codes, n_pad=n_grid - n_data, n_clipped=int(clipped_mask.sum()),
        n_gap=sum(n for _, n in eeg.gaps), n_gaps=len(eeg.gaps), power_line_hz=power_line_hz,
        trials_with_bad_contact=sum(1 for tr in trials if tr.bad_contact),
    )


def _event_codes(info: SessionInfo, trials: list[Trial]) -> dict[str, int]:
    """The session's marker code table (stored, or rebuilt from its protocol), plus the
    ``stimulus:<id>`` trial rows."""
    protocol = info.protocol or {}
    codes = {str(k): int(v) for k, v in (protocol.get("emotivpro_marker_codes") or {}).items()}
    if not codes:
        stimuli = [str(s.get("id")) for s in protocol.get("stimuli", []) if isinstance(s, dict)]
        stimuli = stimuli or list(dict.fromkeys(tr.stimulus_id for tr in trials))
        labels = [str(x) for x in protocol.get("labels", [])]
        labels = labels or sorted({tr.label for tr in trials if tr.label})
        codes = marker_codes(stimuli, labels)
    for word, code in list(codes.items()):
        if word.startswith("stim_on:"):
            codes["stimulus:" + word.removeprefix("stim_on:")] = code - STIM_ON_BASE + TRIAL_BASE
    return codes


def _contact_text(contact: dict[str, Any] | None) -> str | None:
    """``good`` / ``bad: AF3 F7`` for a trial's contact quality (None when not measured)."""
    if not contact:
        return None
    bad = contact.get("bad_channels") or []
    return "bad: " + " ".join(bad) if bad else "good"


def _write_bids_run(run: _BidsRun, root: Path, session: str | None) -> None:
    """Write one session through mne-bids, then make its sidecars say what Duygu knows."""
    import warnings

    import mne
    import mne_bids

    info = run.info
    sfreq = info.sfreq_hz
    manufacturer, model = _device_text(info)
    hardware_filters = manufacturer == "Emotiv" and "simulated" not in model
    mne_info = mne.create_info(list(info.channels), sfreq, "eeg")
    started = _dt.datetime.fromisoformat(info.start)
    if started.tzinfo is None:
        started = started.replace(tzinfo=_dt.UTC)
    channel_map: dict[str, str] = dict(info.device.get("channel_map") or {})
    with mne_info._unlock():
        if hardware_filters:
            mne_info["highpass"], mne_info["lowpass"] = 0.16, 43.0
        mne_info["line_freq"] = run.power_line_hz
        mne_info["subject_info"] = {"his_id": f"sub-{run.sub}",
                                    "sex": {"M": 1, "F": 2}.get(run.participant.sex or "", 0)}
    raw = mne.io.RawArray(run.grid.T * 1e-6, mne_info, verbose="error")
    raw.set_meas_date(started.astimezone(_dt.UTC))
    positions = {name: (e.x_m, e.y_m, e.z_m) for name, e in MONTAGE.items()
                 if name in info.channels and channel_map.get(name, name) == name}
    if positions:  # a board electrode standing in for an EPOC one has no EPOC position
        raw.set_montage(mne.channels.make_dig_montage(ch_pos=positions, coord_frame="head"), on_missing="ignore")
    raw.set_annotations(mne.Annotations(
        [e["onset"] for e in run.events], [e["duration"] for e in run.events],
        [_edf_word(e["trial_type"], 60) for e in run.events]))
    path = mne_bids.BIDSPath(subject=run.sub, session=session, task=TASK, datatype="eeg", root=root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "converting to EDF", "no line frequency": handled below
        mne_bids.write_raw_bids(raw, path, format="EDF", physical_range="channelwise", allow_preload=True,
                                readme=False, verbose="error")
    entities = [f"sub-{run.sub}"] + ([f"ses-{session}"] if session else [])
    base = root.joinpath(*entities, "eeg", "_".join([*entities, f"task-{TASK}"]))

    sidecar = json.loads(Path(f"{base}_eeg.json").read_text(encoding="utf-8"))
    sidecar.update({
        "TaskName": TASK,
        "TaskDescription": "Listening to music stimuli (30 s each, followed by silence) and reporting the felt "
                           "emotion after each piece.",
        "Instructions": "Listen to each piece, then report the emotion you felt.",
        "EEGReference": "CMS/DRL (Emotiv EPOC+ references at the P3/P4 positions)"
        if manufacturer == "Emotiv" else "n/a",
        "EEGGround": "DRL" if manufacturer == "Emotiv" else "n/a",
        "PowerLineFrequency": run.power_line_hz if run.power_line_hz is not None else "n/a",
        "SoftwareFilters": "n/a",
        "HardwareFilters": {"EPOC+ built-in": {"band": "0.16-43 Hz", "notch": "50 and 60 Hz digital"}}
        if hardware_filters else "n/a",
        "Manufacturer": manufacturer,
        "ManufacturersModelName": model,
        "CapManufacturer": manufacturer,
        "EEGPlacementScheme": "10-20 (the 14 EPOC+ positions)",
        "RecordingType": "continuous",
        "SoftwareVersions": f"Duygu {__version__}",
    })
    _json(Path(f"{base}_eeg.json"), sidecar)

    channels_tsv = Path(f"{base}_channels.tsv")
    rows = _read_tsv(channels_tsv)
    for row in rows:
        own = channel_map.get(row["name"])
        if own and own != row["name"]:
            row["description"] = f"board channel {own} (used for {row['name']})"
        elif row.get("description") in ("ElectroEncephaloGram", None):
            row["description"] = "EEG electrode"
    _tsv(channels_tsv, list(rows[0]), [list(r.values()) for r in rows])

    scans_tsv = base.parent.parent / f"{'_'.join(entities)}_scans.tsv"
    rows = _read_tsv(scans_tsv)
    for row in rows:
        row["duygu_session_id"] = str(info.id)
        row["duygu_status"] = info.status
    _tsv(scans_tsv, list(rows[0]), [list(r.values()) for r in rows])

    columns = ["onset", "duration", "trial_type", "value", "sample", "stimulus", "label", "intended",
               "valence", "arousal", "status", "contact", "store_id"]
    _tsv(Path(f"{base}_events.tsv"), columns, [[e.get(c) for c in columns] for e in run.events])
    used = {e["value"]: e["trial_type"] for e in run.events if e["value"] is not None}
    _json(Path(f"{base}_events.json"), _events_json(run.codes, used))


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _edf_word(text: str, limit: int = 40) -> str:
    """Text safe in an EDF header field or annotation (no control characters)."""
    return re.sub(r"[^\x20-\x7e]+", "_", text)[:limit] or "X"


def _events_json(codes: dict[str, int], used: dict[int, str]) -> dict[str, Any]:
    words = {code: word for word, code in codes.items()}
    return {
        "onset": {"Description": "Seconds from the first sample, on the EEG clock (exact, not snapped to a sample)",
                  "Units": "s"},
        "trial_type": {
            "Description": "The marker text Duygu stored (stim_on:<id>, stim_off:<id>, label:<class>, "
                           "pause:<why>, hardware:<value>, ...), stimulus:<id> for a trial row (onset to "
                           f"offset), {GAP_ANNOTATION} where no sample was recorded (the EDF holds a flat fill "
                           f"that is not data), {CLIP_ANNOTATION} for samples clipped to the EDF range"},
        "value": {"Description": "Integer code of the marker word (the table Duygu's EmotivPRO marker outlet "
                                 "sends; trial rows are 5000 + k)",
                  "Levels": {str(code): words.get(code, word) for code, word in sorted(used.items())}},
        "sample": {"Description": "Sample of the EDF file the event falls on (0-based)"},
        "stimulus": {"Description": "Stimulus id from the protocol (trial rows)"},
        "label": {"Description": "Felt emotion reported by the participant (trial rows)"},
        "intended": {"Description": "Emotion the stimulus was chosen to evoke (trial rows)"},
        "valence": {"Description": "Self-Assessment Manikin valence rating", "Units": "1-9"},
        "arousal": {"Description": "Self-Assessment Manikin arousal rating", "Units": "1-9"},
        "status": {"Description": "Whether the trial is complete",
                   "Levels": {"complete": "Stimulus played to its end with the EEG recorded",
                              "interrupted": "Stopped early or with EEG missing; kept but not trained on"}},
        "contact": {"Description": "Headset contact quality during the trial: 'good', or 'bad:' and the "
                                   "electrodes whose contact was bad or absent"},
        "store_id": {"Description": "Trial or marker row id in the Duygu session store"},
    }


_SCANS_JSON = {
    "filename": {"Description": "Recording file"},
    "acq_time": {"Description": "Time of the first sample"},
    "duygu_session_id": {"Description": "Session id in the Duygu session store"},
    "duygu_status": {"Description": "How the session ended",
                     "Levels": {"completed": "Every stimulus played and the session was closed",
                                "aborted": "Stopped early by the operator and closed",
                                "running": "Still recording when exported (or never closed)",
                                "interrupted": "The recording process ended without closing it",
                                "failed": "Ended by a fault (source, store or audio) that lasted too long"}},
}

_PARTICIPANTS_JSON = {
    "participant_id": {"Description": "Pseudonymous participant label"},
    "age": {"Description": "Age of the participant", "Units": "year"},
    "sex": {"Description": "Sex of the participant", "Levels": {"F": "female", "M": "male", "O": "other"}},
    "duygu_id": {"Description": "Participant id in the Duygu session store (pseudonymous)"},
}


def _readme(runs: list[_BidsRun]) -> str:
    lines = ["Duygu listening sessions", "",
             "Participants are pseudonymous. Each recording is continuous EDF written by MNE-BIDS; samples that",
             f"were not recorded hold the channel's physical minimum and are covered by {GAP_ANNOTATION} events",
             "(in the EDF and in events.tsv), as is the padding to a whole data record: they are not data, and",
             f"MNE skips them when filtering. {CLIP_ANNOTATION} marks samples outside the EDF range (exact in",
             "Duygu's CSV export). Event onsets are exact times on the EEG clock; 'sample' is the sample they",
             "fall on. The 'value' column is Duygu's marker code table (events.json lists it).", ""]
    for run in runs:
        info = run.info
        lines += [
            f"Session {info.id}: participant {info.participant} (sub-{run.sub}), protocol "
            f"{info.protocol_name or 'n/a'}, source {info.source}, status {info.status}.",
            f"  Recorded {info.start} to {info.end or 'n/a'}; {info.n_samples} samples at {info.sfreq_hz:g} Hz; "
            f"{run.n_gap} samples missing in {run.n_gaps} gap(s), {run.n_pad} samples of padding, "
            f"{run.n_clipped} clipped; {run.trials_with_bad_contact} trial(s) with bad contact.",
        ]
        if info.status in ("interrupted", "failed"):
            lines.append(f"  The session {info.status}; everything committed before that point is included.")
        if info.device.get("kind") == "simulated":
            lines.append("  The source was Duygu's simulated EPOC+: synthetic signals, not EEG.")
    return "\n".join(lines) + "\n"


def export_csv(store: SessionStore, session_id: int, out_dir: str | Path) -> Path:
    """Write ``eeg.csv``, ``trials.csv``, ``markers.csv`` and ``session.json`` to ``out_dir``.

    ``eeg.csv`` has ``time,sample_index,AF3,...,AF4`` (µV, exact float32 values); samples
    that were not recorded are absent (the index and time columns show the gaps). A board
    electrode standing in for an EPOC one is named in the header (``AF3 (board Fz)``) and
    in ``session.json``'s ``channel_map``. ``trials.csv`` says whether each trial is
    complete and its contact quality; ``markers.csv`` gives each marker's code.
    """
    info = store.session(session_id)
    data, times, idx = store.eeg(session_id)
    trials = store.trials(session_id)
    markers = store.markers(session_id)
    with _export_into(out_dir, "CSV") as (out, tmp):
        with (tmp / "eeg.csv").open("w", encoding="utf-8", newline="") as f:
            mapping = dict(info.device.get("channel_map") or {})
            header = [f"{ch} (board {mapping[ch]})" if mapping.get(ch, ch) != ch else ch for ch in info.channels]
            f.write(",".join(["time", "sample_index", *header]) + "\n")
            if len(data):
                # float32 values printed with 9 significant digits round-trip exactly
                cols = [np.char.mod("%.6f", times), idx.astype(str)] + [
                    np.char.mod("%.9g", data[:, c]) for c in range(data.shape[1])
                ]
                f.write("\n".join(",".join(r) for r in zip(*cols, strict=True)) + "\n")
        with (tmp / "trials.csv").open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["trial_id", "stimulus_id", "intended", "onset_t", "offset_t", "onset_index",
                        "offset_index", "label", "valence", "arousal", "status", "contact", "bad_contact"])
            for t in trials:
                w.writerow([t.id, t.stimulus_id, t.intended, repr(t.onset_t), repr(t.offset_t), t.onset_index,
                            t.offset_index, t.label, t.valence, t.arousal, t.status, _contact_text(t.contact) or "",
                            " ".join(t.bad_contact)])
        codes = _event_codes(info, trials)
        with (tmp / "markers.csv").open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["marker_id", "time", "sample_index", "text", "code"])
            for m in markers:
                w.writerow([m.id, repr(m.t), m.sample_index, m.text, code_of(m.text, codes)])
        meta = info.as_dict()
        meta.update({"protocol_definition": info.protocol, "device": info.device, "sfreq_hz": info.sfreq_hz,
                     "channels": list(info.channels), "units": "uV",
                     "channel_map": dict(info.device.get("channel_map") or {}),
                     "marker_codes": codes,
                     "trial_contact": {str(t.id): t.contact for t in trials if t.contact}})
        _json(tmp / "session.json", meta)
    return out

