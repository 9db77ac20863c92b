"""Multichannel EEG traces as one graphics item that repaints only what changed.

A clinical monitor does not scroll: a cursor sweeps left to right and new samples overwrite
the oldest ones in place, so each frame changes a strip a few pixels wide. :class:`TraceItem`
keeps the display window in a ring (one row per sample, one column per channel, in µV) and,
in *sweep* mode, marks only that strip dirty; Qt repaints the strip and nothing else. At 30
frames per second with 14 channels × 10 s this costs a fraction of redrawing 14 curves each
frame. *Scroll* mode (newest sample at the right edge, everything moves) repaints the whole
item every frame, like a plain ``PlotWidget``.

Display values are computed at paint time, for the exposed part only: ``(value - dc) × gain``
clipped to ±``clip`` divisions, plus the channel's lane (channel 0 at the top). Changing the
scale, a gain or the DC offsets therefore only needs a repaint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QLineF, QRectF
from PySide6.QtWidgets import QGraphicsItem

MODES = ("sweep", "scroll")


class TraceItem(pg.GraphicsObject):
    """``n_channels`` traces of ``n_samples`` samples each at ``sfreq_hz``.

    Parameters
    ----------
    n_channels, n_samples : int
        Channels and samples in the window.
    sfreq_hz : float
        Sampling rate (x is in seconds).
    colours : sequence of str
        One pen colour per channel.
    mode : {"sweep", "scroll"}
        Sweep: x runs 0..window and a cursor overwrites the oldest samples. Scroll: x runs
        -window..0 with the newest sample at 0.
    blank_s : float
        In sweep mode, the oldest samples hidden just ahead of the cursor (the gap that
        separates new from old).
    """

    def __init__(self, n_channels: int, n_samples: int, sfreq_hz: float, colours: Sequence[str],
                 mode: str = "sweep", blank_s: float = 0.2, clip: float = 3.0) -> None:
        super().__init__()
        _check_mode(mode)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)  # exposedRect
        self.n_channels = n_channels
        self.sfreq_hz = float(sfreq_hz)
        self.mode = mode
        self.clip = float(clip)
        self.blank = max(1, round(blank_s * sfreq_hz))
        self.pens = [pg.mkPen(c, width=1) for c in colours]
        self.cursor_pen = pg.mkPen("#6b7280", width=1)
        self.gain = np.ones(n_channels)  # divisions per µV, per channel
        self.dc = np.zeros(n_channels)
        self.lanes = (n_channels - 1 - np.arange(n_channels)).astype(float)
        self.painted_samples = 0  # samples × channels drawn by the last paint (tests, bench)
        self.resize_window(n_samples)

    # -- data ------------------------------------------------------------------------------
    def resize_window(self, n_samples: int) -> None:
        """Start over with a window of ``n_samples`` (everything shown is cleared)."""
        self.prepareGeometryChange()
        self.n = max(2, int(n_samples))
        self.ring = np.full((self.n, self.n_channels), np.nan)
        self.cursor = 0  # ring position of the next sample
        self.filled = 0  # samples written since the last clear (capped at n)
        self.update()

    def clear(self) -> None:
        self.ring.fill(np.nan)
        self.cursor = 0
        self.filled = 0
        self.update()

    def set_mode(self, mode: str) -> None:
        _check_mode(mode)
        self.prepareGeometryChange()
        self.mode = mode
        self.update()

    def set_gain(self, gain: NDArray[np.float64]) -> None:
        self.gain = np.asarray(gain, dtype=float).copy()
        self.update()

    def set_dc(self, dc: NDArray[np.float64]) -> None:
        self.dc = np.asarray(dc, dtype=float).copy()
        self.update()

    def write(self, values: NDArray[np.float64]) -> None:
        """Append samples ``(k, n_channels)`` (µV) at the cursor; repaint what changed."""
        k = len(values)
        if k == 0:
            return
        if k >= self.n:
            self.ring[:] = values[-self.n:]
            self.cursor = 0
            self.filled = self.n
            self.update()
            return
        start = self.cursor
        end = start + k
        if end <= self.n:
            self.ring[start:end] = values
        else:
            cut = self.n - start
            self.ring[start:] = values[:cut]
            self.ring[: k - cut] = values[cut:]
        self.cursor = end % self.n
        self.filled = min(self.n, self.filled + k)
        if self.mode == "scroll":
            self.update()
            return
        # the strip from the sample before the old cursor (no line joins the end of the
        # sweep to its start) to the end of the blank gap, which may wrap to the start
        lo, hi = max(0, start - 1), end + self.blank + 1
        if hi > self.n:
            self._update_samples(0, hi - self.n)
            hi = self.n
        self._update_samples(lo, hi)

    def values(self) -> NDArray[np.float64]:
        """The samples in the window in time order, oldest first (µV; NaN rows not yet written)."""
        if self.filled < self.n:  # not wrapped yet since the last clear: the cursor is at ``filled``
            return self.ring[: self.filled].copy()
        return np.roll(self.ring, -self.cursor, axis=0)

    # -- geometry --------------------------------------------------------------------------
    def _y_extent(self) -> tuple[float, float]:
        return -self.clip - 0.5, self.n_channels - 1 + self.clip + 0.5

    def x_range(self) -> tuple[float, float]:
        span = self.n / self.sfreq_hz
        return (0.0, span) if self.mode == "sweep" else (-span, 0.0)

    def boundingRect(self) -> QRectF:
        x0, x1 = self.x_range()
        y0, y1 = self._y_extent()
        return QRectF(x0, y0, x1 - x0, y1 - y0)

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: Any = None) -> tuple[float, float]:
        return self.x_range() if ax == 0 else self._y_extent()

    def _update_samples(self, i0: int, i1: int) -> None:
        y0, y1 = self._y_extent()
        x0 = (i0 - 0.5) / self.sfreq_hz
        strip = QRectF(x0, y0, (i1 - i0 + 1.0) / self.sfreq_hz, y1 - y0)
        view = self.viewRect()  # the traces reach beyond the view: a strip taller than it
        if view is not None:  # would repaint the axes below and above as well
            strip = strip.intersected(view)
        if not strip.isEmpty():
            self.update(strip)

    # -- painting --------------------------------------------------------------------------
    def display(self, i0: int = 0, i1: int | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(x, y)`` of the display positions ``i0..i1`` (y: one column per channel, in lane
        units; NaN where nothing is drawn)."""
        i1 = self.n if i1 is None else i1
        pos = np.arange(i0, i1)
        if self.mode == "sweep":
            idx = pos
            x = pos / self.sfreq_hz
        else:  # position o holds the sample of age n-1-o
            idx = (self.cursor + pos) % self.n
            x = (pos - (self.n - 1)) / self.sfreq_hz
        y = (self.ring[idx] - self.dc) * self.gain
        np.clip(y, -self.clip, self.clip, out=y)
        y += self.lanes
        if self.mode == "sweep":  # hide the oldest samples just ahead of the cursor
            age = (self.cursor - 1 - idx) % self.n
            y[age >= self.n - self.blank] = np.nan
        return x, y

    def paint(self, painter: Any, option: Any, widget: Any = None) -> None:
        rect = option.exposedRect if option is not None else self.boundingRect()
        x0 = self.x_range()[0]  # display position o sits at about x0 + o / sfreq
        i0 = max(0, math.floor((rect.left() - x0) * self.sfreq_hz) - 2)
        i1 = min(self.n, math.ceil((rect.right() - x0) * self.sfreq_hz) + 2)
        if i1 - i0 < 2:
            return
        x, y = self.display(i0, i1)
        finite = np.isfinite(y)
        drawn = 0
        for ch in range(self.n_channels):
            painter.setPen(self.pens[ch])
            for a, b in _runs(finite[:, ch]):  # one polyline per stretch of drawn samples
                painter.drawPolyline(pg.functions.arrayToQPolygonF(x[a:b], y[a:b, ch]))
                drawn += b - a
        self.painted_samples = drawn
        if self.mode == "sweep" and self.filled:
            xc = self.cursor / self.sfreq_hz
            if rect.left() - 1.0 / self.sfreq_hz <= xc <= rect.right() + 1.0 / self.sfreq_hz:
                yb, yt = self._y_extent()
                painter.setPen(self.cursor_pen)
                painter.drawLine(QLineF(xc, yb, xc, yt))


def _runs(ok: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True in ``ok`` that holds at least two samples."""
    if ok.all():
        return [(0, len(ok))] if len(ok) >= 2 else []
    edges = np.flatnonzero(np.diff(np.concatenate(([False], ok, [False])).astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= 2]


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown trace mode {mode!r}; expected one of {', '.join(MODES)}")
