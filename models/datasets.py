"""Datasets for evaluation and training: labelled trials, DEAP files, feature tables.

Every loader returns a :class:`Dataset`: a feature matrix with string labels, the group
of each row (the trial or recording it was cut from; rows of one group never sit on
both sides of a grouped split) and the subject of each row (for leave-one-subject-out).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import pickle
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.errors import DataError

log = logging.getLogger(__name__)

#: DEAP's 32 EEG channels in the order of the preprocessed Python files (Geneva order).
DEAP_CHANNELS: tuple[str, ...] = (
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3",
    "O1", "Oz", "Pz", "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz", "C4", "T8",
    "CP6", "CP2", "P4", "P8", "PO4", "O2",
)  # fmt: skip

DEAP_SFREQ_HZ = 128.0
DEAP_BASELINE_S = 3.0
DEAP_THRESHOLD = 5.0

#: DEAP quadrant (valence x arousal, high = rating >= 5) -> Duygu's emotion words, which
#: sit on the same plane in the simulator (happy +/+, relaxing +/-, tense -/+, sad -/-).
DEAP_QUADRANT_EMOTION: dict[str, str] = {
    "HVHA": "happy", "HVLA": "relaxing", "LVHA": "tense", "LVLA": "sad",
}  # fmt: skip


class TrialLike(Protocol):
    """What :func:`from_trials` needs of a trial (``acquisition.store.sqlite.LabelledTrial``).

    A trial may also have ``contiguous_pieces()``: the row ranges between its gaps (the
    store's trials do); without it the whole trial is one piece.
    """

    data: NDArray[np.float64]
    label: str
    trial_id: str
    subject: str
    sfreq_hz: float


def _window_count(n_samples: int, win: int, step: int) -> int:
    return 0 if n_samples < win else (n_samples - win) // step + 1


@dataclass
class Dataset:
    """Rows of features with labels, groups and subjects.

    Attributes
    ----------
    X : ndarray, shape (n_rows, n_features)
    y : ndarray of str, shape (n_rows,)
    groups : ndarray of str, shape (n_rows,), or None
        Trial or recording of each row; ``None`` when the rows are independent.
    subjects : ndarray of str, shape (n_rows,), or None
    feature_names : list of str
    meta : dict
        Where the data came from (``source``, ``preset``, ``channels``, ``sfreq_hz``,
        ``domain``, rejected windows, skipped trials, ...).
    stimuli : ndarray of str, shape (n_rows,), or None
        The stimulus of each row when the rows carry that stimulus's own features
        (EEG + music fusion): the same stimulus is heard by several subjects, so grouped
        and loso splits keep stimuli apart.
    windows : ndarray of float32, shape (n_rows, n_channels, n_samples), or None
        The filtered raw window each row's features came from (kept on request, for
        classifiers that read raw EEG).
    """

    X: NDArray[np.float64]
    y: NDArray[np.str_]
    groups: NDArray[np.str_] | None = None
    subjects: NDArray[np.str_] | None = None
    feature_names: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    stimuli: NDArray[np.str_] | None = None
    windows: NDArray[np.float32] | None = None

    @property
    def classes(self) -> list[str]:
        """Sorted class names (the row and column order of confusion matrices)."""
        return sorted(np.unique(self.y).tolist())

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    def has_groups(self) -> bool:
        """True when some group holds more than one row (so random splits can leak)."""
        return self.groups is not None and len(np.unique(self.groups)) < len(self.groups)

    def data_hash(self) -> str:
        """SHA-256 of features, labels and groups (identifies the training data)."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.X, dtype=np.float64).tobytes())
        h.update("\x1f".join(self.y.tolist()).encode())
        if self.groups is not None:
            h.update("\x1f".join(self.groups.tolist()).encode())
        return h.hexdigest()

    def validate(self) -> Dataset:
        """Check shapes, finiteness and the number of classes; return ``self``.

        Raises
        ------
        DataError
            NaN or inf in ``X``, mismatched lengths, no rows or a single class.
        """
        X = self.X
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise DataError(f"features must be a non-empty 2-D table, got shape {X.shape}")
        for name, arr in (("labels", self.y), ("groups", self.groups), ("subjects", self.subjects),
                          ("stimuli", self.stimuli), ("windows", self.windows)):
            if arr is not None and len(arr) != X.shape[0]:
                raise DataError(f"{name} must have one entry per row ({X.shape[0]}), got {len(arr)}")
        bad = ~np.isfinite(X)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            name = self.feature_names[col] if col < len(self.feature_names) else f"#{col}"
            raise DataError(
                f"features must be finite: {int(bad.sum())} NaN/inf value(s), first in row {row}, "
                f"feature {name!r}"
            )
        classes = self.classes
        if len(classes) < 2:
            raise DataError(f"labels must hold at least 2 classes, got {len(classes)}: {classes}")
        return self


def _as_str_array(values: Iterable[Any]) -> NDArray[np.str_]:
    return np.asarray([str(v) for v in values], dtype=str)


# -- (a) labelled trials --------------------------------------------------------------
#: ``meta["domain"]`` of a dataset: what the EEG was before Duygu's filter.
DOMAIN_EPOC = "epoc-raw"
DOMAIN_DEAP = "deap-preprocessed"
DOMAIN_FEATURES = "feature-table"


def from_trials(trials: Sequence[TrialLike], preset: Any = "default", keep_windows: bool = False,
                cache_dir: str | Path | None = None) -> Dataset:
    """Cut each trial into feature windows with ``processing.pipeline.segment_features``.

    Parameters
    ----------
    trials : sequence of LabelledTrial
        Raw µV in EPOC order at 128 Hz, with label, trial id and subject.
    preset : str or FeaturePreset
        Feature preset (``"default"``, ``"paper"`` or a preset object).
    keep_windows : bool
        Keep each row's filtered window in ``windows`` (for classifiers of raw EEG;
        14 x 512 float32 per row with the default preset).
    cache_dir : path, optional
        Keep the computed features in ``cache_dir/<sha256>.npz``, keyed by the trials'
        samples, labels, ids and subjects, the preset and Duygu's version, and read them
        back instead of recomputing (not with ``keep_windows``: windows are not cached).

    Returns
    -------
    Dataset
        One row per accepted window; ``groups`` are trial ids, ``subjects`` participant ids.
        Windows are cut inside the gap-free pieces of each trial, never across a gap
        (each piece is filtered from its own start, as the live path restarts after a
        gap); ``meta["windows_lost_to_gaps"]`` counts the windows the trials would have
        had without their gaps, ``meta["trials_with_gaps"]`` the trials that had one;
        ``meta["bad_contact_trials"]`` are the ids of the trials recorded with bad contact
        (``meta["trials_with_bad_contact"]`` their count). Trials too short for one
        window, or whose windows were all rejected as artefacts, are skipped and listed
        in ``meta["skipped_trials"]``.

    Raises
    ------
    DataError
        No trials, a trial at another rate or channel count, NaN/inf in a trial, or no
        usable window in any trial.
    """
    from processing.features import feature_names
    from processing.pipeline import segment_features, window_samples
    from processing.presets import get_preset

    preset_obj = get_preset(preset)
    if not trials:
        raise DataError("trials must not be empty: no labelled trial to build a dataset from")
    cache = None
    if cache_dir is not None and not keep_windows:
        cache = Path(cache_dir) / f"{_trials_key(trials, preset_obj)}.npz"
        cached = _read_cached(cache)
        if cached is not None:
            return cached
    parts: list[NDArray[np.float64]] = []
    window_parts: list[NDArray[np.float32]] = []
    labels: list[str] = []
    groups: list[str] = []
    subjects: list[str] = []
    skipped: list[dict[str, Any]] = []
    n_rejected = 0
    lost_to_gaps = 0
    with_gaps = 0
    bad_contact: list[str] = []
    win, step = window_samples(preset_obj, SFREQ_HZ)
    for trial in trials:
        data = np.asarray(trial.data, dtype=np.float64)
        tid = str(trial.trial_id)
        if abs(float(trial.sfreq_hz) - SFREQ_HZ) > 1e-9:
            raise DataError(f"trial {tid!r}: sfreq must be {SFREQ_HZ:g} Hz, got {trial.sfreq_hz:g}")
        if data.ndim != 2 or data.shape[1] != len(EPOC_CHANNELS):
            raise DataError(f"trial {tid!r}: data must have shape (n, {len(EPOC_CHANNELS)}), got {data.shape}")
        if not np.isfinite(data).all():
            raise DataError(f"trial {tid!r}: data must be finite, found {int((~np.isfinite(data)).sum())} NaN/inf samples")
        if getattr(trial, "bad_contact", ()):
            bad_contact.append(tid)
        pieces_of = getattr(trial, "contiguous_pieces", None)
        pieces = list(pieces_of()) if callable(pieces_of) else [(0, len(data))]
        n_missing = int(getattr(trial, "n_missing", 0) or 0)
        if len(pieces) > 1 or n_missing:
            with_gaps += 1
            lost_to_gaps += max(0, _window_count(len(data) + n_missing, win, step)
                                - sum(_window_count(b - a, win, step) for a, b in pieces))
        usable = [(a, b) for a, b in pieces if b - a >= win]
        if not usable:
            longest = max(b - a for a, b in pieces) / SFREQ_HZ
            where = "" if len(pieces) == 1 else f" between its {len(pieces) - 1} gap(s)"
            skipped.append({"trial_id": tid, "reason": f"{longest:.2f} s{where} is shorter than the "
                            f"{preset_obj.window_s:g} s window"})
            continue
        rows_before = sum(len(x) for x in parts)
        trial_rejected = 0
        for a, b in usable:
            seg = segment_features(data[a:b], SFREQ_HZ, preset_obj, EPOC_CHANNELS, keep_windows=keep_windows)
            trial_rejected += int(seg.n_rejected)
            if len(seg.X):
                parts.append(np.asarray(seg.X, dtype=np.float64))
                if seg.windows is not None:
                    window_parts.append(seg.windows)
        n_rejected += trial_rejected
        n_rows = sum(len(x) for x in parts) - rows_before
        if n_rows == 0:
            skipped.append({"trial_id": tid, "reason": f"all {trial_rejected} windows rejected as artefacts"})
            continue
        labels += [str(trial.label)] * n_rows
        groups += [tid] * n_rows
        subjects += [str(trial.subject)] * n_rows
    for s in skipped:
        log.warning("trial %s skipped: %s", s["trial_id"], s["reason"])
    if not parts:
        raise DataError(f"trials gave no usable window for preset {preset_obj.name!r} ({len(skipped)} trial(s) skipped)")
    ds = Dataset(
        X=np.concatenate(parts),
        y=_as_str_array(labels),
        groups=_as_str_array(groups),
        subjects=_as_str_array(subjects),
        feature_names=list(feature_names(preset_obj, EPOC_CHANNELS)),
        meta={
            "source": "trials",
            "domain": DOMAIN_EPOC,
            "preset": preset_obj.name,
            "preset_params": _preset_params(preset_obj),
            "channels": list(EPOC_CHANNELS),
            "sfreq_hz": SFREQ_HZ,
            "n_trials": len(trials) - len(skipped),
            "n_rejected_windows": n_rejected,
            "windows_lost_to_gaps": lost_to_gaps,
            "trials_with_gaps": with_gaps,
            "trials_with_bad_contact": len(bad_contact),
            "bad_contact_trials": bad_contact,
            "skipped_trials": skipped,
        },
        windows=np.concatenate(window_parts) if keep_windows else None,
    ).validate()
    if cache is not None:
        _write_cached(cache, ds)
    return ds


def _trials_key(trials: Sequence[TrialLike], preset: Any) -> str:
    """SHA-256 of everything a feature table of ``trials`` depends on."""
    import json

    from acquisition import __version__

    h = hashlib.sha256(json.dumps([__version__, _preset_params(preset)], sort_keys=True, default=str).encode())
    for t in trials:
        data = np.ascontiguousarray(t.data, dtype=np.float64)
        pieces_of = getattr(t, "contiguous_pieces", None)
        pieces = list(pieces_of()) if callable(pieces_of) else []
        extra = f"{pieces}\x1f{getattr(t, 'n_missing', 0)}\x1f{list(getattr(t, 'bad_contact', ()))}"
        h.update(f"\x1e{t.trial_id}\x1f{t.label}\x1f{t.subject}\x1f{t.sfreq_hz!r}\x1f{data.shape}\x1f{extra}".encode())
        h.update(data.tobytes())
    return h.hexdigest()


def _read_cached(path: Path) -> Dataset | None:
    """The dataset cached at ``path``, or ``None`` (missing or unreadable: recomputed)."""
    import json

    try:
        with np.load(path, allow_pickle=False) as z:
            return Dataset(X=z["X"], y=z["y"], groups=z["groups"], subjects=z["subjects"],
                           feature_names=z["feature_names"].tolist(), meta=json.loads(str(z["meta"])))
    except (OSError, KeyError, ValueError):
        return None


def _write_cached(path: Path, ds: Dataset) -> None:
    import json

    assert ds.groups is not None and ds.subjects is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.npz")
    np.savez(tmp, X=ds.X, y=ds.y, groups=ds.groups, subjects=ds.subjects,
             feature_names=np.asarray(ds.feature_names), meta=np.asarray(json.dumps(ds.meta)))
    tmp.replace(path)


def _preset_params(preset: Any) -> dict[str, Any]:
    return dict(preset.to_dict())


# -- (b) DEAP -------------------------------------------------------------------------
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays and nothing else (pickles can run code)."""

    def find_class(self, module: str, name: str) -> Any:
        import codecs

        from numpy._core import multiarray

        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy.core.multiarray", "scalar"): multiarray.scalar,
            ("numpy._core.multiarray", "scalar"): multiarray.scalar,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): codecs.encode,
        }
        try:
            return allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a DEAP file") from None


def read_deap_file(path: str | Path) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Read one DEAP preprocessed Python file (``s01.dat``) safely.

    Returns
    -------
    data : ndarray, shape (n_trials, n_channels >= 32, n_samples)
    labels : ndarray, shape (n_trials, 4)
        Valence, arousal, dominance, liking (1-9).

    Raises
    ------
    DataError
        Not a pickle of numpy arrays, forbidden content, or wrong shapes.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        obj = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except OSError as exc:
        raise DataError(f"DEAP file {path} cannot be read: {exc.strerror or exc}") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataError(f"DEAP file {path.name} refused: {exc}".replace("\n", " ")) from exc
    if not isinstance(obj, dict) or "data" not in obj or "labels" not in obj:
        raise DataError(f"DEAP file {path.name} must hold a dict with 'data' and 'labels', got {type(obj).__name__}")
    data = np.asarray(obj["data"], dtype=np.float64)
    labels = np.asarray(obj["labels"], dtype=np.float64)
    if data.ndim != 3 or data.shape[1] < len(DEAP_CHANNELS):
        raise DataError(f"DEAP file {path.name}: data must have shape (trials, >=32 channels, samples), got {data.shape}")
    if labels.ndim != 2 or labels.shape[0] != data.shape[0] or labels.shape[1] < 2:
        raise DataError(f"DEAP file {path.name}: labels must have shape ({data.shape[0]}, 4), got {labels.shape}")
    return data, labels


def deap_quadrant(valence: float, arousal: float, threshold: float = DEAP_THRESHOLD) -> str:
    """``HVHA``, ``HVLA``, ``LVHA`` or ``LVLA`` (high means rating >= ``threshold``)."""
    return ("HV" if valence >= threshold else "LV") + ("HA" if arousal >= threshold else "LA")


def load_deap(directory: str | Path, preset: Any = "default", *, labels: str = "quadrant",
              baseline: str = "remove", subjects: Sequence[str] | None = None,
              keep_windows: bool = False, cache_dir: str | Path | None = None) -> Dataset:
    """Load DEAP's preprocessed Python files (``s01.dat`` ...) from ``directory``.

    Each trial keeps the 14 EPOC channels (picked by name from DEAP's 32, put in EPOC
    order), drops the 3 s pre-trial baseline (``baseline="remove"``) or subtracts its
    per-channel mean first (``baseline="subtract"``), and is labelled by its valence x
    arousal quadrant with threshold 5.

    Parameters
    ----------
    directory : path
        Folder with ``sNN.dat`` files.
    preset : str or FeaturePreset
    labels : {"quadrant", "emotion"}
        ``HVHA``/``HVLA``/``LVHA``/``LVLA``, or Duygu's words (happy, relaxing, tense, sad).
    baseline : {"remove", "subtract"}
    subjects : list of str, optional
        Only these files (``["s01", "s02"]``).
    keep_windows : bool
        Keep each row's filtered window (see :func:`from_trials`).
    cache_dir : path, optional
        Feature cache (see :func:`from_trials`).

    Raises
    ------
    DataError
        No ``sNN.dat`` files, a refused or malformed file, or a bad option.
    """
    if labels not in ("quadrant", "emotion"):
        raise DataError(f"DEAP labels must be 'quadrant' or 'emotion', got {labels!r}")
    if baseline not in ("remove", "subtract"):
        raise DataError(f"DEAP baseline must be 'remove' or 'subtract', got {baseline!r}")
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"DEAP directory {directory} does not exist")
    files = sorted(p for p in directory.glob("s*.dat") if p.stem[1:].isdigit())
    if subjects is not None:
        wanted = {s.strip() for s in subjects}
        files = [p for p in files if p.stem in wanted]
    if not files:
        raise DataError(f"DEAP directory {directory} holds no sNN.dat file")
    pick = [DEAP_CHANNELS.index(ch) for ch in EPOC_CHANNELS]
    n_base = round(DEAP_BASELINE_S * DEAP_SFREQ_HZ)
    trials: list[_Trial] = []
    for path in files:
        data, ratings = read_deap_file(path)
        if data.shape[2] <= n_base:
            raise DataError(f"DEAP file {path.name}: trials must be longer than the 3 s baseline ({n_base} samples), got {data.shape[2]}")
        for k in range(data.shape[0]):
            eeg = data[k, pick, :].T  # (n_samples, 14) in EPOC order
            if baseline == "subtract":
                eeg = eeg - eeg[:n_base].mean(axis=0)
            quadrant = deap_quadrant(float(ratings[k, 0]), float(ratings[k, 1]))
            label = DEAP_QUADRANT_EMOTION[quadrant] if labels == "emotion" else quadrant
            trials.append(_Trial(eeg[n_base:], label, f"{path.stem}-t{k + 1:02d}", path.stem, DEAP_SFREQ_HZ))
    ds = from_trials(trials, preset, keep_windows=keep_windows, cache_dir=cache_dir)
    ds.meta.update({
        "source": "deap",
        # DEAP's preprocessed files are 4-45 Hz band-passed, average-referenced and
        # EOG-cleaned: another signal than a raw EPOC+ stream (bundles record it)
        "domain": DOMAIN_DEAP,
        "directory": str(directory),
        "files": [p.name for p in files],
        "deap_labels": labels,
        "deap_baseline": baseline,
        "deap_threshold": DEAP_THRESHOLD,
    })
    return ds


@dataclass
class _Trial:
    data: NDArray[np.float64]
    label: str
    trial_id: str
    subject: str
    sfreq_hz: float


# -- (c) feature tables ---------------------------------------------------------------
def load_feature_table(path: str | Path, label: str, group: str | None = None,
                       drop: Sequence[str] = (), subject: str | None = None) -> Dataset:
    """Read a CSV of features: a label column, an optional group column, numeric features.

    Parameters
    ----------
    path : path
        CSV with a header row.
    label : str
        Column holding the class labels.
    group : str, optional
        Column holding the trial or recording of each row (grouped splits).
    drop : sequence of str
        Other non-numeric (or unwanted) columns to ignore.
    subject : str, optional
        Column holding the subject of each row (leave-one-subject-out).

    Raises
    ------
    DataError
        Missing file or column, a non-numeric cell in a feature column, NaN/inf, or a
        single class.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise DataError(f"feature table {path} cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"feature table {path.name} is not UTF-8 text: {exc.reason}") from exc
    except csv.Error as exc:
        raise DataError(f"feature table {path.name} is not valid CSV: {exc}") from exc
    if not rows or not rows[0]:
        raise DataError(f"feature table {path.name} is empty (a header row is required)")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    if not body:
        raise DataError(f"feature table {path.name} has a header but no rows")
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise DataError(f"feature table {path.name}: row {i + 2} has {len(r)} cells, the header has {len(header)}")
    cols = {name: i for i, name in enumerate(header)}
    for role, name in (("label", label), ("group", group), ("subject", subject)):
        if name is not None and name not in cols:
            raise DataError(f"{role} column {name!r} is not in {path.name} (columns: {', '.join(header)})")
    for name in drop:
        if name not in cols:
            raise DataError(f"--drop column {name!r} is not in {path.name} (columns: {', '.join(header)})")
    special = {label, group, subject, *drop} - {None}
    feature_cols = [name for name in header if name not in special]
    if not feature_cols:
        raise DataError(f"feature table {path.name} has no feature column besides {', '.join(sorted(special))}")  # type: ignore[arg-type]
    table = np.asarray(body, dtype=object)
    X = np.empty((len(body), len(feature_cols)), dtype=np.float64)
    for j, name in enumerate(feature_cols):
        column = table[:, cols[name]]
        try:
            X[:, j] = column.astype(np.float64)
        except ValueError:
            bad_row = next(i for i, v in enumerate(column) if not _is_number(v))
            raise DataError(
                f"feature column {name!r} must be numeric, got {column[bad_row]!r} in row {bad_row + 2} "
                f"(name non-feature columns with --drop)"
            ) from None
    y = _as_str_array(v.strip() for v in table[:, cols[label]])
    if (y == "").any():
        raise DataError(f"label column {label!r} is empty in row {int(np.flatnonzero(y == '')[0]) + 2}")
    ds = Dataset(
        X=X,
        y=y,
        groups=_as_str_array(v.strip() for v in table[:, cols[group]]) if group else None,
        subjects=_as_str_array(v.strip() for v in table[:, cols[subject]]) if subject else None,
        feature_names=feature_cols,
        meta={"source": "features", "domain": DOMAIN_FEATURES, "path": str(path), "label": label, "group": group,
              "subject": subject, "dropped": list(drop), "preset": None, "channels": None,
              "sfreq_hz": None},
    )
    return ds.validate()


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True
