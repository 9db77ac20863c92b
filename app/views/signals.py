"""Live signals: every channel of the source as a sweep or a scroll, DC removed, raw or filtered."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.sources.base import BaseSource
from app.state import AppState
from app.views.common import (
    CHANNEL_COLOURS,
    GLITCH_UV,
    LiveView,
    filters_available,
    make_causal_filter,
)
from app.widgets.flow import FlowLayout
from app.widgets.traces import TraceItem


class SignalsView(LiveView):
    """Scrolling multichannel view; redraws every ``interval_ms`` by ``setData`` on 14 curves.

    Parameters
    ----------
    window_s : float
        Seconds shown (adjustable in the toolbar).
    interval_ms : int
        Redraw period (20-50 ms).
    """

    def __init__(self, window_s: float = 10.0, interval_ms: int = 33, parent: QWidget | None = None,
                 state: AppState | None = None) -> None:
        super().__init__(interval_ms, parent, state)
        self.channels = EPOC_CHANNELS
        self.sfreq_hz = SFREQ_HZ
        self.gains = np.ones(len(self.channels))
        self._filter: Any | None = None
        self._level: NDArray[np.float64] | None = None  # each channel's level before the filter
        self._cursor = -1
        self._since_dc = 0
        self._dc_due = True
        self.frames = 0

        bar = FlowLayout()  # wraps onto a second row in a narrow window
        bar.addWidget(QLabel("Window"))
        self.window_spin = QDoubleSpinBox()
        self.window_spin.setRange(1.0, 60.0)
        self.window_spin.setValue(window_s)
        self.window_spin.setSuffix(" s")
        bar.addWidget(self.window_spin)
        self.mode = QComboBox()
        self.mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mode.setMinimumContentsLength(18)
        self.mode.addItem("Raw (DC removed)", "raw")
        self.mode.addItem("Filtered 1–50 Hz", "filtered")
        self.mode.addItem("Filtered 1–50 Hz + 50 Hz notch", "notch")
        if not filters_available():
            for i in (1, 2):
                self.mode.model().item(i).setEnabled(False)  # type: ignore[attr-defined]
            self.mode.setToolTip("processing.filters is not available")
        bar.addWidget(self.mode)
        self.display = QComboBox()
        self.display.addItem("Sweep", "sweep")
        self.display.addItem("Scroll", "scroll")
        self.display.setToolTip("Sweep: a cursor overwrites the oldest samples (cheap: only the new strip is "
                                "redrawn). Scroll: the newest sample stays at the right edge")
        bar.addWidget(self.display)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Scale"))
        self.scale_spin = QDoubleSpinBox()
        self.scale_spin.setRange(5.0, 5000.0)
        self.scale_spin.setValue(100.0)
        self.scale_spin.setSuffix(" µV/div")
        self.scale_spin.setToolTip("Microvolts between neighbouring channel baselines (all channels)")
        bar.addWidget(self.scale_spin)
        bar.addSpacing(12)
        self.channel_pick = QComboBox()
        self.channel_pick.addItems(list(self.channels))
        self.channel_pick.setToolTip("Channel whose own gain the next box sets")
        bar.addWidget(self.channel_pick)
        self.gain_spin = QDoubleSpinBox()
        self.gain_spin.setRange(0.1, 20.0)
        self.gain_spin.setSingleStep(0.25)
        self.gain_spin.setValue(1.0)
        self.gain_spin.setPrefix("× ")
        self.gain_spin.setToolTip("Gain of the chosen channel")
        bar.addWidget(self.gain_spin)
        self.autoscale = QPushButton("Auto scale")
        bar.addWidget(self.autoscale)
        self.freeze = QCheckBox("Freeze")
        bar.addWidget(self.freeze)
        bar.addStretch(1)

        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        item = self.plot.getPlotItem()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        item.getAxis("left").setWidth(42)
        # one item draws every trace and repaints only the strip that changed (sweep)
        self.traces = self._make_traces(len(self.channels), round(window_s * self.sfreq_hz))
        self._set_ticks()
        # one line per second instead of the axis grid: a grid makes the axis (with its text)
        # part of every repaint of the traces
        self._second_lines: list[pg.InfiniteLine] = []
        self._grid_pen = pg.mkPen("#e5e7eb", width=1)
        self._layout_axes()

        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(self.plot, 1)

        self.window_spin.valueChanged.connect(self._reset)
        self.mode.currentIndexChanged.connect(self._reset)
        self.display.currentIndexChanged.connect(self._set_display)
        self.channel_pick.currentIndexChanged.connect(
            lambda i: self.gain_spin.setValue(float(self.gains[i])))
        self.gain_spin.valueChanged.connect(self._set_gain)
        self.autoscale.clicked.connect(self.auto_scale)
        self.scale_spin.valueChanged.connect(self._apply_gain)
        self.gain_spin.valueChanged.connect(self._apply_gain)

    # -- settings --------------------------------------------------------------------
    @property
    def window_s(self) -> float:
        return float(self.window_spin.value())

    @property
    def scale_uv(self) -> float:
        return float(self.scale_spin.value())

    def save_settings(self, qsettings: QSettings) -> None:
        """Remember the window length, the scale and the display mode."""
        qsettings.setValue("signals/window_s", self.window_s)
        qsettings.setValue("signals/scale_uv", self.scale_uv)
        qsettings.setValue("signals/display", self.display.currentData())

    def restore_settings(self, qsettings: QSettings) -> None:
        """Bring back what :meth:`save_settings` remembered (values that are not numbers are ignored)."""
        for key, spin in (("signals/window_s", self.window_spin), ("signals/scale_uv", self.scale_spin)):
            try:
                value = float(qsettings.value(key))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                continue
            spin.setValue(value)
        display = self.display.findData(qsettings.value("signals/display"))
        if display >= 0:
            self.display.setCurrentIndex(display)

    def _set_gain(self, value: float) -> None:
        self.gains[self.channel_pick.currentIndex()] = value

    def _apply_gain(self, *_args: object) -> None:
        self.traces.set_gain(self.gains[: self.traces.n_channels] / self.scale_uv)

    def auto_scale(self) -> None:
        """Set the global scale so that the typical channel fills about half a division."""
        x = self._centred()
        if len(x) < 2:
            return
        sd = np.median(np.nanstd(x, axis=0))
        if np.isfinite(sd) and sd > 0:
            self.scale_spin.setValue(float(np.clip(6 * sd, 5.0, 5000.0)))

    def on_source(self, source: BaseSource | None) -> None:
        if source is not None:
            channels, sfreq_hz = tuple(source.channels), float(source.sfreq_hz)
            rebuild = len(channels) != self.traces.n_channels or sfreq_hz != self.sfreq_hz
            if channels != self.channels:
                self.channels = channels
                self.gains = np.ones(len(channels))
                self.channel_pick.blockSignals(True)
                self.channel_pick.clear()
                self.channel_pick.addItems(list(channels))
                self.channel_pick.blockSignals(False)
                self.gain_spin.setValue(1.0)
            self.sfreq_hz = sfreq_hz
            if rebuild:
                self.plot.getPlotItem().removeItem(self.traces)
                self.traces = self._make_traces(len(channels), round(self.window_s * self.sfreq_hz))
            self._set_ticks()
        self._reset()

    @property
    def filtered(self) -> bool:
        return self.mode.currentData() in ("filtered", "notch")

    def _make_traces(self, n_channels: int, n_samples: int) -> TraceItem:
        colours = [CHANNEL_COLOURS[i % len(CHANNEL_COLOURS)] for i in range(n_channels)]
        traces = TraceItem(n_channels, n_samples, self.sfreq_hz, colours,
                           mode=str(self.display.currentData() or "sweep"))
        traces.set_gain(self.gains[:n_channels] / self.scale_uv)
        item = self.plot.getPlotItem()
        item.addItem(traces)
        item.setYRange(-1.2, n_channels + 0.2, padding=0)
        return traces

    def _set_ticks(self) -> None:
        """One channel name per lane, channel 0 at the top."""
        n = len(self.channels)
        self.plot.getPlotItem().getAxis("left").setTicks([[(n - 1 - i, ch) for i, ch in enumerate(self.channels)]])

    def _set_display(self, *_args: object) -> None:
        self.traces.set_mode(str(self.display.currentData()))
        self._layout_axes()

    def _layout_axes(self) -> None:
        """X range, axis label and the one-per-second lines for the window and display mode."""
        item = self.plot.getPlotItem()
        x0, x1 = self.traces.x_range()
        item.setXRange(x0, x1, padding=0.01)
        sweep = self.traces.mode == "sweep"
        item.setLabel("bottom", "time in the sweep" if sweep else "time", units="s")
        for line in self._second_lines:
            item.removeItem(line)
        span = x1 - x0
        step = 1.0 if span <= 20 else 5.0
        self._second_lines = []
        for s in np.arange(x0 + step, x1 - 1e-9, step):
            line = pg.InfiniteLine(pos=float(s), angle=90, pen=self._grid_pen, movable=False)
            line.setZValue(-10)
            item.addItem(line)
            self._second_lines.append(line)

    def _reset(self, *_args: object) -> None:
        self._filter = None
        self._level = None
        if self.filtered:
            self._filter = make_causal_filter(self.sfreq_hz, len(self.channels),
                                              notch_hz=50.0 if self.mode.currentData() == "notch" else None)
        n_win = round(self.window_s * self.sfreq_hz)
        if n_win != self.traces.n:
            self.traces.resize_window(n_win)
            self._layout_axes()
        else:
            self.traces.clear()
        self.traces.set_dc(np.zeros(self.traces.n_channels))
        self._since_dc = 0
        self._dc_due = True
        self._cursor = -1
        if self.isVisible():
            self.refresh()

    # -- drawing -----------------------------------------------------------------------
    def _centred(self) -> NDArray[np.float64]:
        """The samples shown, oldest first, minus the DC offsets the display removes (µV)."""
        return self.traces.values() - self.traces.dc

    def _hold_glitches(self, data: NDArray[np.float64]) -> NDArray[np.float64]:
        """``data`` with samples further than :data:`GLITCH_UV` from the channel's level
        (its last chunk's median) replaced by that level; a channel whose whole chunk is
        that far moved for real (a re-seated electrode): its new level is taken."""
        ref = self._level if self._level is not None and len(self._level) == data.shape[1] else None
        if ref is None:
            ref = np.nanmedian(data, axis=0)
        bad = ~np.isfinite(data) | (np.abs(data - ref) > GLITCH_UV)
        moved = bad.all(axis=0)
        bad[:, moved] = False
        if bad.any():
            data = np.where(bad, ref, data)
        self._level = np.median(data, axis=0)
        return data

    def _pull(self) -> bool:
        src = self.source
        if src is None:
            return False
        buf = src.buffer
        if self._cursor < 0:
            chunk = buf.latest(n_samples=self.traces.n)
        else:
            chunk = buf.since(self._cursor, max_samples=None)
            if chunk.missed:  # the buffer overran us: start the sweep over
                self.traces.clear()
                self._level = None
                if self._filter is not None:
                    self._filter.reset()
        self._cursor = chunk.next_index
        new = chunk.data
        if len(new) == 0:
            return False
        if self._filter is not None:
            # a glitch (a sample thousands of µV off, as the headset's radio makes) would
            # make the display filter ring for seconds: it is held at the channel's level
            new = self._filter.process(self._hold_glitches(new))
        self.traces.write(new)
        self._since_dc += len(new)
        if self._filter is None and (self._dc_due or self._since_dc >= self.sfreq_hz):
            # raw mode: the DC offsets follow the median of the window, once a second (one
            # full repaint a second; the strips in between keep the same offsets)
            self._since_dc = 0
            self._dc_due = False
            shown = self.traces.values()
            finite = np.isfinite(shown).any(axis=0)
            dc = np.zeros(self.traces.n_channels)
            dc[finite] = np.nanmedian(shown[:, finite], axis=0)
            self.traces.set_dc(dc)
        return True

    def refresh(self) -> None:
        if self.filtered and self._filter is None and "processing.filters" in sys.modules:
            self._reset()  # the engine finished loading in the background
            return
        if self.freeze.isChecked() or not self._pull():
            return
        self.frames += 1
