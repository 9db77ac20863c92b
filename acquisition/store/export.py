"""Export a stored session as BIDS-EEG (EDF) or as plain CSV files.

BIDS layout (one subject, one task, no session level)::

    OUT/dataset_description.json  README  participants.tsv  participants.json
    OUT/sub-<label>/eeg/sub-<label>_task-listening_eeg.edf
                       sub-<label>_task-listening_eeg.json
                       sub-<label>_task-listening_channels.tsv
                       sub-<label>_task-listening_events.tsv (+ .json)

Gaps. An EDF file is a continuous grid of samples. Samples missing from the recording
(device loss, dropped samples, recorder overruns) are grid points held at the channel's
physical minimum (a flat line at the bottom of the range, so the range and quantum stay
those of the real data) and covered by a ``BAD_ACQ_SKIP`` annotation (in the EDF and in
``_events.tsv``): the MNE name for skipped acquisition, which MNE's filters and
epoching respect. The file is padded the same way to a whole data record (1 s). The
filled points are never data: every one of them is annotated.

Range. EDF stores 16-bit integers; each channel's physical range is its data range,
rounded outward. If a channel's span exceeds :data:`MAX_SPAN_UV` (a glitch of
hundreds of thousands of µV would make the quantum coarse for every sample), its range
is centred on its median and the few samples outside are clipped to it and covered by a
``BAD_clipped`` annotation; the CSV export always keeps exact values.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition import __version__
from acquisition.errors import StoreError
from acquisition.store.sqlite import SessionInfo, SessionStore, bids_label

TASK = "listening"
BIDS_VERSION = "1.8.0"
MAX_SPAN_UV = 16384.0
"""Widest channel range written to EDF: a quantum of 0.25 µV, finer than the EPOC+'s 0.51 µV."""
GAP_ANNOTATION = "BAD_ACQ_SKIP"
CLIP_ANNOTATION = "BAD_clipped"


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

    def index_to_seconds(self, index: int | None, t: float) -> float:
        """A source sample index (preferred, if stored) or time -> seconds on the grid."""
        if index is not None:
            k = int(np.searchsorted(self.indices, index))
            if k < len(self.indices) and self.indices[k] == index:
                return float(self.positions[k] / self.sfreq_hz)
        return self.time_to_seconds(t)


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
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise StoreError(f"cannot create export directory {out}: {exc.strerror}") from exc
    return out, tmp


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
    return "Emotiv", "EPOC+"


def export_bids(store: SessionStore, session_id: int, out_dir: str | Path,
                power_line_hz: float | None = 50.0) -> Path:
    """Write one session as a BIDS-EEG dataset (EDF) in ``out_dir``.

    Parameters
    ----------
    store : SessionStore
    session_id : int
    out_dir : str or Path
        New or empty directory; it becomes the dataset root.
    power_line_hz : float, optional
        Mains frequency for ``PowerLineFrequency`` (None writes "n/a").

    Returns
    -------
    Path
        The dataset root.

    Raises
    ------
    StoreError
        Unknown session, no EEG, a non-empty output directory, or a write failure.
    """
    from edfio import Edf, EdfAnnotation, EdfSignal, Patient, Recording

    info, eeg = _load(store, session_id)
    trials = store.trials(session_id)
    markers = store.markers(session_id)
    participant = store.participant(info.participant)
    sub = bids_label(info.participant)
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

    # events: trials, markers, gaps, clipped samples, end padding
    events: list[dict[str, Any]] = []
    for tr in trials:
        onset = eeg.index_to_seconds(tr.onset_index, tr.onset_t)
        offset = eeg.index_to_seconds(tr.offset_index, tr.offset_t)
        events.append({
            "onset": onset, "duration": max(0.0, offset - onset), "trial_type": "stimulus",
            "label": tr.label, "stimulus": tr.stimulus_id, "intended": tr.intended,
            "valence": tr.valence, "arousal": tr.arousal,
            "sample": round(onset * sfreq), "value": tr.id,
        })
    for mk in markers:
        onset = eeg.index_to_seconds(mk.sample_index, mk.t)
        events.append({"onset": onset, "duration": 0.0, "trial_type": "marker", "label": mk.text,
                       "sample": round(onset * sfreq), "value": mk.id})
    for start, n in eeg.gaps:
        events.append({"onset": start / sfreq, "duration": n / sfreq, "trial_type": GAP_ANNOTATION,
                       "label": f"{n} samples not recorded", "sample": start})
    if n_grid > n_data:
        events.append({"onset": n_data / sfreq, "duration": (n_grid - n_data) / sfreq,
                       "trial_type": GAP_ANNOTATION, "label": "padding to a whole EDF data record",
                       "sample": n_data})
    for start, n in _runs(clipped_mask):
        events.append({"onset": start / sfreq, "duration": n / sfreq, "trial_type": CLIP_ANNOTATION,
                       "label": f"{n} samples outside the EDF range, clipped", "sample": start})
    events.sort(key=lambda e: (e["onset"], e["trial_type"]))

    out, tmp = _prepare_out(out_dir)
    try:
        eeg_dir = tmp / f"sub-{sub}" / "eeg"
        eeg_dir.mkdir(parents=True)
        stem = eeg_dir / f"sub-{sub}_task-{TASK}"
        started = _dt.datetime.fromisoformat(info.start)
        duration_s = n_grid / sfreq
        manufacturer, model = _device_text(info)
        prefilter = "HP:0.16Hz LP:43Hz" if manufacturer == "Emotiv" and "simulated" not in model else ""
        signals = [
            EdfSignal(grid[:, c], sfreq, label=name, transducer_type="saline felt electrode",
                      physical_dimension="uV", physical_range=(float(pmin[c]), float(pmax[c])),
                      prefiltering=prefilter)
            for c, name in enumerate(info.channels)
        ]
        annotations = [
            EdfAnnotation(min(max(0.0, e["onset"]), duration_s), e["duration"] or None,
                          _annotation_text(e))
            for e in events
        ]
        sex = participant.sex if participant.sex in ("F", "M") else "X"
        edf = Edf(
            signals,
            patient=Patient(code=f"sub-{sub}", sex=sex),  # type: ignore[arg-type]
            recording=Recording(startdate=started.date(), equipment_code=_edf_word(model)),
            starttime=started.time().replace(microsecond=0),
            annotations=annotations,
        )
        edf.write(Path(f"{stem}_eeg.edf"))
        _json(Path(f"{stem}_eeg.json"), {
            "TaskName": TASK,
            "TaskDescription": "Listening to music stimuli (30 s each, followed by silence) and reporting the felt "
                               "emotion after each piece.",
            "Instructions": "Listen to each piece, then report the emotion you felt.",
            "SamplingFrequency": sfreq,
            "EEGReference": "CMS/DRL (Emotiv EPOC+ references at the P3/P4 positions)",
            "EEGGround": "DRL",
            "PowerLineFrequency": power_line_hz if power_line_hz is not None else "n/a",
            "SoftwareFilters": "n/a",
            "HardwareFilters": {"EPOC+ built-in": {"band": "0.16-43 Hz", "notch": "50 and 60 Hz digital"}}
            if prefilter else "n/a",
            "Manufacturer": manufacturer,
            "ManufacturersModelName": model,
            "CapManufacturer": manufacturer,
            "EEGPlacementScheme": "10-20 (the 14 EPOC+ positions)",
            "EEGChannelCount": len(info.channels),
            "EOGChannelCount": 0,
            "ECGChannelCount": 0,
            "EMGChannelCount": 0,
            "MiscChannelCount": 0,
            "TriggerChannelCount": 0,
            "RecordingDuration": duration_s,
            "RecordingType": "continuous",
            "SoftwareVersions": f"Duygu {__version__}",
        })
        _tsv(Path(f"{stem}_channels.tsv"),
             ["name", "type", "units", "low_cutoff", "high_cutoff", "sampling_frequency", "status",
              "status_description"],
             [[name, "EEG", "uV", 0.16 if prefilter else None, 43.0 if prefilter else None, sfreq, "good", None]
              for name in info.channels])
        columns = ["onset", "duration", "trial_type", "label", "stimulus", "intended", "valence", "arousal",
                   "sample", "value"]
        _tsv(Path(f"{stem}_events.tsv"), columns, [[e.get(c) for c in columns] for e in events])
        _json(Path(f"{stem}_events.json"), _EVENTS_JSON)
        _tsv(tmp / "participants.tsv", ["participant_id", "age", "sex", "duygu_id"],
             [[f"sub-{sub}", participant.age, participant.sex, info.participant]])
        _json(tmp / "participants.json", _PARTICIPANTS_JSON)
        _json(tmp / "dataset_description.json", {
            "Name": f"Duygu listening session {info.id} ({info.protocol_name or 'protocol'})",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw",
            "GeneratedBy": [{"Name": "Duygu", "Version": __version__,
                             "Description": "EEG emotion lab: session store export"}],
        })
        (tmp / "README").write_text(_readme(info, eeg, n_grid - n_data, int(clipped_mask.sum())), encoding="utf-8")
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"cannot write BIDS export to {out}: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _finish_out(out, tmp)


def _edf_word(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9+._-]+", "_", text)[:40] or "X"


def _annotation_text(event: dict[str, Any]) -> str:
    kind = event["trial_type"]
    if kind == "stimulus":
        return f"stimulus:{event['stimulus']}" + (f" label:{event['label']}" if event.get("label") else "")
    if kind == "marker":
        return str(event["label"])
    return str(kind)


_EVENTS_JSON = {
    "trial_type": {
        "Description": "Kind of event",
        "Levels": {
            "stimulus": "A music stimulus was playing (onset to offset)",
            "marker": "A marker stored during the session (text in 'label')",
            GAP_ANNOTATION: "No samples were recorded here; the EDF holds a flat fill that is not data",
            CLIP_ANNOTATION: "Samples outside the EDF channel range, clipped in the EDF (exact in the store)",
        },
    },
    "label": {"Description": "Felt emotion reported by the participant (stimulus rows), or marker text"},
    "stimulus": {"Description": "Stimulus id from the protocol"},
    "intended": {"Description": "Emotion the stimulus was chosen to evoke"},
    "valence": {"Description": "Self-Assessment Manikin valence rating", "Units": "1-9"},
    "arousal": {"Description": "Self-Assessment Manikin arousal rating", "Units": "1-9"},
    "sample": {"Description": "Onset as a sample index of the EDF file (0-based)"},
    "value": {"Description": "Trial or marker id in the Duygu session store"},
}

_PARTICIPANTS_JSON = {
    "participant_id": {"Description": "Pseudonymous participant label"},
    "age": {"Description": "Age of the participant", "Units": "year"},
    "sex": {"Description": "Sex of the participant", "Levels": {"F": "female", "M": "male", "O": "other"}},
    "duygu_id": {"Description": "Participant id in the Duygu session store (pseudonymous)"},
}


def _readme(info: SessionInfo, eeg: ContinuousEeg, n_pad: int, n_clipped: int) -> str:
    n_gap = sum(n for _, n in eeg.gaps)
    lines = [
        f"Duygu listening session {info.id}",
        "",
        f"Participant (pseudonymous): {info.participant}. Protocol: {info.protocol_name or 'n/a'}. "
        f"Source: {info.source}. Status: {info.status}.",
        f"Recorded {info.start} to {info.end or 'n/a'}; {len(eeg.indices)} samples at {info.sfreq_hz:g} Hz.",
        "",
        "The EDF is continuous. Samples that were not recorded hold the channel's physical minimum and are covered by BAD_ACQ_SKIP",
        f"events/annotations ({n_gap} samples in {len(eeg.gaps)} gap(s), plus {n_pad} samples of padding to",
        "a whole data record). They are not data: MNE skips them when filtering.",
        f"{n_clipped} sample(s) were outside the EDF channel range and are clipped (BAD_clipped).",
    ]
    if info.status == "interrupted":
        lines += ["", "The session was interrupted (the recording process ended without closing it);",
                  "everything committed before that point is included."]
    if info.device.get("kind") == "simulated":
        lines += ["", "The source was Duygu's simulated EPOC+: synthetic signals, not EEG."]
    return "\n".join(lines) + "\n"


def export_csv(store: SessionStore, session_id: int, out_dir: str | Path) -> Path:
    """Write ``eeg.csv``, ``trials.csv``, ``markers.csv`` and ``session.json`` to ``out_dir``.

    ``eeg.csv`` has ``time,sample_index,AF3,...,AF4`` (µV, exact float32 values); samples
    that were not recorded are absent (the index and time columns show the gaps).
    """
    info = store.session(session_id)
    data, times, idx = store.eeg(session_id)
    trials = store.trials(session_id)
    markers = store.markers(session_id)
    out, tmp = _prepare_out(out_dir)
    try:
        with (tmp / "eeg.csv").open("w", encoding="utf-8", newline="") as f:
            f.write(",".join(["time", "sample_index", *info.channels]) + "\n")
            if len(data):
                # float32 values printed with 9 significant digits round-trip exactly
                cols = [np.char.mod("%.6f", times), idx.astype(str)] + [
                    np.char.mod("%.9g", data[:, c]) for c in range(data.shape[1])
                ]
                f.write("\n".join(",".join(r) for r in zip(*cols, strict=True)) + "\n")
        with (tmp / "trials.csv").open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["trial_id", "stimulus_id", "intended", "onset_t", "offset_t", "onset_index",
                        "offset_index", "label", "valence", "arousal"])
            for t in trials:
                w.writerow([t.id, t.stimulus_id, t.intended, repr(t.onset_t), repr(t.offset_t), t.onset_index,
                            t.offset_index, t.label, t.valence, t.arousal])
        with (tmp / "markers.csv").open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["marker_id", "time", "sample_index", "text"])
            for m in markers:
                w.writerow([m.id, repr(m.t), m.sample_index, m.text])
        meta = info.as_dict()
        meta.update({"protocol_definition": info.protocol, "device": info.device, "sfreq_hz": info.sfreq_hz,
                     "channels": list(info.channels), "units": "uV"})
        _json(tmp / "session.json", meta)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"cannot write CSV export to {out}: {exc.strerror}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _finish_out(out, tmp)

