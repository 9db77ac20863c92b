"""Per-channel signal quality computed from the data alone (pure numpy).

The head map of the GUI colours each electrode by :func:`channel_quality`. Four problems
are looked for in a window of raw samples (µV, with the EPOC DC offset):

* **flat**: the channel barely moves (robust SD below ``flat_uv``), as with a dry or
  disconnected electrode or a stuck amplifier;
* **glitch / saturation**: single samples jump far from the rest (the huge values of the
  UCI eye-state recording), or a run of samples sits at the same extreme value (clipping);
* **mains**: 50 or 60 Hz power is a large share of the EEG-band power (poor contact
  picks up the mains);
* **amplitude**: the robust amplitude is far larger than EEG (movement, loose contact).

Each channel gets a level (``good``, ``fair``, ``poor``, ``bad``) and the list of
problems found; ``no data`` when the window is too short to judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from acquisition.channels import EPOC_CHANNELS, QUALITY_LEVELS

LEVELS: tuple[str, ...] = QUALITY_LEVELS
"""Quality levels, best first; ``no data`` when there was too little to judge (the one
list, :data:`acquisition.channels.QUALITY_LEVELS`)."""


@dataclass(frozen=True)
class QualityThresholds:
    """Limits used by :func:`channel_quality` (µV and power ratios)."""

    flat_uv: float = 0.5
    glitch_uv: float = 1000.0
    clip_run_samples: int = 8
    mains_ratio_fair: float = 0.25
    mains_ratio_poor: float = 1.0
    amplitude_fair_uv: float = 50.0
    amplitude_poor_uv: float = 150.0
    min_seconds: float = 1.0


@dataclass(frozen=True)
class ChannelQuality:
    """Quality of one channel over one window."""

    channel: str
    level: str
    problems: tuple[str, ...] = ()
    robust_sd_uv: float = float("nan")
    mains_ratio: float = float("nan")
    n_glitches: int = 0

    @property
    def score(self) -> int:
        """0 (good) .. 3 (bad); 4 for no data."""
        return LEVELS.index(self.level)


@dataclass(frozen=True)
class QualityReport:
    """Quality of every channel over one window."""

    channels: tuple[ChannelQuality, ...]
    window_s: float
    problems: dict[str, int] = field(default_factory=dict)

    def levels(self) -> list[str]:
        return [c.level for c in self.channels]

    def by_name(self) -> dict[str, ChannelQuality]:
        return {c.channel: c for c in self.channels}


def _longest_equal_run(x: NDArray[np.float64]) -> NDArray[np.int64]:
    """Longest run of identical consecutive values per column of ``x`` (n, c)."""
    n, c = x.shape
    if n < 2:
        return np.ones(c, dtype=np.int64)
    same = np.diff(x, axis=0) == 0  # (n-1, c)
    # run lengths via cumulative sums reset at every change
    idx = np.arange(1, n, dtype=np.int64)[:, None] * np.ones((1, c), dtype=np.int64)
    last_change = np.where(~same, idx, 0)
    np.maximum.accumulate(last_change, axis=0, out=last_change)
    run = idx - last_change + 1
    run = np.where(same, run, 1)
    return run.max(axis=0)


def channel_quality(
    data_uv: NDArray[np.floating],
    sfreq_hz: float,
    channels: tuple[str, ...] = EPOC_CHANNELS,
    thresholds: QualityThresholds | None = None,
) -> QualityReport:
    """Judge the quality of each channel in a window of raw samples.

    Parameters
    ----------
    data_uv : ndarray, shape (n_samples, n_channels)
        Raw samples in µV (a DC offset is fine; NaN samples count as glitches).
    sfreq_hz : float
        Sampling rate.
    channels : tuple of str
        Channel names, one per column.
    thresholds : QualityThresholds, optional
        Limits; the defaults suit the EPOC+ at 128 Hz.

    Returns
    -------
    QualityReport
        One :class:`ChannelQuality` per channel, in column order.
    """
    th = thresholds or QualityThresholds()
    x = np.asarray(data_uv, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(channels):
        raise ValueError(f"data_uv must have shape (n, {len(channels)}), got {x.shape}")
    if sfreq_hz <= 0:
        raise ValueError(f"sfreq_hz must be > 0, got {sfreq_hz}")
    n, c = x.shape
    window_s = n / sfreq_hz
    if n < th.min_seconds * sfreq_hz:
        return QualityReport(tuple(ChannelQuality(ch, "no data") for ch in channels), window_s)

    nonfinite = ~np.isfinite(x)
    med = np.nanmedian(np.where(nonfinite, np.nan, x), axis=0)
    med = np.where(np.isfinite(med), med, 0.0)
    dev = np.abs(np.where(nonfinite, np.inf, x) - med)
    glitch = dev > th.glitch_uv
    n_glitch = glitch.sum(axis=0)
    # replace glitches by the median before measuring the rest
    clean = np.where(glitch, med, x) - med
    clean -= np.linspace(0.0, 1.0, n)[:, None] * (clean[-min(n, 16):].mean(axis=0) - clean[:16].mean(axis=0))
    mad = np.median(np.abs(clean - np.median(clean, axis=0)), axis=0)
    robust_sd = 1.4826 * mad
    run = _longest_equal_run(np.where(glitch, np.nan, x))

    # mains share: power at 50 +/- 1.5 Hz and 60 +/- 1.5 Hz over 1-45 Hz power
    spec = np.abs(np.fft.rfft(clean * np.hanning(n)[:, None], axis=0)) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / sfreq_hz)
    eeg_band = (freqs >= 1.0) & (freqs <= 45.0)
    mains_band = (np.abs(freqs - 50.0) <= 1.5) | (np.abs(freqs - 60.0) <= 1.5)
    eeg_power = spec[eeg_band].sum(axis=0)
    mains_power = spec[mains_band].sum(axis=0) if mains_band.any() else np.zeros(c)
    mains_ratio = mains_power / np.maximum(eeg_power, 1e-12)

    out = []
    counts: dict[str, int] = {}
    for j, ch in enumerate(channels):
        problems: list[str] = []
        score = 0
        if robust_sd[j] < th.flat_uv:
            problems.append("flat")
            score = 3
        if n_glitch[j] > 0:
            problems.append("glitch")
            score = max(score, 2 if n_glitch[j] <= 2 else 3)
        if run[j] >= th.clip_run_samples and robust_sd[j] >= th.flat_uv:
            problems.append("saturation")
            score = max(score, 3)
        if mains_ratio[j] > th.mains_ratio_poor:
            problems.append("mains")
            score = max(score, 2)
        elif mains_ratio[j] > th.mains_ratio_fair:
            problems.append("mains")
            score = max(score, 1)
        if robust_sd[j] > th.amplitude_poor_uv:
            problems.append("amplitude")
            score = max(score, 2)
        elif robust_sd[j] > th.amplitude_fair_uv:
            problems.append("amplitude")
            score = max(score, 1)
        for p in problems:
            counts[p] = counts.get(p, 0) + 1
        out.append(
            ChannelQuality(
                ch, LEVELS[score], tuple(problems), float(robust_sd[j]), float(mains_ratio[j]), int(n_glitch[j])
            )
        )
    return QualityReport(tuple(out), window_s, counts)
