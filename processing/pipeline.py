"""From raw µV to features: the same chain for recorded trials and for live data.

Both :func:`segment_features` (training) and :class:`OnlineFeatureExtractor` (live) run
one :class:`FrontEnd` — glitch repair and flat detection on the raw signal
(:class:`processing.artifacts.ArtefactGuard`), then the causal band-pass
(:class:`processing.filters.CausalFilter`), then the amplitude check — and then
:func:`processing.features.extract_features` on windows of ``preset.window_s``. Because
every stage is causal and carries its state, a window computed live after streaming a
recording chunk by chunk equals the window at the same position computed on the whole
recording (to rounding).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from acquisition.channels import EPOC_CHANNELS
from acquisition.errors import DataError
from processing.artifacts import (
    AMPLITUDE,
    FLAT,
    GLITCH,
    ArtefactGuard,
    ArtefactReport,
    amplitude_rows,
)
from processing.features import (
    WindowFeaturizer,
    _round_half_up,
    feature_names,
    frame_geometry,
    segment_window_features,
)
from processing.filters import CausalFilter, _check_data, _check_sfreq
from processing.presets import FeaturePreset, get_preset


class FrontEnd:
    """Artefact guard + causal filter + amplitude check, stateful across chunks.

    Parameters
    ----------
    preset : str or FeaturePreset
        Supplies the band, notch and artefact thresholds.
    sfreq_hz : float
        Sampling rate in Hz.
    n_channels : int
        Columns of every chunk.
    """

    def __init__(self, preset: str | FeaturePreset, sfreq_hz: float, n_channels: int) -> None:
        self.preset = get_preset(preset)
        self.sfreq_hz = _check_sfreq(sfreq_hz)
        self.n_channels = int(n_channels)
        self.guard = ArtefactGuard(self.sfreq_hz, self.n_channels, self.preset.artefacts)
        self.filter = CausalFilter(self.sfreq_hz, self.n_channels, self.preset.band_hz, self.preset.notch_hz)

    def reset(self) -> None:
        """Start afresh (after a gap in the stream)."""
        self.guard.reset()
        self.filter.reset()

    def process(self, raw: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.uint8]]:
        """Return (filtered µV, per-row artefact flags) of a validated raw chunk."""
        repaired, flags = self.guard.process(raw)
        filtered = self.filter.process(repaired)
        flags[amplitude_rows(filtered, self.preset.artefacts.max_abs_uv)] |= AMPLITUDE
        return filtered, flags


@dataclass(frozen=True)
class SegmentFeatures:
    """Features of the windows cut from one recorded segment.

    Attributes
    ----------
    X : ndarray, shape (n_windows, n_features)
        One row per kept window (all windows when ``reject=False``).
    window_starts : ndarray of int
        Start of each row's window, in samples from the segment's first sample.
    n_rejected : int
        Windows holding an artefact (removed, or only marked when ``reject=False``).
    clean : ndarray of bool
        Per row of ``X``: no artefact in the window (all True when rejecting).
    rejected_starts : ndarray of int
        Starts of the windows with an artefact, in samples.
    report : ArtefactReport
        Counts of flagged samples and windows.
    windows : ndarray of float32, shape (n_windows, n_channels, n_samples), or None
        The filtered samples of each row's window (with ``keep_windows=True``).
    """

    X: NDArray[np.float64]
    window_starts: NDArray[np.int64]
    n_rejected: int
    clean: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    rejected_starts: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    report: ArtefactReport = field(default_factory=ArtefactReport)
    windows: NDArray[np.float32] | None = None


def window_samples(preset: str | FeaturePreset, sfreq_hz: float) -> tuple[int, int]:
    """(window length, step) in samples for a preset at a rate."""
    p = get_preset(preset)
    return _round_half_up(p.window_s * sfreq_hz), max(1, _round_half_up(p.step_s * sfreq_hz))


def segment_features(
    segment: ArrayLike,
    sfreq_hz: float,
    preset: str | FeaturePreset,
    channels: tuple[str, ...] | list[str] = EPOC_CHANNELS,
    reject: bool = True,
    keep_windows: bool = False,
) -> SegmentFeatures:
    """Filter a recorded segment as the live path does, cut windows and extract features.

    Windows of ``preset.window_s`` start every ``preset.step_s`` from the first sample;
    a window holding any artefact (glitch, flat channel, over-range amplitude) is
    rejected, or kept and marked in ``clean`` when ``reject`` is False.

    Parameters
    ----------
    segment : array, shape (n_samples, n_channels)
        RAW µV (the DC offset may be present), channels in ``channels`` order.
    sfreq_hz : float
        Sampling rate in Hz.
    preset : str or FeaturePreset
    channels : sequence of str
    reject : bool
        Drop artefact windows (True) or mark them (False).
    keep_windows : bool
        Also return the filtered window of every row (for classifiers of raw EEG).

    Raises
    ------
    DataError
        NaN/inf, wrong shape or channel count, a segment shorter than one window.
    """
    p = get_preset(preset)
    chans = tuple(channels)
    fs = _check_sfreq(sfreq_hz)
    x = _check_data(segment, "segment", len(chans))
    win, step = window_samples(p, fs)
    if len(x) < win:
        raise DataError(
            f"segment holds {len(x)} samples ({len(x) / fs:.2f} s) but preset {p.name!r} needs "
            f"window_s={p.window_s:g} ({win} samples at {fs:g} Hz)"
        )
    filtered, flags = FrontEnd(p, fs, len(chans)).process(x)
    starts = np.arange(0, len(x) - win + 1, step, dtype=np.int64)
    flagged = np.concatenate([[0], np.cumsum(flags != 0)])
    bad = flagged[starts + win] - flagged[starts] > 0
    report = ArtefactReport.from_flags(flags, n_windows=len(starts), n_rejected=int(bad.sum()))
    rows = starts[~bad] if reject else starts
    X = segment_window_features(filtered, rows, win, fs, p, chans)
    windows = None
    if keep_windows:
        windows = np.stack([filtered[a:a + win].T for a in rows]).astype(np.float32) if len(rows) else (
            np.zeros((0, len(chans), win), dtype=np.float32))
    clean = np.ones(len(rows), dtype=bool) if reject else ~bad
    return SegmentFeatures(X, rows, int(bad.sum()), clean, starts[bad], report, windows)


class OnlineFeatureExtractor:
    """Live features of the latest window, fed with raw chunks.

    Parameters
    ----------
    preset : str or FeaturePreset
    sfreq_hz : float
        Rate of the pushed chunks (default 128 Hz).
    channels : sequence of str
        Channel names in column order (default: the 14 EPOC+ channels).

    Notes
    -----
    ``features()`` of a window equals the row of :func:`segment_features` at the same
    position when both saw the same samples from the same first sample; when the live
    stream started earlier, they agree once the filter has settled (a few seconds).
    """

    def __init__(
        self,
        preset: str | FeaturePreset,
        sfreq_hz: float = 128.0,
        channels: tuple[str, ...] | list[str] = EPOC_CHANNELS,
    ) -> None:
        self.preset = get_preset(preset)
        self.sfreq_hz = _check_sfreq(sfreq_hz)
        self.channels = tuple(channels)
        self.window_samples, _ = window_samples(self.preset, self.sfreq_hz)
        frame_len, _ = frame_geometry(self.preset, self.sfreq_hz, warn=False)
        if self.window_samples < frame_len:
            raise DataError(f"a window of {self.window_samples} samples is shorter than a frame of {frame_len} samples")
        self.feature_names = feature_names(self.preset, self.channels)
        self._front = FrontEnd(self.preset, self.sfreq_hz, len(self.channels))
        self._buf = np.zeros((self.window_samples, len(self.channels)))
        self._flags = np.zeros(self.window_samples, dtype=np.uint8)
        self._counts = np.zeros(3, dtype=np.int64)
        self.total_samples = 0
        self._featurizer: WindowFeaturizer | None = None  # built at the first features() call

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def ready(self) -> bool:
        """True once a whole window has been pushed."""
        return self.total_samples >= self.window_samples

    @property
    def window_clean(self) -> bool:
        """True when the latest window holds no flagged artefact."""
        return bool(self.ready and not self._flags.any())

    @property
    def window_artefacts(self) -> tuple[str, ...]:
        """The kinds of artefact flagged in the latest window (``glitch``, ``flat``,
        ``amplitude``); empty when it is clean."""
        if not self.ready:
            return ()
        flags = int(np.bitwise_or.reduce(self._flags))
        return tuple(name for bit, name in ((GLITCH, "glitch"), (FLAT, "flat"), (AMPLITUDE, "amplitude"))
                     if flags & bit)

    @property
    def report(self) -> ArtefactReport:
        """Flagged-sample counts since creation (or the last reset)."""
        g, f, a = (int(v) for v in self._counts)
        return ArtefactReport(self.total_samples, g, f, a)

    def reset(self) -> None:
        """Forget everything (e.g. after a gap in the stream)."""
        self._front.reset()
        self._buf[:] = 0.0
        self._flags[:] = 0
        self._counts[:] = 0
        self.total_samples = 0

    def push(self, chunk: ArrayLike, sfreq_hz: float | None = None) -> None:
        """Add raw µV samples, shape (n_samples, n_channels).

        Parameters
        ----------
        chunk : array
        sfreq_hz : float, optional
            Rate of the chunk's source; a value other than the extractor's is an error.

        Raises
        ------
        DataError
            NaN/inf, wrong shape or channel count, or an sfreq mismatch (nothing is
            pushed then).
        """
        if sfreq_hz is not None and abs(float(sfreq_hz) - self.sfreq_hz) > 1e-9:
            raise DataError(
                f"sfreq mismatch: chunk at {float(sfreq_hz):g} Hz pushed to an extractor at {self.sfreq_hz:g} Hz"
            )
        x = _check_data(chunk, "chunk", len(self.channels))
        n = len(x)
        if n == 0:
            return
        filtered, flags = self._front.process(x)
        self._counts += [np.count_nonzero(flags & b) for b in (GLITCH, FLAT, AMPLITUDE)]
        w = self.window_samples
        if n >= w:
            self._buf[:] = filtered[-w:]
            self._flags[:] = flags[-w:]
        else:
            self._buf[:-n] = self._buf[n:]
            self._buf[-n:] = filtered
            self._flags[:-n] = self._flags[n:]
            self._flags[-n:] = flags
        self.total_samples += n

    def _require_window(self) -> None:
        if not self.ready:
            raise DataError(
                f"not enough data for a window: {self.total_samples} of {self.window_samples} samples pushed"
            )

    def window(self) -> NDArray[np.float32]:
        """The filtered samples of the latest window, shape (1, n_channels, n_samples):
        the rows :func:`segment_features` keeps with ``keep_windows=True``.

        Raises
        ------
        DataError
            Before a whole window has been pushed.
        """
        self._require_window()
        return self._buf.T[None].astype(np.float32)

    def features(self) -> NDArray[np.float64]:
        """Features of the latest window, shape (1, n_features).

        Raises
        ------
        DataError
            Before a whole window has been pushed.
        """
        self._require_window()
        if self._featurizer is None:  # frames are a view of the window buffer, updated in place
            self._featurizer = WindowFeaturizer(self._buf, self.sfreq_hz, self.preset, self.channels)
        return self._featurizer()
