"""processing.quality: per-channel signal quality from the data (no Qt)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acquisition.channels import EPOC_CHANNELS
from acquisition.sources.simulated import EpocSimulator
from processing.quality import channel_quality

FS = 128.0


@pytest.fixture
def clean() -> np.ndarray:
    sim = EpocSimulator(seed=4, glitch_rate_hz=0.0)
    return sim.generate(4 * 128)


def test_simulated_headset_is_good(clean: np.ndarray) -> None:
    report = channel_quality(clean, FS)
    assert report.levels() == ["good"] * 14
    assert report.problems == {}
    assert all(5.0 < c.robust_sd_uv < 40.0 for c in report.channels)


def test_each_problem_is_found(clean: np.ndarray) -> None:
    x = clean.copy()
    t = np.arange(len(x)) / FS
    rng = np.random.default_rng(0)
    x[:, 0] = 4100.0 + rng.normal(0, 0.05, len(x))  # flat
    x[100, 1] = 7.0e5  # one glitch
    x[:, 2] += 60.0 * np.sin(2 * np.pi * 50.0 * t)  # strong mains
    x[:, 3] += rng.normal(0, 250.0, len(x))  # huge amplitude
    x[200:240, 4] = x[200, 4]  # stuck for 40 samples
    x[:, 5] += 12.0 * np.sin(2 * np.pi * 60.0 * t)  # some 60 Hz mains
    report = channel_quality(x, FS).by_name()
    assert "flat" in report["AF3"].problems and report["AF3"].level == "bad"
    assert report["F7"].problems == ("glitch",) and report["F7"].n_glitches == 1 and report["F7"].level == "poor"
    assert "mains" in report["F3"].problems and report["F3"].level in ("poor", "bad")
    assert "amplitude" in report["FC5"].problems and report["FC5"].level == "poor"
    assert "saturation" in report["T7"].problems and report["T7"].level == "bad"
    assert report["P7"].problems == ("mains",) and report["P7"].level == "fair"
    assert [report[c].level for c in EPOC_CHANNELS[6:]] == ["good"] * 8


def test_nan_counts_as_glitch_and_short_window_is_no_data(clean: np.ndarray) -> None:
    x = clean.copy()
    x[10:13, 7] = np.nan
    report = channel_quality(x, FS).by_name()
    assert report["O2"].n_glitches == 3 and report["O2"].level == "bad"
    assert channel_quality(clean[:64], FS).levels() == ["no data"] * 14


def test_uci_glitch_rows_are_flagged(eye_state_csv: Path) -> None:
    data = np.loadtxt(eye_state_csv, delimiter=",", skiprows=1)[:, :14]
    huge = np.flatnonzero((np.abs(data - np.median(data, axis=0)) > 1e4).any(axis=1))
    assert len(huge) >= 1
    around = channel_quality(data[huge[0] - 200: huge[0] + 200], FS)
    assert "glitch" in around.problems
    assert sum(level != "good" for level in around.levels()) >= 1
    quiet = channel_quality(data[:512], FS)
    assert "glitch" not in quiet.problems


def test_bad_shape_is_refused(clean: np.ndarray) -> None:
    with pytest.raises(ValueError, match="shape"):
        channel_quality(clean[:, :13], FS)
    with pytest.raises(ValueError, match="sfreq_hz"):
        channel_quality(clean, 0.0)
