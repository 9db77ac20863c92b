"""Live signals: the 14 EPOC channels scrolling, DC removed, raw or filtered."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
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
from app.views.common import CHANNEL_COLOURS, LiveView, filters_available, make_causal_filter
from app.widgets.flow import FlowLayout


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
        self._cursor = 0
        self._disp = np.zeros((0, len(self.channels)))
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
        item.setLabel("bottom", "time", units="s")
        item.getAxis("left").setTicks([[(len(self.channels) - 1 - i, ch) for i, ch in enumerate(self.channels)]])
        item.getAxis("left").setWidth(42)
        self.curves: list[pg.PlotCurveItem] = []
        for i in range(len(self.channels)):
            # PlotCurveItem, not PlotDataItem: no per-frame bookkeeping we do not use
            curve = pg.PlotCurveItem(pen=pg.mkPen(CHANNEL_COLOURS[i], width=1), skipFiniteCheck=True)
            item.addItem(curve)
            self.curves.append(curve)
        item.setYRange(-1.2, len(self.channels) + 0.2, padding=0)
        # one line per second instead of the axis grid: a grid makes the axis (with its text)
        # part of every repaint of the traces
        self._second_lines: list[pg.InfiniteLine] = []
        self._grid_pen = pg.mkPen("#e5e7eb", width=1)

        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(self.plot, 1)

        self.window_spin.valueChanged.connect(self._reset)
        self.mode.currentIndexChanged.connect(self._reset)
        self.channel_pick.currentIndexChanged.connect(
            lambda i: self.gain_spin.setValue(float(self.gains[i])))
        self.gain_spin.valueChanged.connect(self._set_gain)
        self.autoscale.clicked.connect(self.auto_scale)
        self.scale_spin.valueChanged.connect(self._redraw)
        self.gain_spin.valueChanged.connect(self._redraw)
        self._x_range: tuple[float, float] | None = None

    # -- settings --------------------------------------------------------------------
    @property
    def window_s(self) -> float:
        return float(self.window_spin.value())

    @property
    def scale_uv(self) -> float:
        return float(self.scale_spin.value())

    def _set_gain(self, value: float) -> None:
        self.gains[self.channel_pick.currentIndex()] = value

    def auto_scale(self) -> None:
        """Set the global scale so that the typical channel fills about half a division."""
        if len(self._disp) < 2:
            return
        x = self._centred()
        sd = np.median(np.std(x, axis=0))
        if np.isfinite(sd) and sd > 0:
            self.scale_spin.setValue(float(np.clip(6 * sd, 5.0, 5000.0)))

    def on_source(self, source: BaseSource | None) -> None:
        if source is not None:
            self.channels = tuple(source.channels)
            self.sfreq_hz = float(source.sfreq_hz)
        self._reset()

    @property
    def filtered(self) -> bool:
        return self.mode.currentData() in ("filtered", "notch")

    def _reset(self, *_args: object) -> None:
        self._filter = None
        if self.filtered:
            self._filter = make_causal_filter(self.sfreq_hz, len(self.channels),
                                              notch_hz=50.0 if self.mode.currentData() == "notch" else None)
        self._disp = np.zeros((0, len(self.channels)))
        self._cursor = -1
        if self.isVisible():
            self.refresh()

    # -- drawing -----------------------------------------------------------------------
    def _centred(self) -> NDArray[np.float64]:
        x = self._disp
        if self._filter is None:
            x = x - np.median(x, axis=0)
        return x

    def _pull(self) -> bool:
        src = self.source
        if src is None:
            return False
        n_win = round(self.window_s * self.sfreq_hz)
        buf = src.buffer
        if self._cursor < 0:
            chunk = buf.latest(n_samples=n_win)
            new = chunk.data
        else:
            chunk = buf.since(self._cursor, max_samples=None)
            new = chunk.data
            if chunk.missed:
                self._disp = np.zeros((0, len(self.channels)))
                if self._filter is not None:
                    self._filter.reset()
        self._cursor = chunk.next_index
        if len(new) == 0:
            return False
        if self._filter is not None:
            new = self._filter.process(new)
        disp = np.concatenate([self._disp, new]) if len(self._disp) else new
        self._disp = disp[-n_win:]
        return True

    def _redraw(self, *_args: object) -> None:
        if len(self._disp) >= 2:
            self.draw()

    def refresh(self) -> None:
        if self.filtered and self._filter is None and "processing.filters" in sys.modules:
            self._reset()  # the engine finished loading in the background
            return
        if self.freeze.isChecked() or not self._pull() or len(self._disp) < 2:
            return
        self.draw()

    def draw(self) -> None:
        """Update the 14 curves from the display buffer (no new plot items)."""
        x = self._centred()
        n = len(x)
        n_ch = len(self.channels)
        t = (np.arange(n) - (n - 1)) / self.sfreq_hz
        y = x * (self.gains / self.scale_uv)
        np.clip(y, -3.0, 3.0, out=y)
        y += (n_ch - 1 - np.arange(n_ch))
        for i, curve in enumerate(self.curves[:n_ch]):
            curve.setData(t, y[:, i], skipFiniteCheck=True)
        x_range = (-self.window_s, 0.0)
        if x_range != self._x_range:
            item = self.plot.getPlotItem()
            item.setXRange(*x_range, padding=0.01)
            self._x_range = x_range
            for line in self._second_lines:
                item.removeItem(line)
            step = 1.0 if self.window_s <= 20 else 5.0
            self._second_lines = []
            for s in np.arange(-step, -self.window_s - 1e-9, -step):
                line = pg.InfiniteLine(pos=float(s), angle=90, pen=self._grid_pen, movable=False)
                line.setZValue(-10)
                item.addItem(line)
                self._second_lines.append(line)
        self.frames += 1
