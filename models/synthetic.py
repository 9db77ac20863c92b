"""A synthetic band-power table with the structure of a real EEG emotion study.

Real emotion tables are hard in three ways a plain random table is not: rows are
overlapping windows (neighbours share samples, so they are correlated), every trial has
its own offset (a classifier can recognise the trial instead of the emotion), and every
subject has their own baseline and their own strength of response. :func:`emotion_table`
builds such a table with each difficulty a parameter; the benchmark
(``benchmarks/bench_evaluation.py``) and the tests use it, so there is one copy.
"""

from __future__ import annotations

import numpy as np

from acquisition.errors import DataError
from models.datasets import Dataset

#: The four felt emotions of the EEG paper.
EMOTIONS: tuple[str, ...] = ("happy", "sad", "relaxing", "tense")


def emotion_table(n_subjects: int = 28, trials_per_class: int = 4, windows_per_trial: tuple[int, ...] = (8, 7, 7, 7),
                  n_features: int = 56, effect: float = 0.6, subject_sd: float = 1.0, trial_sd: float = 0.5,
                  response_sd: float = 0.3, overlap: float = 0.5, seed: int = 0,
                  classes: tuple[str, ...] = EMOTIONS) -> Dataset:
    """Rows of band-power-like features grouped by trial and subject.

    Each subject hears ``trials_per_class`` trials of every class; trial ``k`` of a
    subject is cut into ``windows_per_trial[k % len(windows_per_trial)]`` windows. The
    defaults give the shape of the real EPOC+ table the evaluation issue measured:
    28 subjects x 16 trials x 7.25 windows = 3,248 rows, 56 features, 4 classes.

    A row is ``subject offset + trial offset + response * class pattern + window noise``:

    * the class pattern is one fixed random direction per class, of norm ``effect`` per
      feature (0: no signal at all);
    * each subject scales it by ``1 + response_sd * N(0, 1)`` (some respond weakly) and
      has a baseline of SD ``subject_sd`` per feature;
    * each trial adds an offset of SD ``trial_sd`` (what a random split can memorise);
    * window noise is a moving average over neighbouring windows with weight ``overlap``
      (0.5: windows that share half their samples share half their noise).

    Returns
    -------
    Dataset
        ``groups`` are trial ids (``s03-t07``), ``subjects`` subject ids (``s03``); the
        features are named ``f00`` ...; ``meta["source"]`` is ``"synthetic"``.

    Raises
    ------
    DataError
        Fewer than 1 subject, trial or window, fewer than 2 classes, or ``overlap``
        outside [0, 1).
    """
    if n_subjects < 1 or trials_per_class < 1 or not windows_per_trial or min(windows_per_trial) < 1:
        raise DataError(f"emotion_table needs >= 1 subject, trial and window, got {n_subjects}, "
                        f"{trials_per_class}, {windows_per_trial}")
    if len(classes) < 2:
        raise DataError(f"classes must hold at least 2 names, got {classes!r}")
    if not 0.0 <= overlap < 1.0:
        raise DataError(f"overlap must be in [0, 1), got {overlap!r}")
    rng = np.random.default_rng(seed)
    patterns = rng.normal(size=(len(classes), n_features))
    patterns *= effect / np.sqrt(np.mean(patterns**2, axis=1, keepdims=True))
    rows: list[np.ndarray] = []
    y: list[str] = []
    groups: list[str] = []
    subjects: list[str] = []
    n_trials = trials_per_class * len(classes)
    for s in range(n_subjects):
        baseline = rng.normal(scale=subject_sd, size=n_features)
        response = 1.0 + response_sd * rng.normal()
        order = rng.permutation(n_trials) % len(classes)  # each class trials_per_class times
        for k, c in enumerate(order):
            n_win = windows_per_trial[k % len(windows_per_trial)]
            e = rng.normal(size=(n_win + 1, n_features))
            noise = (1.0 - overlap) * e[1:] + overlap * e[:-1]
            noise /= np.sqrt((1.0 - overlap) ** 2 + overlap**2)
            trial = rng.normal(scale=trial_sd, size=n_features)
            rows.append(baseline + trial + response * patterns[c] + noise)
            y += [classes[c]] * n_win
            groups += [f"s{s:02d}-t{k:02d}"] * n_win
            subjects += [f"s{s:02d}"] * n_win
    return Dataset(
        X=np.concatenate(rows), y=np.asarray(y), groups=np.asarray(groups), subjects=np.asarray(subjects),
        feature_names=[f"f{i:02d}" for i in range(n_features)],
        meta={"source": "synthetic", "preset": None, "channels": None, "sfreq_hz": None, "domain": "synthetic",
              "effect": effect, "seed": seed},
    ).validate()
