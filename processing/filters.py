"""Band-pass and notch filters: causal and stateful, the same for live data and training.

The filter is one cascade of second-order sections (SOS):

* a Butterworth high-pass of order 4 at the lower band edge (removes the ~4200 µV
  DC offset of the EPOC+ and slow drift),
* a Butterworth low-pass of order 4 at the upper band edge,
* optionally an IIR notch (Q = 30) at the mains frequency (50 or 60 Hz).

Either band edge may be ``None`` to leave that side open. The live path
(:class:`CausalFilter`) and the training path (:func:`processing.pipeline.segment_features`)
use the same causal cascade, so features computed live match features computed on a
recording. No zero-phase variant exists: nothing in Duygu would use one.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import butter, iirnotch, sosfilt, sosfilt_zi, tf2sos

from acquisition.errors import DataError

#: Order of each Butterworth side of the band-pass.
BUTTER_ORDER = 4
#: Quality factor of the mains notch (bandwidth = notch_hz / Q).
NOTCH_Q = 30.0


def _check_sfreq(sfreq_hz: float) -> float:
    try:
        value = float(sfreq_hz)
    except (TypeError, ValueError):
        raise DataError(f"sfreq_hz must be a positive number, got {sfreq_hz!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise DataError(f"sfreq_hz must be a positive number, got {sfreq_hz!r}")
    return value


def design_sos(
    sfreq_hz: float,
    band_hz: tuple[float | None, float | None] = (1.0, 50.0),
    notch_hz: float | None = None,
) -> NDArray[np.float64]:
    """Second-order sections of the band-pass (and notch) cascade.

    Parameters
    ----------
    sfreq_hz : float
        Sampling rate in Hz.
    band_hz : (low, high)
        Pass band in Hz; ``None`` (or 0 for ``low``) leaves that side open.
    notch_hz : float or None
        Mains frequency to notch out (50 or 60 Hz), or ``None``.

    Returns
    -------
    ndarray, shape (n_sections, 6)
        An empty (0, 6) array when neither side nor notch is set (identity).

    Raises
    ------
    DataError
        When an edge is not below the Nyquist frequency or the band is empty.
    """
    fs = _check_sfreq(sfreq_hz)
    try:
        low, high = band_hz
    except (TypeError, ValueError):
        raise DataError(f"band_hz must be a (low, high) pair in Hz, got {band_hz!r}") from None
    return _design(fs, low, high, notch_hz)[0].copy()


@lru_cache(maxsize=64)
def _design(
    fs: float, low: float | None, high: float | None, notch_hz: float | None
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """(sos, unit-step initial state) of a cascade; memoised (designs are pure and cheap to keep)."""
    band_hz = (low, high)
    nyquist = fs / 2.0
    sections: list[NDArray[np.float64]] = []
    if low is not None and low != 0:
        if not (0 < low < nyquist):
            raise DataError(f"band_hz low edge must be in (0, {nyquist:g}) Hz at {fs:g} Hz, got {low!r}")
        sections.append(butter(BUTTER_ORDER, low, btype="highpass", fs=fs, output="sos"))
    if high is not None:
        if not (0 < high < nyquist):
            raise DataError(
                f"band_hz high edge must be in (0, {nyquist:g}) Hz (below Nyquist) at {fs:g} Hz, got {high!r}"
            )
        if low is not None and low >= high:
            raise DataError(f"band_hz must have low < high, got {band_hz!r}")
        sections.append(butter(BUTTER_ORDER, high, btype="lowpass", fs=fs, output="sos"))
    if notch_hz is not None:
        if not (0 < notch_hz < nyquist):
            raise DataError(f"notch_hz must be in (0, {nyquist:g}) Hz at {fs:g} Hz, got {notch_hz!r}")
        b, a = iirnotch(notch_hz, NOTCH_Q, fs=fs)
        sections.append(tf2sos(b, a))
    if not sections:
        return np.zeros((0, 6)), None
    sos = np.concatenate(sections, axis=0)
    zi = sosfilt_zi(sos)
    sos.flags.writeable = False
    zi.flags.writeable = False
    return sos, zi


def _check_data(data: ArrayLike, name: str = "data", n_channels: int | None = None) -> NDArray[np.float64]:
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim != 2:
        raise DataError(f"{name} must be 2-D (n_samples, n_channels), got shape {arr.shape}")
    if n_channels is not None and arr.shape[1] != n_channels:
        raise DataError(f"{name} must have {n_channels} channels (columns), got {arr.shape[1]}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise DataError(
            f"{name} holds NaN or inf (first at sample {bad[0]}, channel {bad[1]}): data must be finite"
        )
    return arr


class CausalFilter:
    """Causal band-pass (+ notch) whose state is carried from chunk to chunk.

    Filtering a recording in chunks of any size gives the same output as filtering it
    at once (to rounding, < 1e-10 µV). The state is initialised from the first sample
    as if the signal had been constant before it, so the EPOC+ DC offset (~4200 µV)
    does not make the filter ring.

    Parameters
    ----------
    sfreq_hz : float
        Sampling rate in Hz.
    n_channels : int
        Number of channels (columns) of every chunk.
    band_hz : (low, high)
        Pass band in Hz (default 1-50 Hz); ``None`` opens a side.
    notch_hz : float or None
        Mains notch frequency (50 or 60 Hz), or ``None``.
    """

    def __init__(
        self,
        sfreq_hz: float,
        n_channels: int,
        band_hz: tuple[float | None, float | None] = (1.0, 50.0),
        notch_hz: float | None = None,
    ) -> None:
        if int(n_channels) != n_channels or n_channels < 1:
            raise DataError(f"n_channels must be a positive integer, got {n_channels!r}")
        self.sfreq_hz = _check_sfreq(sfreq_hz)
        self.n_channels = int(n_channels)
        self.band_hz = band_hz
        self.notch_hz = notch_hz
        self.sos = design_sos(self.sfreq_hz, band_hz, notch_hz)
        zi_unit = _design(self.sfreq_hz, *band_hz, notch_hz)[1]
        self._zi_unit = None if zi_unit is None else zi_unit[:, :, None]
        self._zi: NDArray[np.float64] | None = None

    def reset(self) -> None:
        """Forget the state; the next chunk starts the filter afresh from its first sample."""
        self._zi = None

    def process(self, chunk: ArrayLike) -> NDArray[np.float64]:
        """Filter the next chunk, shape (n_samples, n_channels), and return it filtered.

        Raises
        ------
        DataError
            On a wrong shape, a wrong channel count, NaN or inf (the state is unchanged).
        """
        x = _check_data(chunk, "chunk", self.n_channels)
        if len(x) == 0 or self._zi_unit is None:
            return x.copy()
        zi = self._zi if self._zi is not None else self._zi_unit * x[0][None, None, :]
        y, self._zi = sosfilt(self.sos, x, axis=0, zi=zi)
        return np.asarray(y)

