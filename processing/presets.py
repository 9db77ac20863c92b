"""Feature presets: every setting of the processing chain, as data.

A :class:`FeaturePreset` names the filter (band and notch), the windows (length for live
prediction, step for cutting trials), the frames inside a window, the features and the
artefact thresholds. Two presets ship:

* ``paper`` — the EEG paper's method: 1-50 Hz band-pass, short frames with 50% overlap,
  Hamming window, FFT, and per-frame std, max, min, mean and RMS of the magnitude
  spectrum. The paper's 25 ms is 3.2 samples at 128 Hz; rounded to 3 samples with a hop
  of 2 (1.6 rounded) the frames would overlap by 33%, not 50%. The preset uses 4-sample
  frames (31.25 ms) with a 2-sample hop: exactly 50%, the nearest frame to 25 ms that
  halves evenly. Its FFT bins are 32 Hz apart: no EEG band is resolved (a
  ``FrameResolutionWarning`` says so). Kept for replication only.
* ``default`` — 1 s Hamming frames with 50% overlap (1 Hz bins, a Welch estimate over the
  7 frames of a 4 s window); differential entropy and relative power in the delta, theta,
  alpha, beta and gamma bands, and frontal asymmetry. See docs/FEATURES.md.

Build a variant with :func:`dataclasses.replace`, e.g.
``replace(get_preset("default"), name="notch50", notch_hz=50.0)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from numbers import Real
from types import MappingProxyType
from typing import Any

from acquisition.errors import DataError
from processing.artifacts import ArtefactConfig

#: Feature kinds a preset may list, in the order their columns appear.
FEATURE_KINDS: tuple[str, ...] = ("stats", "logpow", "relpow", "de", "asym")
#: Per-frame statistics of the magnitude spectrum (the paper's five).
STATS: tuple[str, ...] = ("std", "max", "min", "mean", "rms")
#: Canonical EEG bands in Hz, [low, high).
DEFAULT_BANDS: tuple[tuple[str, float, float], ...] = (
    ("delta", 1.0, 4.0),
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 13.0),
    ("beta", 13.0, 30.0),
    ("gamma", 30.0, 45.0),
)


@dataclass(frozen=True)
class FeaturePreset:
    """All settings from raw µV to a feature vector.

    Attributes
    ----------
    name : str
        Preset name (stored in model bundles).
    window_s : float
        Length of one analysis window (the live prediction window), seconds.
    step_s : float
        Step between windows cut from a recorded trial, seconds.
    band_hz : (low, high)
        Band-pass edges in Hz (``None`` opens a side).
    notch_hz : float or None
        Mains notch (50 or 60 Hz) or ``None``.
    frame_s : float
        Frame length inside a window, seconds (rounded to whole samples).
    frame_overlap : float
        Fraction of a frame shared with the next one, in [0, 1).
    frame_detrend : bool
        Remove each frame's mean before the Hamming window.
    features : tuple of str
        Feature kinds, a subset of :data:`FEATURE_KINDS`.
    bands : tuple of (name, low_hz, high_hz)
        Bands of ``logpow``, ``relpow``, ``de`` and ``asym``.
    stats : tuple of str
        Statistics of ``stats`` (subset of :data:`STATS`).
    artefacts : ArtefactConfig
        Artefact thresholds.
    description : str
        One line for users.
    """

    name: str
    window_s: float = 4.0
    step_s: float = 2.0
    band_hz: tuple[float | None, float | None] = (1.0, 50.0)
    notch_hz: float | None = None
    frame_s: float = 1.0
    frame_overlap: float = 0.5
    frame_detrend: bool = True
    features: tuple[str, ...] = ("de", "relpow", "asym")
    bands: tuple[tuple[str, float, float], ...] = DEFAULT_BANDS
    stats: tuple[str, ...] = STATS
    artefacts: ArtefactConfig = field(default_factory=ArtefactConfig)
    description: str = ""

    def __post_init__(self) -> None:
        for name in ("window_s", "step_s", "frame_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
                raise DataError(f"preset {self.name!r}: {name} must be a positive number of seconds, got {value!r}")
        if self.frame_s > self.window_s:
            raise DataError(
                f"preset {self.name!r}: window_s={self.window_s:g} is shorter than a frame (frame_s={self.frame_s:g})"
            )
        if not (0.0 <= self.frame_overlap < 1.0):
            raise DataError(f"preset {self.name!r}: frame_overlap must be in [0, 1), got {self.frame_overlap!r}")
        if not self.features:
            raise DataError(f"preset {self.name!r}: features must name at least one of {', '.join(FEATURE_KINDS)}")
        unknown = [k for k in self.features if k not in FEATURE_KINDS]
        if unknown:
            raise DataError(f"preset {self.name!r}: unknown feature kind {unknown[0]!r}: choose {', '.join(FEATURE_KINDS)}")
        bad_stats = [s for s in self.stats if s not in STATS]
        if bad_stats or ("stats" in self.features and not self.stats):
            raise DataError(f"preset {self.name!r}: stats must be a non-empty subset of {', '.join(STATS)}, got {self.stats!r}")
        names = [b[0] for b in self.bands]
        if len(set(names)) != len(names):
            raise DataError(f"preset {self.name!r}: band names must be unique, got {names}")
        for band in self.bands:
            if len(band) != 3 or not (0 <= band[1] < band[2]):
                raise DataError(f"preset {self.name!r}: a band must be (name, low_hz, high_hz) with low < high, got {band!r}")
        if any(k in self.features for k in ("logpow", "relpow", "de", "asym")) and not self.bands:
            raise DataError(f"preset {self.name!r}: band features need at least one band")

    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(b[0] for b in self.bands)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for model bundle metadata); inverse of :meth:`from_dict`."""
        d = asdict(self)
        d["bands"] = [list(b) for b in self.bands]
        d["band_hz"] = list(self.band_hz)
        d["features"] = list(self.features)
        d["stats"] = list(self.stats)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeaturePreset:
        """Rebuild a preset from :meth:`to_dict` output (unknown keys are an error)."""
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(d) - known)
        if extra:
            raise DataError(f"feature preset dict has unknown key {extra[0]!r}: expected {', '.join(sorted(known))}")
        kw = dict(d)
        if "band_hz" in kw:
            kw["band_hz"] = tuple(kw["band_hz"])
        for key in ("features", "stats"):
            if key in kw:
                kw[key] = tuple(kw[key])
        if "bands" in kw:
            kw["bands"] = tuple((str(b[0]), float(b[1]), float(b[2])) for b in kw["bands"])
        if isinstance(kw.get("artefacts"), dict):
            kw["artefacts"] = ArtefactConfig(**kw["artefacts"])
        try:
            return cls(**kw)
        except TypeError as exc:
            raise DataError(f"feature preset dict is incomplete: {exc}") from None


_PAPER = FeaturePreset(
    name="paper",
    window_s=4.0,
    step_s=2.0,
    band_hz=(1.0, 50.0),
    notch_hz=None,
    # the paper's 25 ms frame is 3.2 samples at 128 Hz; 4 samples (31.25 ms) with a
    # 2-sample hop is the nearest frame whose 50% overlap is exact
    frame_s=4 / 128,
    frame_overlap=0.5,
    frame_detrend=False,
    features=("stats",),
    description=(
        "the EEG paper's method: 1-50 Hz, 4-sample (31.25 ms, the paper's 25 ms) Hamming frames "
        "with exactly 50% overlap, FFT, std/max/min/mean/RMS per frame; no EEG band is resolved"
    ),
)

_DEFAULT = FeaturePreset(
    name="default",
    window_s=4.0,
    step_s=2.0,
    band_hz=(1.0, 50.0),
    notch_hz=None,
    frame_s=1.0,
    frame_overlap=0.5,
    frame_detrend=True,
    features=("de", "relpow", "asym"),
    description=(
        "1 s Hamming frames (50% overlap, Welch): differential entropy and relative power "
        "in delta/theta/alpha/beta/gamma, frontal asymmetry"
    ),
)

#: The shipped presets by name (read-only).
PRESETS: MappingProxyType[str, FeaturePreset] = MappingProxyType({"default": _DEFAULT, "paper": _PAPER})


def get_preset(name_or_preset: str | FeaturePreset | dict[str, Any]) -> FeaturePreset:
    """Return a preset by name, or the preset itself, or one rebuilt from a dict.

    Raises
    ------
    DataError
        ``unknown feature preset 'x': choose default, paper``.
    """
    if isinstance(name_or_preset, FeaturePreset):
        return name_or_preset
    if isinstance(name_or_preset, dict):
        return FeaturePreset.from_dict(name_or_preset)
    key = str(name_or_preset).strip().lower()
    if key not in PRESETS:
        raise DataError(f"unknown feature preset {name_or_preset!r}: choose {', '.join(sorted(PRESETS))}")
    return PRESETS[key]
