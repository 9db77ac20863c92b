"""Helpers for the processing tests: the real eye-state recording and simulated trials."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from acquisition.sources.simulated import EpocSimulator

#: Rows of the UCI eye-state CSV that hold glitch values (0-based data rows).
EYE_STATE_GLITCH_ROWS = (898, 10386, 11509, 13179)


def load_eye_state(path: Path) -> NDArray[np.float64]:
    """The 14 EEG columns of the eye-state CSV, raw µV, shape (14980, 14)."""
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(14))


def simulated_trials(
    states: tuple[str, ...] = ("happy", "sad", "relaxing", "tense"),
    n_repeats: int = 4,
    trial_s: float = 30.0,
    seed: int = 0,
) -> list[tuple[str, NDArray[np.float64]]]:
    """Trials of one simulated session: each state ``n_repeats`` times, interleaved."""
    sim = EpocSimulator(seed=seed)
    trials = []
    for _ in range(n_repeats):
        for state in states:
            sim.set_state(state)
            trials.append((state, sim.generate(round(trial_s * 128))))
    return trials


def chunk_sizes(total: int, seed: int = 0, high: int = 40) -> list[int]:
    """Random chunk sizes (including 1) summing to ``total``."""
    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(int(min(rng.integers(1, high), total - sum(sizes))))
    return sizes
