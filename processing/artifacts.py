"""Artefact detection and repair: glitches, flat (saturated or disconnected) channels, and
over-range amplitudes.

Three kinds of artefact are flagged per sample (a bit mask, :data:`GLITCH`, :data:`FLAT`,
:data:`AMPLITUDE`); a window that holds any flagged sample is rejected (or marked) by
:func:`processing.pipeline.segment_features` and reported by the live extractor.

* **Glitch**: a sample where some channel jumps by more than ``jump_uv`` from the last
  good sample (the UCI eye-state recording has four such rows, up to ~715,897 µV). The
  whole row is replaced by the last good row before filtering (hold), so one corrupt
  packet neither enters the filter nor rings through the following seconds. When a
  "glitch" lasts longer than ``max_glitch_s`` it is taken as a real step of the signal:
  the new level is accepted and the output stays continuous.
* **Flat**: a channel whose value does not change by more than ``flat_tol_uv`` for at
  least ``flat_s`` seconds (saturation at a rail, a disconnected electrode, a stalled
  driver). Real EPOC+ data never holds a value for more than a few samples.
* **Amplitude**: a filtered sample beyond ``max_abs_uv`` (movement, a loose electrode).

:class:`ArtefactGuard` is causal and stateful: processing a recording in chunks of any
size gives the same repaired signal and the same flags as processing it at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from acquisition.errors import DataError

#: Bits of the per-sample artefact mask.
GLITCH = 1
FLAT = 2
AMPLITUDE = 4


@dataclass(frozen=True)
class ArtefactConfig:
    """Thresholds of the artefact detectors (part of a :class:`FeaturePreset`).

    Attributes
    ----------
    jump_uv : float or None
        A row is a glitch when some channel is further than this from the last good row
        (clean EPOC+ data moves < 50 µV per sample at 128 Hz). ``None`` turns it off.
    max_glitch_s : float
        A glitch longer than this is accepted as a step of the signal.
    flat_s : float or None
        Minimum duration of an unchanging channel to be flagged flat. ``None``: off.
    flat_tol_uv : float
        Largest sample-to-sample change still counted as "unchanging".
    max_abs_uv : float or None
        Largest absolute value of the filtered signal. ``None``: off.
    """

    jump_uv: float | None = 300.0
    max_glitch_s: float = 0.25
    flat_s: float | None = 0.25
    flat_tol_uv: float = 0.0
    max_abs_uv: float | None = 500.0

    def __post_init__(self) -> None:
        for name in ("jump_uv", "flat_s", "max_abs_uv"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise DataError(f"artefacts.{name} must be a positive number or None, got {value!r}")
        if not (math.isfinite(self.max_glitch_s) and self.max_glitch_s > 0):
            raise DataError(f"artefacts.max_glitch_s must be > 0, got {self.max_glitch_s!r}")
        if not (math.isfinite(self.flat_tol_uv) and self.flat_tol_uv >= 0):
            raise DataError(f"artefacts.flat_tol_uv must be >= 0, got {self.flat_tol_uv!r}")


@dataclass(frozen=True)
class ArtefactReport:
    """Counts of flagged samples (rows) and of affected windows.

    ``glitch_samples`` counts rows held because of a glitch, ``flat_samples`` and
    ``amplitude_samples`` count rows where at least one channel was flat or over range.
    """

    n_samples: int = 0
    glitch_samples: int = 0
    flat_samples: int = 0
    amplitude_samples: int = 0
    n_windows: int = 0
    n_rejected: int = 0

    @classmethod
    def from_flags(cls, flags: NDArray[np.uint8], n_windows: int = 0, n_rejected: int = 0) -> ArtefactReport:
        """Count the bits of a per-sample flag array."""
        return cls(
            n_samples=len(flags),
            glitch_samples=int(np.count_nonzero(flags & GLITCH)),
            flat_samples=int(np.count_nonzero(flags & FLAT)),
            amplitude_samples=int(np.count_nonzero(flags & AMPLITUDE)),
            n_windows=n_windows,
            n_rejected=n_rejected,
        )


class ArtefactGuard:
    """Causal, stateful glitch repair and flat-channel detection on RAW µV samples.

    Parameters
    ----------
    sfreq_hz : float
        Sampling rate in Hz.
    n_channels : int
        Columns of every chunk.
    config : ArtefactConfig
        Thresholds.
    """

    def __init__(self, sfreq_hz: float, n_channels: int, config: ArtefactConfig | None = None) -> None:
        self.sfreq_hz = float(sfreq_hz)
        self.n_channels = int(n_channels)
        self.config = config or ArtefactConfig()
        self._max_run = max(1, round(self.config.max_glitch_s * self.sfreq_hz))
        self._flat_n = (
            None if self.config.flat_s is None else max(2, round(self.config.flat_s * self.sfreq_hz))
        )
        self.reset()

    def reset(self) -> None:
        """Forget the history (after a gap in the stream)."""
        self._prev_good: NDArray[np.float64] | None = None  # raw row of the last good sample
        self._offset = np.zeros(self.n_channels)  # raw minus repaired, constant between glitches
        self._run = 0  # length of the glitch run in progress
        self._last_raw: NDArray[np.float64] | None = None
        self._flat_run = np.zeros(self.n_channels, dtype=np.int64)  # equal steps ending at last row

    def process(self, x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.uint8]]:
        """Repair glitches and flag artefacts in the next chunk (validated finite 2-D data).

        Returns
        -------
        repaired : ndarray, shape (n_samples, n_channels)
            Glitch rows replaced by the last good row (continuous, ready to filter).
        flags : ndarray of uint8, shape (n_samples,)
            :data:`GLITCH` and :data:`FLAT` bits per row.
        """
        n = len(x)
        flags = np.zeros(n, dtype=np.uint8)
        if n == 0:
            return x.copy(), flags
        if self._flat_n is not None:
            flags[self._flat_rows(x)] |= FLAT
        if self.config.jump_uv is None:
            self._last_raw = x[-1].copy()
            return x.copy(), flags
        repaired, glitch = self._repair(x, float(self.config.jump_uv))
        flags[glitch] |= GLITCH
        self._last_raw = x[-1].copy()
        return repaired, flags

    def _flat_rows(self, x: NDArray[np.float64]) -> NDArray[np.bool_]:
        assert self._flat_n is not None
        n = len(x)
        prev = x[:1] if self._last_raw is None else self._last_raw[None, :]
        same = np.abs(np.diff(x, axis=0, prepend=prev)) <= self.config.flat_tol_uv
        if self._last_raw is None:
            same[0] = False
        if not same.any():  # the usual chunk: every row changed, so no run continues
            self._flat_run[:] = 0
            return np.zeros(n, dtype=bool)
        idx = np.arange(n)[:, None]
        # index of the last "changed" row at or before each row (-1: none in this chunk)
        last_change = np.maximum.accumulate(np.where(same, -1, idx), axis=0)
        run = np.where(last_change >= 0, idx - last_change, idx + 1 + self._flat_run[None, :])
        self._flat_run = run[-1].astype(np.int64)
        return np.asarray((run + 1 >= self._flat_n).any(axis=1))

    def _repair(self, x: NDArray[np.float64], jump_uv: float) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        n = len(x)
        out = np.empty_like(x)
        glitch = np.zeros(n, dtype=bool)
        if self._prev_good is None:
            self._prev_good = x[0].copy()
        prev_good = self._prev_good
        offset = self._offset
        # rows that jump from the raw row before them (within a good stretch that row is
        # the last good one, so these are the only candidates after a stretch's first row)
        jump_rows = np.flatnonzero((np.abs(np.diff(x, axis=0)) > jump_uv).any(axis=1)) + 1
        i = 0
        while i < n:
            if self._run == 0:
                if (np.abs(x[i] - prev_good) > jump_uv).any():
                    j = i
                else:
                    k = int(np.searchsorted(jump_rows, i + 1))
                    j = int(jump_rows[k]) if k < len(jump_rows) else n
                out[i:j] = x[i:j] - offset
                if j > i:
                    prev_good = x[j - 1]
                i = j
                if i >= n:
                    break
            # inside a glitch run (rare): decide row by row
            if not (np.abs(x[i] - prev_good) > jump_uv).any():
                self._run = 0
                continue
            glitch[i] = True
            self._run += 1
            if self._run > self._max_run:  # a lasting step, not a glitch: accept the new level
                offset = offset + (x[i] - prev_good)
                prev_good = x[i]
                self._run = 0
            out[i] = prev_good - offset
            i += 1
        self._prev_good = np.array(prev_good, copy=True)
        self._offset = offset
        return out, glitch


def amplitude_rows(filtered: NDArray[np.float64], max_abs_uv: float | None) -> NDArray[np.bool_]:
    """Rows of a filtered chunk where some channel exceeds ``max_abs_uv`` (none if None)."""
    if max_abs_uv is None or len(filtered) == 0:
        return np.zeros(len(filtered), dtype=bool)
    return np.asarray((np.abs(filtered) > max_abs_uv).any(axis=1))
