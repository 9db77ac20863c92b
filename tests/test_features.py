"""Features: names, values against definitions and a per-frame loop, presets, bad input."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from acquisition.channels import EPOC_CHANNELS
from acquisition.errors import DataError
from processing.features import FrameResolutionWarning, extract_features, feature_names
from processing.presets import PRESETS, FeaturePreset, get_preset

FS = 128.0
WIN = 512  # 4 s at 128 Hz


def _noise(n_win: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 10.0, (n_win, WIN, 14))


def _loop_stats(window: np.ndarray, frame_len: int, hop: int, detrend: bool) -> np.ndarray:
    """The paper's statistics written the plain way: one frame at a time."""
    out = []
    ham = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(frame_len) / (frame_len - 1))
    for ch in range(window.shape[1]):
        per_frame = []
        for start in range(0, window.shape[0] - frame_len + 1, hop):
            frame = window[start:start + frame_len, ch]
            if detrend:
                frame = frame - frame.mean()
            mag = np.abs(np.fft.fft(frame * ham))
            per_frame.append([np.std(mag), mag.max(), mag.min(), mag.mean(), np.sqrt(np.mean(mag**2))])
        out.append(np.array(per_frame))
    arr = np.stack(out)  # (C, F, S)
    agg = np.stack([arr.mean(axis=1), arr.std(axis=1)], axis=-1)  # (C, S, 2)
    return agg.transpose(1, 2, 0).ravel()  # stat, agg, channel


def test_names_match_columns_and_are_unique() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrameResolutionWarning)  # default must not warn
        X = extract_features(_noise(), FS, "default")
    assert X.shape == (3, len(feature_names("default")))
    with pytest.warns(FrameResolutionWarning):
        X = extract_features(_noise(), FS, "paper")
    assert X.shape == (3, len(feature_names("paper")))
    for name in PRESETS:
        assert len(set(feature_names(name))) == len(feature_names(name))
    assert len(feature_names("default")) == 5 * 14 * 2 + 5 * 4
    assert len(feature_names("paper")) == 5 * 2 * 14
    assert "asym_alpha_AF4-AF3" in feature_names("default")
    assert feature_names("paper")[:2] == ["spec_std_mean_AF3", "spec_std_mean_F7"]


def test_paper_statistics_equal_a_per_frame_loop() -> None:
    w = _noise(2, seed=4) + 3.0
    with pytest.warns(FrameResolutionWarning, match=r"4\.0 samples at 128 Hz"):
        X = extract_features(w, FS, "paper")
    np.testing.assert_allclose(X[1], _loop_stats(w[1], 4, 2, detrend=False), rtol=1e-9, atol=1e-9)
    p = replace(get_preset("default"), name="stats1s", features=("stats",))
    X = extract_features(w, FS, p)
    np.testing.assert_allclose(X[0], _loop_stats(w[0], 128, 64, detrend=True), rtol=1e-9, atol=1e-9)


def test_band_power_of_a_sine_and_of_white_noise() -> None:
    t = np.arange(WIN) / FS
    p = replace(get_preset("default"), name="all", features=("logpow", "relpow", "de", "asym"))
    names = feature_names(p)
    amp = 20.0
    w = np.zeros((1, WIN, 14)) + amp * np.sin(2 * np.pi * 10.0 * t)[None, :, None]
    X = dict(zip(names, extract_features(w, FS, p)[0], strict=True))
    assert X["logpow_alpha_O1"] == pytest.approx(np.log10(amp**2 / 2), abs=0.02)
    assert X["relpow_alpha_O1"] > 0.999
    assert X["de_alpha_O1"] == pytest.approx(0.5 * np.log(2 * np.pi * np.e * 10 ** X["logpow_alpha_O1"]))
    sigma = 10.0
    noise = np.random.default_rng(5).normal(0, sigma, (20, WIN, 14))
    bp = 10 ** extract_features(noise, FS, p)[:, : 5 * 14]
    total = bp.reshape(20, 5, 14).sum(axis=1).mean()
    assert total == pytest.approx(sigma**2 * 44 / 64, rel=0.05)  # 1-45 Hz of 0-64 Hz


def test_asymmetry_is_log_ratio_right_over_left() -> None:
    w = _noise(1, seed=6)
    w[..., EPOC_CHANNELS.index("AF4")] = 2.0 * w[..., EPOC_CHANNELS.index("AF3")]
    X = dict(zip(feature_names("default"), extract_features(w, FS, "default")[0], strict=True))
    for band in ("delta", "theta", "alpha", "beta", "gamma"):
        assert X[f"asym_{band}_AF4-AF3"] == pytest.approx(np.log(4.0), abs=1e-9)


def test_flat_channel_gives_finite_features() -> None:
    w = _noise(1)
    w[..., 3] = 0.0
    assert np.isfinite(extract_features(w, FS, "default")).all()


def test_channel_subset_drops_missing_pairs() -> None:
    chans = ("AF3", "AF4", "O1")
    X = extract_features(_noise()[..., :3], FS, "default", channels=chans)
    names = feature_names("default", chans)
    assert X.shape[1] == len(names) == 5 * 3 * 2 + 5
    assert not any("F4-F3" in n for n in names)


def test_presets_are_data() -> None:
    for name, p in PRESETS.items():
        assert get_preset(name) is p
        assert get_preset(p.to_dict()) == p
        assert p.window_s > 0 and p.step_s > 0
    paper = get_preset("paper")
    assert paper.frame_s == 4 / 128 and paper.frame_overlap == 0.5
    from processing.features import FrameResolutionWarning, frame_geometry

    with pytest.warns(FrameResolutionWarning, match="no EEG band is resolved"):
        frame, hop = frame_geometry(paper, 128.0)
    assert (frame, hop) == (4, 2) and hop / frame == 0.5  # exactly 50% overlap, as the paper says
    with pytest.raises(TypeError):
        PRESETS["mine"] = get_preset("default")  # type: ignore[index]
    with pytest.raises(DataError) as exc:
        get_preset("x")
    assert str(exc.value) == "unknown feature preset 'x': choose default, paper"


def test_bad_input() -> None:
    w = _noise(1)
    bad = w.copy()
    bad[0, 10, 2] = np.nan
    with pytest.raises(DataError, match="NaN or inf"):
        extract_features(bad, FS, "default")
    with pytest.raises(DataError, match="13 channels"):
        extract_features(w[..., :13], FS, "default")
    with pytest.raises(DataError, match="sfreq mismatch"):
        extract_features(w, 256.0, "default")
    with pytest.raises(DataError, match="shorter than a frame"):
        extract_features(w[:, :100], FS, "default")
    with pytest.raises(DataError, match="shorter than a frame"):
        FeaturePreset(name="tiny", window_s=0.5, frame_s=1.0)
    with pytest.raises(DataError, match="holds no FFT bin"), pytest.warns(FrameResolutionWarning):
        extract_features(w, FS, replace(get_preset("paper"), name="pb", features=("de",)))
    with pytest.raises(DataError, match="unknown feature kind 'psd'"):
        FeaturePreset(name="k", features=("psd",))
    with pytest.raises(DataError, match="frame_overlap"):
        FeaturePreset(name="o", frame_overlap=1.0)
    with pytest.raises(DataError) as e:
        extract_features(bad, FS, "default")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["default", "paper"])
def test_shared_frames_equal_per_window_extraction(name: str) -> None:
    from numpy.lib.stride_tricks import sliding_window_view

    from processing.features import segment_window_features

    x = np.random.default_rng(8).normal(0, 10, (2000, 14))
    p = get_preset(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FrameResolutionWarning)
        for starts in (np.arange(0, 2000 - WIN + 1, 256), np.array([0, 3, 700, 1401])):  # aligned, not
            windows = sliding_window_view(x, WIN, axis=0)[starts].transpose(0, 2, 1)
            np.testing.assert_allclose(
                segment_window_features(x, starts, WIN, FS, p, EPOC_CHANNELS),
                extract_features(windows, FS, p), rtol=1e-10, atol=1e-10,
            )


def test_preset_survives_json() -> None:
    import json

    p = replace(get_preset("default"), name="notch50", notch_hz=50.0)
    assert get_preset(json.loads(json.dumps(p.to_dict()))) == p
    with pytest.raises(DataError, match="unknown key 'colour'"):
        get_preset({**p.to_dict(), "colour": "red"})
