"""Session report: intended, perceived, reported and decoded emotion of every trial.

For one stored session, each trial gets four emotions:

* **intended** - the stimulus's emotion in the session's protocol;
* **perceived** - what a music model (:class:`models.music.MusicModel`) finds in the
  excerpt the protocol plays (``path``, ``start_s``, ``music_s`` from the protocol
  stored with the session);
* **reported** - the participant's label;
* **decoded** - what an EEG bundle (:func:`models.bundle.load_bundle`) decodes from the
  trial's EEG: :func:`processing.pipeline.segment_features` cuts and cleans the windows
  as in training, the window probabilities are averaged.

Every pair of the sources present gets an agreement matrix (counts over the trials
where both are known), the agreement rate and Cohen's kappa. A source whose model is
not given is absent and the report says why. Class names that only one source of a
pair can produce are listed, not treated as errors.

Decoding trials the EEG model was trained on is optimistic; the report always says the
EEG model should come from other sessions, and warns when the bundle's training data
provably holds this session (same data hash) or this participant.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.errors import DataError, DuyguError, ModelFormatError
from acquisition.settings import write_text_atomic

SOURCES: tuple[str, ...] = ("intended", "perceived", "reported", "decoded")
SOURCE_HELP: dict[str, str] = {
    "intended": "the stimulus's emotion in the protocol",
    "perceived": "the emotion a music model finds in the excerpt played",
    "reported": "the participant's label",
    "decoded": "the emotion an EEG model decodes from the trial's EEG",
}

ProgressCallback = Callable[[int, int], None]


@dataclass
class TrialRow:
    """One trial of the report (``None`` where a source is absent or failed)."""

    trial_id: int
    position: int
    stimulus_id: str
    stimulus_path: str | None
    start_s: float | None
    music_s: float | None
    intended: str | None
    reported: str | None
    perceived: str | None = None
    perceived_proba: dict[str, float] | None = None
    perceived_error: str | None = None
    decoded: str | None = None
    decoded_proba: dict[str, float] | None = None
    n_windows: int = 0
    n_rejected: int = 0
    n_samples: int = 0
    decoded_error: str | None = None

    def label(self, source: str) -> str | None:
        """The emotion of ``source`` (one of :data:`SOURCES`)."""
        return getattr(self, source)


@dataclass
class Agreement:
    """Agreement between two sources over the trials where both are known.

    Attributes
    ----------
    rows, columns : str
        The two sources (rows of ``matrix`` are ``rows``' labels).
    classes : list of str
        Row and column order of ``matrix``: the union of both sources' classes.
    matrix : list of list of int
        ``matrix[i][j]``: trials where ``rows`` said ``classes[i]`` and ``columns``
        said ``classes[j]``.
    n : int
        Trials counted.
    rate : float or None
        Share of the ``n`` trials where both agree (None when ``n == 0``).
    kappa : float or None
        Cohen's kappa (None when ``n == 0`` or undefined, e.g. one class only).
    only_rows, only_columns : list of str
        Classes only one of the two sources can produce (name mismatches).
    """

    rows: str
    columns: str
    classes: list[str]
    matrix: list[list[int]]
    n: int
    rate: float | None
    kappa: float | None
    only_rows: list[str] = field(default_factory=list)
    only_columns: list[str] = field(default_factory=list)


@dataclass
class SessionReport:
    """Everything :func:`build_session_report` found; :meth:`as_json` for files."""

    session: dict[str, Any]
    trials: list[TrialRow]
    sources: list[str]
    absent: dict[str, str]
    agreements: list[Agreement]
    classes: dict[str, list[str]]
    models: dict[str, Any]
    notes: list[str]
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))

    def agreement(self, a: str, b: str) -> Agreement:
        """The agreement between sources ``a`` and ``b`` (rows ``a``)."""
        for ag in self.agreements:
            if (ag.rows, ag.columns) == (a, b):
                return ag
        raise DataError(f"no agreement between {a!r} and {b!r}: sources present are {', '.join(self.sources)}")

    def as_json(self) -> dict[str, Any]:
        """Plain data: ``session``, ``sources``, ``absent``, ``classes``, ``models``,
        ``notes``, ``trials`` (one dict per trial), ``agreements``, ``created``."""
        return {
            "session": self.session,
            "sources": list(self.sources),
            "absent": dict(self.absent),
            "classes": self.classes,
            "models": self.models,
            "notes": list(self.notes),
            "trials": [asdict(t) for t in self.trials],
            "agreements": [asdict(a) for a in self.agreements],
            "created": self.created,
        }


# -- agreement ----------------------------------------------------------------------------
def agreement(rows: str, columns: str, pairs: list[tuple[str, str]], row_classes: list[str],
              column_classes: list[str]) -> Agreement:
    """Count label pairs into a square matrix over the union of both class sets.

    Parameters
    ----------
    rows, columns : str
        Source names.
    pairs : list of (str, str)
        One (row label, column label) per trial where both are known.
    row_classes, column_classes : list of str
        The classes each source can produce (labels seen in ``pairs`` are added).
    """
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import cohen_kappa_score

    seen_r = {a for a, _ in pairs}
    seen_c = {b for _, b in pairs}
    set_r = set(row_classes) | seen_r
    set_c = set(column_classes) | seen_c
    ordered = list(dict.fromkeys([*row_classes, *column_classes]))
    classes = ordered + sorted((set_r | set_c) - set(ordered))
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for a, b in pairs:
        matrix[index[a], index[b]] += 1
    n = len(pairs)
    rate = float(np.trace(matrix) / n) if n else None
    kappa: float | None = None
    if n:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            value = float(cohen_kappa_score([a for a, _ in pairs], [b for _, b in pairs], labels=classes))
        kappa = value if math.isfinite(value) else None
    return Agreement(rows, columns, classes, matrix.tolist(), n, rate, kappa,
                     sorted(set_r - set_c), sorted(set_c - set_r))


# -- models -------------------------------------------------------------------------------
def load_eeg_model(path: str | Path, channels: tuple[str, ...] | list[str] | None = None,
                   sfreq_hz: float | None = None) -> Any:
    """Load an EEG bundle for a session's channels and rate (one-line ModelFormatError)."""
    from models.bundle import check_compatible, load_bundle

    bundle = load_bundle(path)
    name = Path(path).name
    if bundle.meta.get("kind") == "music":
        raise ModelFormatError(f"model file {name} is a music model, not an EEG model (pass it as --music-model)")
    check_compatible(bundle, channels, sfreq_hz, f"model file {name}")
    if not (bundle.meta.get("preset_params") or bundle.meta.get("preset")):
        raise ModelFormatError(f"model file {Path(path).name} has no feature preset; it was not trained on EEG windows")
    return bundle


def load_music_model(path: str | Path) -> Any:
    """Load a music model (:meth:`models.music.MusicModel.load`)."""
    from models.music import MusicModel

    return MusicModel.load(path)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _training_overlap(bundle: Any, store: Any, session_id: int, participant: str, preset: Any) -> dict[str, Any]:
    """What the bundle's metadata says about this session being in its training data."""
    from models.datasets import from_trials

    td = bundle.meta.get("training_data") or {}
    subjects = td.get("subjects") or []
    out: dict[str, Any] = {"hash": td.get("hash"), "subjects": subjects, "same_data": False,
                           "same_participant": participant in subjects}
    if td.get("hash"):
        try:
            trials = store.labelled_trials(session_ids=[session_id])
            if trials:
                out["same_data"] = from_trials(trials, preset).data_hash() == td["hash"]
        except DuyguError as exc:
            out["hash_check"] = f"not checked: {_one_line(exc)}"
    fused = bundle.meta.get("fusion") or {}
    if session_id in (fused.get("session_ids") or []):
        out["same_data"] = True
    return out


# -- the report ---------------------------------------------------------------------------
def _protocol_stimuli(protocol: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(s.get("id")): s for s in protocol.get("stimuli", []) if isinstance(s, dict)}


def perceive(model: Any, path: str | Path, start_s: float, duration_s: float | None) -> dict[str, float]:
    """Music-model probabilities of the excerpt ``[start_s, start_s + duration_s)`` of a file."""
    from processing import audio

    frames = audio.extract_frames(path, offset_s=float(start_s), duration_s=duration_s)
    return model.predict_features(frames)


def decode(bundle: Any, data: np.ndarray, sfreq_hz: float, channels: tuple[str, ...],
           extra: np.ndarray | None = None) -> tuple[dict[str, float] | None, int, int]:
    """Mean window probabilities of an EEG bundle on one trial's raw µV.

    Parameters
    ----------
    bundle : models.bundle.Bundle
    data : ndarray, shape (n_samples, n_channels)
        Raw µV between the trial's onset and offset.
    sfreq_hz : float
    channels : tuple of str
    extra : ndarray, shape (n_extra,), optional
        Features appended to every window (the music summary of a fused model).

    Returns
    -------
    proba : dict or None
        Class -> mean probability over the kept windows (None when none was kept).
    n_windows : int
        Windows kept.
    n_rejected : int
        Windows rejected as artefacts.

    Raises
    ------
    DataError
        A trial shorter than one window, or NaN samples.
    """
    from processing.pipeline import segment_features
    from processing.presets import get_preset

    preset = get_preset(bundle.meta.get("preset_params") or bundle.meta.get("preset"))
    seg = segment_features(data, sfreq_hz, preset, channels)
    if len(seg.X) == 0:
        return None, 0, int(seg.n_rejected)
    X = seg.X
    if extra is not None:
        X = np.hstack([X, np.tile(np.asarray(extra, dtype=np.float64), (len(X), 1))])
    n_expected = bundle.meta.get("n_features")
    if n_expected is not None and int(n_expected) != X.shape[1]:
        raise DataError(f"the EEG model expects {n_expected} features, this trial gives {X.shape[1]}")
    proba = np.asarray(bundle.predict_proba(X), dtype=np.float64).mean(axis=0)
    return {str(c): float(p) for c, p in zip(bundle.classes, proba, strict=True)}, len(X), int(seg.n_rejected)


def _argmax(proba: dict[str, float] | None) -> str | None:
    return None if not proba else max(proba, key=proba.__getitem__)


def build_session_report(store: Any, session_id: int, *, eeg_model: Any = None, music_model: Any = None,
                         progress: ProgressCallback | None = None) -> SessionReport:
    """Intended, perceived, reported and decoded emotion of every trial of a session.

    Parameters
    ----------
    store : acquisition.store.sqlite.SessionStore
    session_id : int
    eeg_model : path or models.bundle.Bundle, optional
        EEG bundle; without it the decoded source is absent.
    music_model : path or models.music.MusicModel, optional
        Music model; without it the perceived source is absent.
    progress : callable(done, total), optional

    Returns
    -------
    SessionReport

    Raises
    ------
    StoreError
        Unknown session id.
    ModelFormatError
        A model file that is missing, foreign, or for other channels or rate.
    """
    from models.fusion import FUSION_KIND, stimulus_summary

    info = store.session(session_id)
    protocol = info.protocol or {}
    stimuli = _protocol_stimuli(protocol)
    music_s = protocol.get("music_s")
    time_scale = float(protocol.get("time_scale") or 1.0)
    labels = [str(x) for x in protocol.get("labels") or []]
    notes: list[str] = []
    absent: dict[str, str] = {}
    models_info: dict[str, Any] = {}
    channels = tuple(info.channels)

    bundle = None
    if eeg_model is not None:
        bundle = load_eeg_model(eeg_model, channels, info.sfreq_hz) if isinstance(eeg_model, (str, Path)) else eeg_model
    music = None
    if music_model is not None:
        music = load_music_model(music_model) if isinstance(music_model, (str, Path)) else music_model

    if music is None:
        absent["perceived"] = "no music model given (--music-model PATH)"
    else:
        models_info["music"] = {"path": str(music_model) if isinstance(music_model, (str, Path)) else None,
                                "classifier": music.classifier, "classes": list(music.classes)}
    fusion: dict[str, Any] = {}
    if bundle is None:
        absent["decoded"] = "no EEG model given (--eeg-model MODEL.skops)"
    else:
        fusion = bundle.meta.get("fusion") or {}
        overlap = _training_overlap(bundle, store, session_id, info.participant,
                                    bundle.meta.get("preset_params") or bundle.meta.get("preset"))
        models_info["eeg"] = {"path": str(eeg_model) if isinstance(eeg_model, (str, Path)) else None,
                              "classifier": bundle.meta.get("classifier"), "classes": list(bundle.classes),
                              "preset": bundle.meta.get("preset"), "training_data": overlap,
                              "fusion": fusion.get("kind")}
        notes.append("Decoded emotions are only a fair test when the EEG model was trained on OTHER sessions; "
                     "on trials it was trained on they are optimistic.")
        if overlap["same_data"]:
            notes.append(f"WARNING: the EEG model was trained on this very session ({session_id}): "
                         "its decoded emotions are training-set predictions, not a test.")
        elif overlap["same_participant"]:
            notes.append(f"WARNING: the EEG model's training data includes participant {info.participant}; "
                         "if it held this session, the decoded emotions are optimistic.")
    if time_scale != 1.0:
        notes.append(f"The session ran with time_scale {time_scale:g}: participants heard "
                     f"{(music_s or 0) / time_scale:.2f} s per stimulus; perceived emotion is of the protocol's "
                     f"{music_s} s excerpt.")

    trials = store.trials(session_id)
    rows: list[TrialRow] = []
    perceived_cache: dict[str, tuple[dict[str, float] | None, str | None]] = {}
    summary_cache: dict[str, Any] = {}
    total = len(trials)
    for position, trial in enumerate(trials, start=1):
        stim = stimuli.get(trial.stimulus_id)
        row = TrialRow(
            trial_id=trial.id, position=position, stimulus_id=trial.stimulus_id,
            stimulus_path=None if stim is None else str(stim.get("path")),
            start_s=None if stim is None else float(stim.get("start_s") or 0.0),
            music_s=None if music_s is None else float(music_s),
            intended=trial.intended if trial.intended is not None else (None if stim is None else stim.get("emotion")),
            reported=trial.label,
        )
        if stim is None:
            if music is not None:
                row.perceived_error = f"stimulus {trial.stimulus_id!r} is not in the stored protocol"
        elif music is not None:
            if trial.stimulus_id not in perceived_cache:
                try:
                    perceived_cache[trial.stimulus_id] = (perceive(music, stim["path"], row.start_s or 0.0, row.music_s), None)
                except DuyguError as exc:
                    perceived_cache[trial.stimulus_id] = (None, _one_line(exc))
            row.perceived_proba, row.perceived_error = perceived_cache[trial.stimulus_id]
            row.perceived = _argmax(row.perceived_proba)
        if bundle is not None:
            _decode_row(row, store, session_id, trial, info, bundle, fusion, stim, summary_cache,
                        FUSION_KIND, stimulus_summary)
        rows.append(row)
        if progress is not None:
            progress(position, total)

    classes: dict[str, list[str]] = {"intended": labels, "reported": labels}
    if music is not None:
        classes["perceived"] = list(music.classes)
    if bundle is not None:
        classes["decoded"] = list(bundle.classes)
    sources = [s for s in SOURCES if s not in absent]
    for s in ("perceived", "decoded"):
        if s in classes and labels:
            foreign = [c for c in classes[s] if c not in labels]
            missing = [c for c in labels if c not in classes[s]]
            if foreign or missing:
                notes.append(f"Class names differ: the {s} model's classes are {', '.join(classes[s])}; the protocol's "
                             f"labels are {', '.join(labels)} (only {s}: {', '.join(foreign) or '-'}; "
                             f"never {s}: {', '.join(missing) or '-'}). Those cells can never agree.")
    failed = {s: sum(1 for r in rows if getattr(r, f"{s}_error")) for s in ("perceived", "decoded") if s in sources}
    for s, n in failed.items():
        if n:
            notes.append(f"{s.capitalize()} emotion unknown for {n} of {len(rows)} trials (see the trial table).")
    unlabelled = sum(1 for r in rows if r.reported is None)
    if unlabelled:
        notes.append(f"{unlabelled} of {len(rows)} trials have no reported label.")
    agreements = []
    for i, a in enumerate(sources):
        for b in sources[i + 1:]:
            pairs = [(r.label(a), r.label(b)) for r in rows if r.label(a) is not None and r.label(b) is not None]
            agreements.append(agreement(a, b, pairs, classes.get(a, []), classes.get(b, [])))  # type: ignore[arg-type]
    session = {"id": info.id, "participant": info.participant, "status": info.status,
               "protocol": info.protocol_name, "source": info.source, "start": info.start, "end": info.end,
               "n_trials": len(rows), "music_s": music_s, "time_scale": time_scale,
               "sfreq_hz": info.sfreq_hz}
    return SessionReport(session, rows, sources, absent, agreements, classes, models_info, notes)


def _decode_row(row: TrialRow, store: Any, session_id: int, trial: Any, info: Any, bundle: Any,
                fusion: dict[str, Any], stim: dict[str, Any] | None, summary_cache: dict[str, Any],
                fusion_kind: str, stimulus_summary: Any) -> None:
    if trial.onset_index is not None and trial.offset_index is not None:
        data, _t, _i = store.eeg(session_id, start_index=trial.onset_index, stop_index=trial.offset_index)
    else:
        data, times, _i = store.eeg(session_id)
        keep = (times >= trial.onset_t) & (times < trial.offset_t)
        data = data[keep]
    row.n_samples = len(data)
    if len(data) == 0:
        row.decoded_error = "no EEG stored for this trial"
        return
    extra = None
    if fusion.get("kind") == fusion_kind:
        if stim is None:
            row.decoded_error = "the fused EEG+music model needs the stimulus, which is not in the protocol"
            return
        key = row.stimulus_id
        try:
            if key not in summary_cache:
                summary_cache[key] = stimulus_summary(stim["path"], row.start_s or 0.0, row.music_s)
        except DuyguError as exc:
            row.decoded_error = f"music features for the fused model: {_one_line(exc)}"
            return
        extra = summary_cache[key]
    try:
        proba, row.n_windows, row.n_rejected = decode(bundle, data, info.sfreq_hz, tuple(info.channels), extra)
    except DuyguError as exc:
        row.decoded_error = _one_line(exc)
        return
    if proba is None:
        row.decoded_error = f"all {row.n_rejected} windows rejected as artefacts"
        return
    row.decoded_proba = proba
    row.decoded = _argmax(proba)


# -- HTML ---------------------------------------------------------------------------------
def _esc(value: Any) -> str:
    return html.escape("-" if value is None else str(value), quote=True)


def agreement_svg(ag: Agreement) -> str:
    """The agreement matrix as an inline SVG (reusing :func:`models.report.confusion_svg`)."""
    from models.report import confusion_svg

    svg = confusion_svg(ag.matrix, ag.classes, f"{ag.rows} (rows) vs {ag.columns} (columns)")
    # confusion_svg names its axes "true"/"predicted"; they are sources here. The axis
    # titles are the last two text elements, after every class label.
    for old, new in (("predicted</text>", f"{_esc(ag.columns)}</text>"), ("true</text>", f"{_esc(ag.rows)}</text>")):
        k = svg.rfind(">" + old)
        if k >= 0:
            svg = svg[:k + 1] + new + svg[k + 1 + len(old):]
    return svg


def _proba_text(proba: dict[str, float] | None) -> str:
    if not proba:
        return ""
    return ", ".join(f"{c} {100 * p:.0f}%" for c, p in sorted(proba.items(), key=lambda kv: -kv[1]))


def render_html(report: SessionReport, title: str | None = None) -> str:
    """A self-contained HTML page: notes, the trial table and the agreement matrices."""
    s = report.session
    title = title or f"Duygu session report: session {s['id']} ({s['participant']})"
    head = "".join(f"<th>{_esc(h)}</th>" for h in (
        "#", "trial", "stimulus", "excerpt", *[src for src in SOURCES if src in report.sources],
        *(["windows kept / rejected"] if "decoded" in report.sources else [])))
    body = []
    for r in report.trials:
        cells = [str(r.position), str(r.trial_id), _esc(r.stimulus_id),
                 _esc(f"{Path(r.stimulus_path).name} @ {r.start_s:g} s + {r.music_s:g} s"
                      if r.stimulus_path and r.start_s is not None and r.music_s is not None else None)]
        for src in SOURCES:
            if src not in report.sources:
                continue
            value = r.label(src)
            if src == "perceived":
                extra = _proba_text(r.perceived_proba) or (r.perceived_error or "")
            elif src == "decoded":
                extra = _proba_text(r.decoded_proba) or (r.decoded_error or "")
            else:
                extra = ""
            agree = ' class="agree"' if value is not None and value == r.intended and src != "intended" else ""
            cells.append(f'<span{agree}>{_esc(value)}</span>' + (f'<br><small>{_esc(extra)}</small>' if extra else ""))
        if "decoded" in report.sources:
            cells.append(f"{r.n_windows} / {r.n_rejected}")
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    summary = "".join(
        f"<tr><td>{_esc(a.rows)}</td><td>{_esc(a.columns)}</td><td class=n>{a.n}</td>"
        f"<td class=n>{'-' if a.rate is None else f'{100 * a.rate:.1f} %'}</td>"
        f"<td class=n>{'-' if a.kappa is None else f'{a.kappa:.3f}'}</td>"
        f"<td>{_esc(', '.join(a.only_rows) or '')}</td><td>{_esc(', '.join(a.only_columns) or '')}</td></tr>"
        for a in report.agreements)
    figures = "".join(f"<figure>{agreement_svg(a)}<figcaption>n={a.n}, agreement "
                      f"{'-' if a.rate is None else f'{100 * a.rate:.1f} %'}, kappa "
                      f"{'-' if a.kappa is None else f'{a.kappa:.3f}'}</figcaption></figure>"
                      for a in report.agreements)
    absent = "".join(f"<li><b>{_esc(k)}</b> absent: {_esc(v)}</li>" for k, v in report.absent.items())
    notes = "".join(f"<li>{_esc(n)}</li>" for n in report.notes)
    sources = "".join(f"<li><b>{_esc(k)}</b>: {_esc(v)}</li>" for k, v in SOURCE_HELP.items())
    models = _esc(json.dumps(report.models, sort_keys=True))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #bbb; padding: 3px 8px; vertical-align: top; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
span.agree {{ color: #070; font-weight: bold; }}
small {{ color: #555; }}
figure {{ display: inline-block; margin: 0.5em; }}
</style></head><body>
<h1>{_esc(title)}</h1>
<p>Session {s['id']} of participant <b>{_esc(s['participant'])}</b>, protocol {_esc(s['protocol'])},
source {_esc(s['source'])}, status {_esc(s['status'])}, started {_esc(s['start'])}; {s['n_trials']} trials.
Report written {_esc(report.created)}.</p>
<ul>{sources}</ul>
<h2>Notes</h2>
<ul>{absent}{notes}</ul>
<h2>Trials</h2>
<p>Green: agrees with the intended emotion. Perceived and decoded show the mean class probabilities.</p>
<table><tr>{head}</tr>
{''.join(body)}</table>
<h2>Agreement</h2>
<table><tr><th>rows</th><th>columns</th><th>trials</th><th>agreement</th><th>Cohen's kappa</th>
<th>classes only in rows</th><th>classes only in columns</th></tr>{summary}</table>
{figures}
<h2>Models</h2>
<p><code>{models}</code></p>
</body></html>
"""


def write_html(report: SessionReport, path: str | Path, title: str | None = None) -> Path:
    """Write :func:`render_html` to ``path`` (UTF-8); return the path."""
    return write_text_atomic(path, render_html(report, title))
