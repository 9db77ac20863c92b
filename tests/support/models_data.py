"""Test data for the models area: simulated labelled trials, feature tables, DEAP files."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np

from acquisition.channels import SFREQ_HZ
from acquisition.sources.simulated import EpocSimulator
from acquisition.store.sqlite import LabelledTrial
from models.datasets import Dataset

STATES = ("happy", "sad", "relaxing", "tense")


def simulated_trials(n_per_state: int = 4, trial_s: float = 30.0, rest_s: float = 10.0,
                     seed: int = 0, subject: str = "sim01",
                     states: tuple[str, ...] = STATES, participant: str | None = None,
                     **simulator: float) -> list[LabelledTrial]:
    """Trials of the simulated headset, one known state per trial, as in a session.

    States are interleaved (happy, sad, relaxing, tense, happy, ...); each trial is
    followed by ``rest_s`` of neutral silence that is not part of any trial. The simulated
    participant is ``participant`` (default: the seed's own); ``simulator`` passes
    ``strength``, ``variability`` to :class:`EpocSimulator`.
    """
    sim = EpocSimulator(seed=seed, participant=participant, **simulator)  # type: ignore[arg-type]
    n_trial = int(trial_s * SFREQ_HZ)
    n_rest = int(rest_s * SFREQ_HZ)
    trials = []
    for k in range(n_per_state * len(states)):
        state = states[k % len(states)]
        sim.set_state(state)
        data = sim.generate(n_trial)
        sim.set_state("neutral")
        sim.generate(n_rest)
        trials.append(LabelledTrial(data=data, label=state, trial_id=f"{subject}:{k + 1}",
                                    subject=subject, sfreq_hz=SFREQ_HZ))
    return trials


def synthetic_dataset(n_trials: int = 16, rows_per_trial: int = 12, n_features: int = 6,
                      classes: tuple[str, ...] = STATES, effect: float = 1.0,
                      trial_offset: float = 1.0, n_subjects: int = 2, seed: int = 0) -> Dataset:
    """Feature rows grouped by trial: class effect plus a per-trial offset (which leaks)."""
    rng = np.random.default_rng(seed)
    X, y, g, s = [], [], [], []
    for t in range(n_trials):
        c = t % len(classes)
        mean = rng.normal(size=n_features) * trial_offset
        mean[c % n_features] += effect
        X.append(mean + 0.3 * rng.normal(size=(rows_per_trial, n_features)))
        y += [classes[c]] * rows_per_trial
        g += [f"t{t:02d}"] * rows_per_trial
        s += [f"s{(t // len(classes)) % n_subjects}"] * rows_per_trial
    return Dataset(np.concatenate(X), np.array(y), np.array(g), np.array(s),
                   [f"f{i}" for i in range(n_features)],
                   {"source": "synthetic", "preset": None, "channels": None, "sfreq_hz": None})


def write_feature_csv(path: Path, dataset: Dataset, extra: dict[str, list[str]] | None = None) -> Path:
    """Write ``dataset`` as a CSV with columns features..., ``label``, ``trial`` (+ extra)."""
    extra = extra or {}
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*dataset.feature_names, "label", "trial", *extra])
        for i in range(dataset.n_rows):
            assert dataset.groups is not None
            w.writerow([*(repr(float(v)) for v in dataset.X[i]), dataset.y[i], dataset.groups[i],
                        *(col[i] for col in extra.values())])
    return path


def write_deap_file(path: Path, n_trials: int = 4, n_samples: int = 384 + 8 * 128,
                    ratings: np.ndarray | None = None, seed: int = 0,
                    old_numpy_names: bool = True) -> Path:
    """A small file in DEAP's preprocessed Python format (dict of ``data`` and ``labels``).

    ``data`` is (n_trials, 40, n_samples) float64 in µV at 128 Hz: 32 EEG channels in
    DEAP's order, then 8 peripheral channels; the first 384 samples are the baseline
    (a +500 µV offset there, so a loader that keeps it is caught). ``labels`` is
    (n_trials, 4): valence, arousal, dominance, liking. With ``old_numpy_names`` the
    pickle names ``numpy.core.multiarray`` as the real (Python 2) files do.
    """
    rng = np.random.default_rng(seed)
    data = 10.0 * rng.standard_normal((n_trials, 40, n_samples))
    t = np.arange(n_samples) / 128.0
    data[:, :32, :] += 8.0 * np.sin(2 * np.pi * 10.0 * t)
    data[:, :, :384] += 500.0
    if ratings is None:
        ratings = np.array([[7.0, 7.0, 5.0, 5.0], [7.0, 2.0, 5.0, 5.0], [2.0, 7.0, 5.0, 5.0],
                            [2.0, 2.0, 5.0, 5.0]] * ((n_trials + 3) // 4))[:n_trials]
    blob = pickle.dumps({"data": data, "labels": np.asarray(ratings, dtype=np.float64)}, protocol=2)
    if old_numpy_names:
        blob = blob.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    path.write_bytes(blob)
    return path


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.getenv, ("HOME",))


def write_malicious_pickle(path: Path) -> Path:
    """A pickle that would call a function when loaded (must be refused)."""
    path.write_bytes(pickle.dumps({"data": _Evil(), "labels": np.zeros((1, 4))}, protocol=2))
    return path


def write_store(path: Path, participant: str = "P01", n_per_state: int = 2, trial_s: float = 12.0,
                rest_s: float = 4.0, seed: int = 0, bad_contact: dict[int, list[str]] | None = None) -> Path:
    """A session store holding one session of simulated, labelled listening trials.

    ``bad_contact`` maps a trial's index (0, 1, ...) to the electrodes stored as having
    had bad contact during it (the ``contact`` JSON a session writes, ``bad_channels``).
    """
    from acquisition.store.sqlite import SessionStore

    sim = EpocSimulator(seed=seed)
    n_trial, n_rest = int(trial_s * SFREQ_HZ), int(rest_s * SFREQ_HZ)
    t0 = 100.0
    with SessionStore(path) as store:
        sid = store.start_session(participant, {"name": "models-test"}, f"simulated:{seed}", {"kind": "simulated"})
        index = 0
        for k in range(n_per_state * len(STATES)):
            state = STATES[k % len(STATES)]
            for part_state, n in ((state, n_trial), ("neutral", n_rest)):
                sim.set_state(part_state)
                data = sim.generate(n)
                store.append_eeg(sid, data, t0 + (index + np.arange(n)) / SFREQ_HZ, index)
                if part_state == state:
                    bad = (bad_contact or {}).get(k)
                    tid = store.add_trial(sid, f"stim{k}", state, t0 + index / SFREQ_HZ,
                                          t0 + (index + n) / SFREQ_HZ, index, index + n,
                                          contact=None if bad is None else {"bad_channels": list(bad)})
                    store.set_trial_label(tid, state)
                index += n
        store.finish_session(sid)
    return path


def shuffled_trial_labels(trials: list[LabelledTrial], seed: int = 0) -> list[LabelledTrial]:
    """The trials with their labels permuted across trials (each trial keeps one label)."""
    rng = np.random.default_rng(seed)
    labels = [trials[i].label for i in rng.permutation(len(trials))]
    return [LabelledTrial(data=t.data, label=lab, trial_id=t.trial_id, subject=t.subject, sfreq_hz=t.sfreq_hz)
            for t, lab in zip(trials, labels, strict=True)]
