"""Window features: framing, Hamming, FFT, spectral statistics, band powers, differential
entropy and frontal asymmetry — vectorised over windows, frames and channels.

Each window (``n_samp`` samples of filtered µV) is cut into frames of ``frame_s`` with
``frame_overlap``; each frame is (optionally) demeaned, multiplied by a Hamming window
(``0.54 - 0.46 cos(2 pi n / (N - 1))``, the paper's equation 1) and transformed with a
real FFT. From the frame spectra:

* ``stats``: per frame, the std, max, min, mean and RMS of the N-point magnitude
  spectrum ``|X[k]|, k = 0..N-1`` (the paper's statistics), then their mean and standard
  deviation over the frames of the window.
* band power ``P_b`` (µV²): the Welch estimate (one-sided periodogram averaged over the
  frames, Hamming-normalised) summed over the FFT bins with ``low <= f < high``.
* ``logpow``: ``log10 P_b``; ``relpow``: ``P_b / sum_b P_b``;
  ``de``: differential entropy of a Gaussian with that variance, ``0.5 ln(2 pi e P_b)``;
  ``asym``: ``ln P_b(right) - ln P_b(left)`` for each pair of
  :data:`acquisition.channels.ASYMMETRY_PAIRS` present in ``channels``.

Columns follow the preset's feature order; :func:`feature_names` names them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from acquisition.channels import ASYMMETRY_PAIRS, EPOC_CHANNELS
from acquisition.errors import DataError
from processing.presets import FeaturePreset, get_preset

#: Smallest band power used under a logarithm, µV² (a flat channel gives 0).
POWER_FLOOR_UV2 = 1e-12
#: Frames shorter than this cannot separate the EEG bands; a warning says so.
MIN_RESOLVING_FRAME_S = 0.5


class FrameResolutionWarning(UserWarning):
    """A preset's frames are too short to resolve EEG frequency bands."""


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def frame_geometry(preset: FeaturePreset, sfreq_hz: float, warn: bool = True) -> tuple[int, int]:
    """Frame length and hop in samples for a preset at a rate.

    Warns (:class:`FrameResolutionWarning`, once per process) when a frame is shorter
    than :data:`MIN_RESOLVING_FRAME_S`, e.g. the ``paper`` preset's 25 ms (3.2 samples at
    128 Hz, bins 42.7 Hz apart); ``warn=False`` only computes.
    """
    frame_len = max(1, _round_half_up(preset.frame_s * sfreq_hz))
    hop = max(1, _round_half_up(preset.frame_s * (1.0 - preset.frame_overlap) * sfreq_hz))
    if warn and preset.frame_s < MIN_RESOLVING_FRAME_S:
        warnings.warn(
            f"preset {preset.name!r}: a {preset.frame_s * 1000:g} ms frame is "
            f"{preset.frame_s * sfreq_hz:.1f} samples at {sfreq_hz:g} Hz (FFT bins "
            f"{sfreq_hz / frame_len:.1f} Hz apart): no EEG band is resolved; use it only to "
            "replicate the paper",
            FrameResolutionWarning,
            stacklevel=1,  # one call site, so Python shows it once per process
        )
    return frame_len, hop


def _pairs(channels: tuple[str, ...]) -> list[tuple[int, int, str, str]]:
    """(right index, left index, right name, left name) of the asymmetry pairs present."""
    out = []
    for left, right in ASYMMETRY_PAIRS:
        if left in channels and right in channels:
            out.append((channels.index(right), channels.index(left), right, left))
    return out


def feature_names(preset: str | FeaturePreset, channels: tuple[str, ...] | list[str] = EPOC_CHANNELS) -> list[str]:
    """Names of the columns :func:`extract_features` returns, in order.

    Patterns: ``spec_{stat}_{mean|sd}_{ch}``, ``logpow_{band}_{ch}``,
    ``relpow_{band}_{ch}``, ``de_{band}_{ch}``, ``asym_{band}_{right}-{left}``.
    """
    p = get_preset(preset)
    chans = tuple(channels)
    names: list[str] = []
    for kind in p.features:
        if kind == "stats":
            names += [f"spec_{s}_{agg}_{ch}" for s in p.stats for agg in ("mean", "sd") for ch in chans]
        elif kind == "asym":
            names += [f"asym_{b}_{r}-{lft}" for b in p.band_names for _, _, r, lft in _pairs(chans)]
        else:
            names += [f"{kind}_{b}_{ch}" for b in p.band_names for ch in chans]
    return names


def _check_windows(windows: ArrayLike, n_channels: int) -> NDArray[np.float64]:
    w = np.asarray(windows, dtype=np.float64)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise DataError(f"windows must be 3-D (n_windows, n_samples, n_channels), got shape {w.shape}")
    if w.shape[2] != n_channels:
        raise DataError(f"windows have {w.shape[2]} channels but {n_channels} channel names were given")
    if not np.isfinite(w).all():
        raise DataError("windows hold NaN or inf: data must be finite")
    return w


def band_bins(preset: FeaturePreset, sfreq_hz: float, frame_len: int) -> NDArray[np.float64]:
    """Matrix (n_bins, n_bands) of 0/1 selecting the rfft bins of each band.

    Raises
    ------
    DataError
        When a band holds no FFT bin (frames too short or band above Nyquist).
    """
    freqs = np.fft.rfftfreq(frame_len, d=1.0 / sfreq_hz)
    sel = np.stack([(freqs >= lo) & (freqs < hi) for _, lo, hi in preset.bands], axis=1)
    empty = np.flatnonzero(~sel.any(axis=0))
    if len(empty):
        name, lo, hi = preset.bands[empty[0]]
        raise DataError(
            f"preset {preset.name!r}: band {name} ({lo:g}-{hi:g} Hz) holds no FFT bin with "
            f"frame_s={preset.frame_s:g} at {sfreq_hz:g} Hz (bins {sfreq_hz / frame_len:.2f} Hz apart): "
            "use longer frames"
        )
    return sel.astype(np.float64)


def extract_features(
    windows: ArrayLike,
    sfreq_hz: float,
    preset: str | FeaturePreset,
    channels: tuple[str, ...] | list[str] = EPOC_CHANNELS,
) -> NDArray[np.float64]:
    """Features of filtered windows.

    Parameters
    ----------
    windows : array, shape (n_windows, n_samples, n_channels)
        Band-passed signal in µV (a single 2-D window is accepted too). ``n_samples``
        must be ``window_s * sfreq_hz`` of the preset (checks the rate).
    sfreq_hz : float
        Sampling rate in Hz.
    preset : str or FeaturePreset
        Feature settings.
    channels : sequence of str
        Channel names of the last axis (asymmetry pairs are looked up by name).

    Returns
    -------
    ndarray, shape (n_windows, n_features)

    Raises
    ------
    DataError
        NaN/inf, wrong shape or channel count, a window of the wrong length for the
        preset at this rate, a window shorter than a frame, or a band with no FFT bin.
    """
    p = get_preset(preset)
    chans = tuple(channels)
    fs = float(sfreq_hz)
    if not (math.isfinite(fs) and fs > 0):
        raise DataError(f"sfreq_hz must be a positive number, got {sfreq_hz!r}")
    w = _check_windows(windows, len(chans))
    n_win, n_samp, _ = w.shape
    expected = _round_half_up(p.window_s * fs)
    frame_len, hop = frame_geometry(p, fs)
    if n_samp < frame_len:
        raise DataError(
            f"a window of {n_samp} samples is shorter than a frame of {frame_len} samples "
            f"(frame_s={p.frame_s:g} at {fs:g} Hz)"
        )
    if n_samp != expected:
        raise DataError(
            f"windows hold {n_samp} samples but preset {p.name!r} has window_s={p.window_s:g} "
            f"= {expected} samples at sfreq_hz={fs:g}: sfreq mismatch?"
        )
    plan = _plan(p, fs, chans, frame_len, hop)
    if n_win == 0:
        return np.zeros((0, plan.n_features))
    frames = sliding_window_view(w, frame_len, axis=1)[:, ::hop]  # (W, F, C, L), a view
    power, stats = _frame_measures(frames, p, plan)
    return _window_features(power, stats, p, plan)


class WindowFeaturizer:
    """Features of the window held in one fixed array, recomputed on demand.

    For a live extractor that keeps its latest window in place: the frames are a view
    of ``window`` and the preset's plan is built once, so each call does only the FFT and
    the aggregation. Equal to :func:`extract_features` on the same window (the same
    functions compute both); the array must be updated in place and hold finite values.

    Parameters
    ----------
    window : ndarray, shape (n_samples, n_channels), float64
        The array the caller keeps its window in.
    sfreq_hz, preset, channels
        As for :func:`extract_features`.
    """

    def __init__(self, window: NDArray[np.float64], sfreq_hz: float, preset: str | FeaturePreset,
                 channels: tuple[str, ...] | list[str] = EPOC_CHANNELS) -> None:
        p = get_preset(preset)
        fs = float(sfreq_hz)
        chans = tuple(channels)
        if window.ndim != 2 or window.shape[1] != len(chans) or window.dtype != np.float64:
            raise DataError(f"window must be a float64 array (n_samples, {len(chans)}), got "
                            f"{window.dtype} {window.shape}")
        frame_len, hop = frame_geometry(p, fs)
        expected = _round_half_up(p.window_s * fs)
        if window.shape[0] != expected or expected < frame_len:
            raise DataError(f"window holds {window.shape[0]} samples but preset {p.name!r} has "
                            f"window_s={p.window_s:g} = {expected} samples at sfreq_hz={fs:g}")
        self.preset = p
        self._plan = _plan(p, fs, chans, frame_len, hop)
        self._frames = sliding_window_view(window[None], frame_len, axis=1)[:, ::hop]  # a view

    def __call__(self) -> NDArray[np.float64]:
        """Features of the window as it is now, shape (1, n_features)."""
        power, stats = _frame_measures(self._frames, self.preset, self._plan)
        return _window_features(power, stats, self.preset, self._plan)


def segment_window_features(
    filtered: NDArray[np.float64],
    starts: NDArray[np.int64],
    window_len: int,
    sfreq_hz: float,
    preset: FeaturePreset,
    channels: tuple[str, ...],
) -> NDArray[np.float64]:
    """Features of the windows ``filtered[s:s + window_len]`` for ``s`` in ``starts``.

    Equal (to rounding) to :func:`extract_features` on those windows, but each frame's
    spectrum is computed once even where windows overlap, when every start is a multiple
    of the frame hop; otherwise it cuts the windows and calls :func:`extract_features`.
    """
    fs = float(sfreq_hz)
    frame_len, hop = frame_geometry(preset, fs)
    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) == 0 or np.any(starts % hop) or window_len < frame_len:
        windows = sliding_window_view(filtered, window_len, axis=0)[starts].transpose(0, 2, 1)
        return extract_features(windows, fs, preset, channels)
    plan = _plan(preset, fs, tuple(channels), frame_len, hop)
    if window_len != _round_half_up(preset.window_s * fs):
        raise DataError(f"window_len={window_len} does not match window_s={preset.window_s:g} at {fs:g} Hz")
    frames_per_window = (window_len - frame_len) // hop + 1
    n_frames = (int(starts.max()) + window_len - frame_len) // hop + 1
    frames = sliding_window_view(filtered, frame_len, axis=0)[::hop][None, :n_frames]  # (1, F, C, L)
    power, stats = _frame_measures(frames, preset, plan)
    first = starts // hop
    # (W, F_w, C, K) views of the shared frames
    power_w = sliding_window_view(power[0], frames_per_window, axis=0)[first].transpose(0, 3, 1, 2)
    stats_w = (
        None if stats is None
        else sliding_window_view(stats[0], frames_per_window, axis=1)[:, first].transpose(1, 0, 3, 2)
    )
    return _window_features(power_w, stats_w, preset, plan)


def _frame_measures(
    frames: NDArray[np.float64], p: FeaturePreset, plan: _Plan
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Per-frame power spectrum (W, F, C, K) and, if asked, statistics (W, S, F, C)."""
    if p.frame_detrend:
        tapered = np.array(frames)  # contiguous copy: in-place ops on it are fast
        tapered -= tapered.mean(axis=-1, keepdims=True)
        tapered *= plan.hamming
    else:
        tapered = frames * plan.hamming
    spectra = np.fft.rfft(tapered, axis=-1)
    del tapered
    power = np.square(spectra.real)
    power += np.square(spectra.imag)
    del spectra
    stats = _spectral_stats(power, plan.weight, len(plan.hamming), p.stats) if "stats" in p.features else None
    return power, stats


def _window_features(
    power: NDArray[np.float64], stats: NDArray[np.float64] | None, p: FeaturePreset, plan: _Plan
) -> NDArray[np.float64]:
    """Aggregate per-frame measures (W, F, ...) over the frames of each window."""
    n_win = len(power)
    parts: list[NDArray[np.float64]] = []
    band_power: NDArray[np.float64] | None = None
    for kind in p.features:
        if kind == "stats":
            assert stats is not None
            agg = np.stack([stats.mean(axis=2), stats.std(axis=2)], axis=2)  # (W, S, 2, C)
            parts.append(agg.reshape(n_win, -1))
            continue
        if band_power is None:
            band_power = _band_power(power, plan)  # (W, B, C)
        if kind == "logpow":
            parts.append(np.log10(band_power).reshape(n_win, -1))
        elif kind == "relpow":
            parts.append((band_power / band_power.sum(axis=1, keepdims=True)).reshape(n_win, -1))
        elif kind == "de":
            parts.append((0.5 * np.log(2 * np.pi * np.e * band_power)).reshape(n_win, -1))
        elif kind == "asym":
            log_p = np.log(band_power)
            parts.append((log_p[:, :, plan.right] - log_p[:, :, plan.left]).reshape(n_win, -1))
    out = np.concatenate(parts, axis=1)
    assert out.shape[1] == plan.n_features
    return out


@dataclass(frozen=True)
class _Plan:
    """Everything about a (preset, rate, channels) that does not depend on the data."""

    hamming: NDArray[np.float64]
    weight: NDArray[np.float64]  # count of each rfft bin in the N-point spectrum (1 or 2)
    psd_scale: NDArray[np.float64]  # per bin: weight / (sfreq * sum(hamming**2))
    bins: NDArray[np.float64] | None  # (K, B) band selection times the bin width
    right: list[int]
    left: list[int]
    n_features: int


@lru_cache(maxsize=32)
def _plan(p: FeaturePreset, fs: float, chans: tuple[str, ...], frame_len: int, hop: int) -> _Plan:
    ham = np.hamming(frame_len)
    n_bins = frame_len // 2 + 1
    weight = np.full(n_bins, 2.0)
    weight[0] = 1.0
    if frame_len % 2 == 0:
        weight[-1] = 1.0
    needs_bands = any(k in p.features for k in ("logpow", "relpow", "de", "asym"))
    bins = band_bins(p, fs, frame_len) * (fs / frame_len) if needs_bands else None
    pairs = _pairs(chans)
    return _Plan(
        hamming=ham,
        weight=weight,
        psd_scale=weight / (fs * float(np.sum(ham**2))),
        bins=bins,
        right=[r for r, _, _, _ in pairs],
        left=[lft for _, lft, _, _ in pairs],
        n_features=len(feature_names(p, chans)),
    )


def _spectral_stats(
    power: NDArray[np.float64], weight: NDArray[np.float64], frame_len: int, stats: tuple[str, ...]
) -> NDArray[np.float64]:
    """(W, S, F, C): per-frame statistics of |X| over the N bins of the full spectrum."""
    mag = np.sqrt(power)
    mean = (mag @ weight) / frame_len  # (W, F, C)
    mean_sq = (power @ weight) / frame_len
    per_frame = {
        "mean": lambda: mean,
        "rms": lambda: np.sqrt(mean_sq),
        "std": lambda: np.sqrt(np.maximum(mean_sq - mean**2, 0.0)),
        "max": lambda: mag.max(axis=-1),
        "min": lambda: mag.min(axis=-1),
    }
    return np.stack([per_frame[s]() for s in stats], axis=1)


def _band_power(power: NDArray[np.float64], plan: _Plan) -> NDArray[np.float64]:
    """(W, B, C) band power in µV² from the Welch average of the frames."""
    assert plan.bins is not None
    psd = power.mean(axis=1) * plan.psd_scale  # (W, C, K), µV²/Hz
    bp = psd @ plan.bins  # (W, C, B)
    return np.maximum(bp, POWER_FLOOR_UV2).transpose(0, 2, 1)
