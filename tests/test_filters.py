"""Causal and offline filters: chunk invariance, measured frequency response, DC start."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import sosfreqz

from acquisition.errors import DataError
from processing.filters import CausalFilter, design_sos
from tests.support.processing import chunk_sizes

FS = 128.0


def _gain_db(sos: np.ndarray, freqs_hz: np.ndarray) -> np.ndarray:
    _, h = sosfreqz(sos, worN=freqs_hz, fs=FS)
    return 20 * np.log10(np.maximum(np.abs(h), 1e-30))


def _sine_gain_db(f_hz: float, **kw: object) -> float:
    """Steady-state gain measured by filtering a 60 s sine (on a 4200 µV offset)."""
    t = np.arange(int(60 * FS)) / FS
    x = 4200.0 + 50.0 * np.sin(2 * np.pi * f_hz * t)
    y = CausalFilter(FS, 1, **kw).process(x[:, None])[:, 0]  # type: ignore[arg-type]
    tail = slice(int(30 * FS), None)
    rms_in = 50.0 / np.sqrt(2)
    return float(20 * np.log10(np.sqrt(np.mean(y[tail] ** 2)) / rms_in))


def test_chunked_equals_one_shot() -> None:
    rng = np.random.default_rng(1)
    x = 4200.0 + np.cumsum(rng.normal(0, 5, (5000, 14)), axis=0) + rng.normal(0, 20, (5000, 14))
    whole = CausalFilter(FS, 14, notch_hz=50.0).process(x)
    f = CausalFilter(FS, 14, notch_hz=50.0)
    parts = []
    start = 0
    for n in [0, 1, *chunk_sizes(len(x) - 1, seed=2, high=300)]:
        parts.append(f.process(x[start:start + n]))
        start += n
    chunked = np.concatenate(parts)
    assert chunked.shape == x.shape
    assert np.max(np.abs(chunked - whole)) < 1e-10


def test_response_measured_with_sosfreqz() -> None:
    sos = design_sos(FS, (1.0, 50.0), notch_hz=60.0)
    assert _gain_db(sos, np.array([0.3]))[0] < -35.0
    assert _gain_db(sos, np.array([60.0]))[0] < -60.0
    passband = _gain_db(sos, np.linspace(2.0, 45.0, 500))
    assert np.all(np.abs(passband) < 1.0), passband.min()


def test_response_measured_with_sines() -> None:
    assert _sine_gain_db(0.3) < -35.0
    assert _sine_gain_db(60.0, notch_hz=60.0) < -50.0
    for f in (2.0, 10.0, 20.0, 45.0):
        assert abs(_sine_gain_db(f, notch_hz=60.0)) < 1.0, f


def test_notch_alone_removes_mains() -> None:
    assert abs(_sine_gain_db(60.0, band_hz=(1.0, None))) < 0.5  # without notch it passes
    assert _sine_gain_db(60.0, band_hz=(1.0, None), notch_hz=60.0) < -30.0
    assert _sine_gain_db(50.0, band_hz=(1.0, None), notch_hz=50.0) < -30.0


def test_dc_offset_does_not_ring() -> None:
    x = np.full((1280, 14), 4200.0) + np.linspace(0, 300, 14)
    y = CausalFilter(FS, 14).process(x)
    assert np.max(np.abs(y)) < 1e-6
    # a filter started from zero state would ring by thousands of µV
    from scipy.signal import sosfilt

    assert np.max(np.abs(sosfilt(design_sos(FS), x, axis=0))) > 1000


def test_reset_restarts_from_next_sample() -> None:
    rng = np.random.default_rng(3)
    a = 4200 + rng.normal(0, 10, (300, 2))
    b = 3900 + rng.normal(0, 10, (300, 2))
    f = CausalFilter(FS, 2)
    f.process(a)
    f.reset()
    assert np.allclose(f.process(b), CausalFilter(FS, 2).process(b), atol=1e-12)


def test_bad_input_is_one_line_data_error() -> None:
    f = CausalFilter(FS, 14)
    good = 4200 + np.random.default_rng(0).normal(0, 5, (64, 14))
    ref = CausalFilter(FS, 14)
    bad = good.copy()
    bad[5, 3] = np.nan
    f.process(good)
    ref.process(good)
    with pytest.raises(DataError, match="NaN or inf") as exc:
        f.process(bad)
    assert "\n" not in str(exc.value)
    with pytest.raises(DataError, match="NaN or inf"):
        f.process(np.where(bad == bad, bad, np.inf))
    np.testing.assert_array_equal(f.process(good), ref.process(good))  # state untouched
    with pytest.raises(DataError, match="14 channels"):
        f.process(good[:, :13])
    with pytest.raises(DataError, match="2-D"):
        f.process(good[:, 0])
    with pytest.raises(DataError, match="below Nyquist"):
        CausalFilter(FS, 14, band_hz=(1.0, 70.0))
    with pytest.raises(DataError, match="low < high"):
        CausalFilter(FS, 14, band_hz=(30.0, 20.0))
    with pytest.raises(DataError, match="notch_hz"):
        CausalFilter(FS, 14, notch_hz=80.0)
    with pytest.raises(DataError, match="sfreq_hz"):
        CausalFilter(0, 14)
