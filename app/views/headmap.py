"""Head map of the 14 EPOC electrodes coloured by signal quality.

With EmotivPRO, the headset's own contact quality is shown: the quality stream that
belongs to the connected EEG stream (same host and name prefix, read by channel label:
:mod:`acquisition.sources.quality`), with its battery and overall figures. Otherwise --
or when the operator asks -- the quality is computed from the last seconds of data
(:func:`processing.quality.channel_quality`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from acquisition.channels import EPOC_CHANNELS, MONTAGE, SFREQ_HZ
from acquisition.sources.base import BaseSource
from app.state import AppState
from app.views.common import QUALITY_COLOURS, LiveView
from app.widgets.flow import FlowLayout
from processing.quality import LEVELS, ChannelQuality, QualityReport, channel_quality

HEAD_RADIUS = 1.0


def electrode_xy(name: str) -> tuple[float, float]:
    """Flat head-map position: nose up, right ear to the right, head outline at r = 1."""
    e = MONTAGE[name]
    r = 0.88 * e.radius
    az = np.radians(e.azimuth_deg)
    return float(r * np.sin(az)), float(r * np.cos(az))


class HeadMapView(LiveView):
    """Electrodes on a head outline, coloured good/fair/poor/bad, with a table of reasons."""

    #: the contact-quality reader failed (emitted from its thread, shown on the GUI thread)
    quality_failed = Signal(str)

    def __init__(self, window_s: float = 4.0, interval_ms: int = 500,
                 contact_quality: bool = True, parent: QWidget | None = None,
                 state: AppState | None = None) -> None:
        super().__init__(interval_ms, parent, state)
        self.state = state
        self.quality_error = ""  # the reader's last error, shown once
        self.quality_failed.connect(self._show_quality_error)
        self.window_s = window_s
        self.sfreq_hz = SFREQ_HZ
        self.channels = EPOC_CHANNELS
        self.follow_contact = contact_quality  # read the headset's own quality stream
        self.quality: Any = None  # the source's QualityReader, while one runs
        self.reading: Any = None  # the latest EmotivPRO reading shown
        self.report: QualityReport | None = None

        bar = FlowLayout()  # wraps onto a second row in a narrow window
        bar.addWidget(QLabel("Colour by"))
        self.mode = QComboBox()
        self.mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mode.setMinimumContentsLength(22)
        self.mode.addItem("EmotivPRO contact quality when available", "contact")
        self.mode.addItem("Signal quality computed from the data", "computed")
        bar.addWidget(self.mode)
        self.contact_label = QLabel("computed from the data")
        self.contact_label.setStyleSheet("color: #6b7280;")
        bar.addWidget(self.contact_label)
        bar.addStretch(1)
        for level in LEVELS:
            dot = QLabel(f"<span style='color:{QUALITY_COLOURS[level]}; font-size: 16pt'>●</span> {level}")
            bar.addWidget(dot)

        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        p = self.plot.getPlotItem()
        p.hideAxis("left")
        p.hideAxis("bottom")
        p.setAspectLocked(True)
        p.setMouseEnabled(x=False, y=False)
        p.hideButtons()
        p.setMenuEnabled(False)
        theta = np.linspace(0, 2 * np.pi, 200)
        outline = pg.mkPen("#374151", width=3)
        p.plot(HEAD_RADIUS * np.cos(theta), HEAD_RADIUS * np.sin(theta), pen=outline)
        p.plot([-0.12, 0.0, 0.12], [0.99, 1.15, 0.99], pen=outline)  # nose
        ear = np.linspace(-np.pi / 2, np.pi / 2, 40)
        p.plot(1.0 + 0.07 * np.cos(ear), 0.18 * np.sin(ear), pen=outline)
        p.plot(-1.0 - 0.07 * np.cos(ear), 0.18 * np.sin(ear), pen=outline)
        xy = np.array([electrode_xy(ch) for ch in self.channels])
        self.positions = xy
        self.spots = pg.ScatterPlotItem(x=xy[:, 0], y=xy[:, 1], size=46, pen=pg.mkPen("#1f2937", width=1.5),
                                        brush=pg.mkBrush(QUALITY_COLOURS["no data"]))
        p.addItem(self.spots)
        self.labels = []
        for (x, y), ch in zip(xy, self.channels, strict=True):
            text = pg.TextItem(ch, color="#111827", anchor=(0.5, 0.5))
            font = text.textItem.font()
            font.setBold(True)
            font.setPointSize(10)
            text.setFont(font)
            text.setPos(x, y)
            p.addItem(text)
            self.labels.append(text)
        p.setXRange(-1.25, 1.25, padding=0)
        p.setYRange(-1.15, 1.25, padding=0)

        self.table = QTableWidget(len(self.channels), 4)
        self.table.setHorizontalHeaderLabels(["channel", "quality", "problems", "SD µV"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for i, ch in enumerate(self.channels):
            self.table.setItem(i, 0, QTableWidgetItem(ch))

        body = QHBoxLayout()
        body.addWidget(self.plot, 3)
        body.addWidget(self.table, 2)
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addLayout(body, 1)
        self.mode.currentIndexChanged.connect(self.refresh)

    def on_source(self, source: BaseSource | None) -> None:
        if self.quality is not None:
            self.quality.stop(timeout_s=0.0)  # its thread ends by itself within a second
            self.quality = None
        if source is not None:
            self.sfreq_hz = float(source.sfreq_hz)
            if self.follow_contact:
                self.quality_error = ""
                self.quality = source.quality_reader(on_error=self.quality_failed.emit)
                if self.quality is not None:
                    self.quality.start()
        self.report = None
        self.reading = None

    def _show_quality_error(self, message: str) -> None:
        """Tell the operator once per distinct error; the view falls back to the quality
        computed from the EEG meanwhile."""
        if message == self.quality_error:
            return
        self.quality_error = message
        if self.state is not None:
            self.state.notes.warning(f"contact quality: {message}")

    def shutdown(self) -> None:
        self.timer.stop()
        if self.quality is not None:
            self.quality.stop()
            self.quality = None

    def refresh(self) -> None:
        reading = self.quality.latest() if self.quality is not None else None
        self.reading = reading
        if reading is not None:
            figures = [f"{name} {value:g}%" for name, value in (("battery", reading.battery_percent),
                                                                ("overall", reading.overall)) if value is not None]
            self.contact_label.setText(f"EmotivPRO: {reading.stream}" + (" · " + " · ".join(figures) if figures else ""))
        elif self.source is None:
            self.contact_label.setText("no source")
        else:
            self.contact_label.setText(f"computed from the last {self.window_s:g} s of EEG")
        if self.mode.currentData() == "contact" and reading is not None:
            self.show_report(QualityReport(tuple(
                ChannelQuality(ch, level, () if value is None else (f"contact {value:g}/4",))
                for ch, (level, value) in ((c, reading.channels[c]) for c in self.channels)), 0.0))
            return
        src = self.source
        status = str(src.status) if src is not None else "none"
        if src is None or status != "streaming":  # a stopped or lost source is never shown green
            if src is not None:
                self.contact_label.setText(f"source {status}: no data")
            self.show_report(QualityReport(tuple(ChannelQuality(c, "no data") for c in self.channels), 0.0))
            return
        chunk = src.buffer.latest(seconds=self.window_s)
        self.show_report(channel_quality(chunk.data, self.sfreq_hz, self.channels))

    def show_report(self, report: QualityReport) -> None:
        self.report = report
        brushes = [pg.mkBrush(QUALITY_COLOURS[c.level]) for c in report.channels]
        self.spots.setBrush(brushes)
        for i, c in enumerate(report.channels):
            level = QTableWidgetItem(c.level)
            level.setForeground(pg.mkColor(QUALITY_COLOURS[c.level]))
            font = level.font()
            font.setBold(True)
            level.setFont(font)
            self.table.setItem(i, 1, level)
            self.table.setItem(i, 2, QTableWidgetItem(", ".join(c.problems) or "—"))
            sd = QTableWidgetItem("—" if not np.isfinite(c.robust_sd_uv) else f"{c.robust_sd_uv:.1f}")
            sd.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(i, 3, sd)
