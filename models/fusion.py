"""EEG + music fusion: every EEG window of a trial with its stimulus's music summary.

A fused dataset is :func:`models.datasets.from_trials` (rows: the accepted EEG windows of
each labelled trial; groups: trial ids; subjects: participants) with the clip summary
of the stimulus excerpt the trial played (:func:`processing.audio.summarise` over
``start_s .. start_s + music_s`` of the protocol stored with the session, 64 values,
named ``music_<name>``) appended to every row. Groups and subjects are unchanged.

A stimulus is the same for every participant who heard it, so its music columns
identify it across trials and subjects: grouped by trial, a classifier learns "this
excerpt means happy" from one participant and reads it back on another (random music
vectors on pure-noise EEG score 100 %). A fused dataset therefore carries each row's
stimulus (:attr:`models.datasets.Dataset.stimuli`, the excerpt played), and the
protocols of :mod:`models.evaluation` keep stimuli apart: ``grouped`` folds by stimulus,
``loso`` crosses leave-one-subject-out with stimulus folds, and the inner CV is grouped
by stimulus too. The evaluation JSON says so (``fusion.grouped_by``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from acquisition.errors import DataError
from models.datasets import Dataset

FUSION_KIND = "eeg+music"
MUSIC_PREFIX = "music_"


def music_feature_names() -> list[str]:
    """Names of the appended columns: ``music_`` + the clip summary names."""
    from processing.audio import summary_feature_names

    return [MUSIC_PREFIX + n for n in summary_feature_names()]


def stimulus_summary(path: str | Path, start_s: float, duration_s: float | None) -> NDArray[np.float64]:
    """Clip summary (:func:`processing.audio.summary_feature_names`) of ``duration_s`` seconds of ``path`` from ``start_s``.

    Raises
    ------
    DataError
        Unreadable file, or an excerpt too short for every feature (tempo needs
        :data:`processing.audio.MIN_TEMPO_S`).
    """
    from processing import audio

    ff = audio.extract_frames(path, offset_s=float(start_s), duration_s=duration_s)
    summary = np.asarray(ff.summary(), dtype=np.float64)
    if not np.isfinite(summary).all():
        bad = [n for n, ok in zip(audio.summary_feature_names(), np.isfinite(summary), strict=True) if not ok]
        raise DataError(f"{Path(path).name}: the {ff.duration_s:.2f} s excerpt gives no {', '.join(bad)} "
                        f"(needs >= {audio.MIN_TEMPO_S:g} s)")
    return summary


def fuse_music(dataset: Dataset, summaries: dict[str, NDArray[np.float64]],
               stimuli: dict[str, str] | None = None) -> Dataset:
    """Append ``summaries[group]`` to every row of ``dataset`` (a from_trials dataset).

    ``stimuli[group]`` names the stimulus of each trial (default: the trial itself,
    when no two trials share a stimulus); the result's :attr:`Dataset.stimuli` holds it
    per row, so that evaluations keep stimuli apart.

    Raises
    ------
    DataError
        The dataset has no groups, or a group has no summary or no stimulus.
    """
    if dataset.groups is None:
        raise DataError("fusion needs a dataset of trials (groups are trial ids), got one without groups")
    missing = sorted(set(dataset.groups.tolist()) - set(summaries))
    if missing:
        raise DataError(f"no music summary for trial(s) {', '.join(missing[:5])}")
    stimuli = stimuli if stimuli is not None else {g: g for g in summaries}
    no_stimulus = sorted(set(dataset.groups.tolist()) - set(stimuli))
    if no_stimulus:
        raise DataError(f"no stimulus for trial(s) {', '.join(no_stimulus[:5])}")
    music = np.stack([summaries[g] for g in dataset.groups.tolist()])
    meta = dict(dataset.meta)
    meta["fusion"] = {"kind": FUSION_KIND, "music_features": music_feature_names(), "grouped_by": "stimulus"}
    return Dataset(
        X=np.hstack([dataset.X, music]),
        y=dataset.y, groups=dataset.groups, subjects=dataset.subjects,
        feature_names=[*dataset.feature_names, *music_feature_names()],
        meta=meta,
        stimuli=np.asarray([str(stimuli[g]) for g in dataset.groups.tolist()]),
        windows=dataset.windows,
    ).validate()


def _excerpt(trial: Any, protocols: dict[int, dict[str, Any]]) -> tuple[str, float, float | None]:
    """``(path, start_s, duration_s)`` of the excerpt ``trial`` played: what its music
    columns are computed from, and so the identity of its stimulus."""
    proto = protocols.get(int(trial.session_id)) or {}
    stim = next((s for s in proto.get("stimuli", []) if str(s.get("id")) == str(trial.stimulus_id)), None)
    if stim is None:
        raise DataError(f"trial {trial.trial_id}: stimulus {trial.stimulus_id!r} is not in session "
                        f"{trial.session_id}'s protocol")
    music_s = proto.get("music_s")
    return str(stim["path"]), float(stim.get("start_s") or 0.0), None if music_s is None else float(music_s)


def trial_stimuli(trials: Sequence[Any], protocols: dict[int, dict[str, Any]]) -> dict[str, str]:
    """The stimulus of each trial id, as ``path@start_s+duration_s`` of the excerpt played."""
    out = {}
    for t in trials:
        path, start_s, duration_s = _excerpt(t, protocols)
        out[str(t.trial_id)] = f"{path}@{start_s:g}+{'end' if duration_s is None else f'{duration_s:g}'}"
    return out


def trial_summaries(trials: Sequence[Any], protocols: dict[int, dict[str, Any]]) -> dict[str, NDArray[np.float64]]:
    """Music summary per trial id, from each trial's session protocol (computed once per excerpt).

    Parameters
    ----------
    trials : sequence of LabelledTrial
        With ``session_id`` and ``stimulus_id``.
    protocols : dict
        Session id -> the protocol dict stored with that session.

    Raises
    ------
    DataError
        A stimulus missing from its session's protocol, or an unreadable excerpt.
    """
    cache: dict[tuple[str, float, float | None], NDArray[np.float64]] = {}
    out: dict[str, NDArray[np.float64]] = {}
    for t in trials:
        key = _excerpt(t, protocols)
        if key not in cache:
            cache[key] = stimulus_summary(*key)
        out[str(t.trial_id)] = cache[key]
    return out


def from_store(store: Any, preset: Any = "default", participants: Sequence[str] | None = None,
               session_ids: Sequence[int] | None = None, keep_windows: bool = False,
               cache_dir: str | Path | None = None) -> Dataset:
    """A fused EEG + music dataset of the labelled trials in a session store, with the
    stimulus of every row (see the module docstring).

    Raises
    ------
    DataError
        No labelled trial, or a stimulus that cannot be analysed.
    """
    from models.datasets import from_trials

    trials = store.labelled_trials(participants=participants, session_ids=session_ids)
    if not trials:
        raise DataError(f"store {store.path} holds no labelled trial to fuse")
    eeg = from_trials(trials, preset, keep_windows=keep_windows, cache_dir=cache_dir)
    used = sorted({int(t.session_id) for t in trials})
    protocols = {sid: store.session(sid).protocol or {} for sid in used}
    fused = fuse_music(eeg, trial_summaries(trials, protocols), trial_stimuli(trials, protocols))
    fused.meta["fusion"]["session_ids"] = used
    return fused
