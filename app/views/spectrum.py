"""Spectrum and band power: Welch PSD of the last seconds, per channel or averaged."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from acquisition.channels import EPOC_CHANNELS, SFREQ_HZ
from acquisition.sources.base import BaseSource
from app.state import AppState
from app.views.common import CHANNEL_COLOURS, LiveView, despike

#: EEG bands in Hz (lower edge inclusive, upper exclusive).
BANDS_HZ: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0), "gamma": (30.0, 45.0),
}  # fmt: skip
BAND_COLOURS = ("#64748b", "#8b5cf6", "#10b981", "#f59e0b", "#ef4444")


def welch_psd(data: NDArray[np.float64], sfreq_hz: float, segment_s: float = 2.0
              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Welch power spectral density (µV²/Hz) per channel, Hann segments with 50 % overlap.

    Returns ``(freqs_hz (n_freq,), psd (n_freq, n_channels))``.
    """
    n_seg = round(segment_s * sfreq_hz)
    n = len(data)
    if n < n_seg:
        n_seg = n
    step = max(1, n_seg // 2)
    starts = np.arange(0, n - n_seg + 1, step)
    idx = starts[:, None] + np.arange(n_seg)[None, :]
    segs = data[idx]  # (n_segs, n_seg, n_ch)
    segs = segs - segs.mean(axis=1, keepdims=True)
    win = np.hanning(n_seg)
    spec = np.abs(np.fft.rfft(segs * win[None, :, None], axis=1)) ** 2
    psd = spec.mean(axis=0) / (sfreq_hz * np.sum(win**2))
    psd[1:-1] *= 2.0
    return np.fft.rfftfreq(n_seg, 1.0 / sfreq_hz), psd


def band_powers(freqs: NDArray[np.float64], psd: NDArray[np.float64]) -> NDArray[np.float64]:
    """Absolute power per band (µV²), shape (n_bands, n_channels), bands as in BANDS_HZ."""
    df = freqs[1] - freqs[0] if len(freqs) > 1 else 1.0
    out = np.empty((len(BANDS_HZ), psd.shape[1]))
    for b, (lo, hi) in enumerate(BANDS_HZ.values()):
        sel = (freqs >= lo) & (freqs < hi)
        out[b] = psd[sel].sum(axis=0) * df
    return out


class SpectrumView(LiveView):
    """Log PSD curves and band-power bars, recomputed every ``interval_ms``."""

    def __init__(self, interval_ms: int = 250, parent: QWidget | None = None,
                 state: AppState | None = None) -> None:
        super().__init__(interval_ms, parent, state)
        self.channels = EPOC_CHANNELS
        self.sfreq_hz = SFREQ_HZ
        self.last_band_power: NDArray[np.float64] | None = None

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Show"))
        self.selection = QComboBox()
        self.selection.addItem("All channels", "all")
        self.selection.addItem("Average of channels", "average")
        for ch in self.channels:
            self.selection.addItem(ch, ch)
        bar.addWidget(self.selection)
        bar.addWidget(QLabel("Last"))
        self.window_spin = QDoubleSpinBox()
        self.window_spin.setRange(2.0, 30.0)
        self.window_spin.setValue(4.0)
        self.window_spin.setSuffix(" s")
        bar.addWidget(self.window_spin)
        self.band_mode = QComboBox()
        self.band_mode.addItem("Relative band power (%)", "relative")
        self.band_mode.addItem("Absolute band power (µV²)", "absolute")
        bar.addWidget(self.band_mode)
        bar.addStretch(1)

        self.psd_plot = pg.PlotWidget()
        self.psd_plot.setBackground("w")
        p = self.psd_plot.getPlotItem()
        p.setLogMode(x=False, y=True)
        # one label per decade, all written alike (0.01, 0.1, 1, 10, 100), no minor labels
        p.getAxis("left").setTicks([[(float(k), f"{10.0 ** k:g}") for k in range(-4, 7)], []])
        p.setLabel("bottom", "frequency", units="Hz")
        p.setLabel("left", "PSD (µV²/Hz)")
        p.showGrid(x=True, y=True, alpha=0.2)
        p.setXRange(0, 60, padding=0)
        p.setMouseEnabled(x=False, y=False)
        p.hideButtons()
        for b, (lo, hi) in enumerate(BANDS_HZ.values()):
            region = pg.LinearRegionItem((lo, hi), movable=False,
                                         brush=pg.mkBrush(pg.mkColor(BAND_COLOURS[b]).lighter(190)))
            region.setZValue(-10)
            for line in region.lines:
                line.setPen(pg.mkPen(None))
            p.addItem(region)
        self.psd_curves = [p.plot(pen=pg.mkPen(CHANNEL_COLOURS[i], width=1)) for i in range(len(self.channels))]
        self.mean_curve = p.plot(pen=pg.mkPen("#111827", width=2.5))

        self.band_plot = pg.PlotWidget()
        self.band_plot.setBackground("w")
        bp = self.band_plot.getPlotItem()
        bp.setMouseEnabled(x=False, y=False)
        bp.hideButtons()
        bp.getAxis("bottom").setTicks([[(i, name) for i, name in enumerate(BANDS_HZ)]])
        self.bars = pg.BarGraphItem(x=np.arange(len(BANDS_HZ)), height=np.zeros(len(BANDS_HZ)), width=0.7,
                                    brushes=[pg.mkBrush(c) for c in BAND_COLOURS], pens=[pg.mkPen(None)] * 5)
        bp.addItem(self.bars)
        bp.setXRange(-0.6, len(BANDS_HZ) - 0.4, padding=0)

        self.heat_plot = pg.PlotWidget()
        self.heat_plot.setBackground("w")
        hp = self.heat_plot.getPlotItem()
        hp.setMouseEnabled(x=False, y=False)
        hp.hideButtons()
        hp.setTitle("relative band power per channel", size="9pt")
        self.heat = pg.ImageItem(axisOrder="row-major")
        self.heat.setColorMap(pg.colormap.get("viridis"))
        hp.addItem(self.heat)
        hp.getAxis("bottom").setTicks([[(i + 0.5, n) for i, n in enumerate(BANDS_HZ)]])
        hp.getAxis("left").setTicks([[(len(self.channels) - i - 0.5, ch) for i, ch in enumerate(self.channels)]])
        hp.invertY(False)

        right = QVBoxLayout()
        right.addWidget(self.band_plot, 1)
        right.addWidget(self.heat_plot, 1)
        plots = QHBoxLayout()
        plots.addWidget(self.psd_plot, 3)
        plots.addLayout(right, 2)
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addLayout(plots, 1)
        self.selection.currentIndexChanged.connect(self.refresh)
        self.band_mode.currentIndexChanged.connect(self.refresh)

    def on_source(self, source: BaseSource | None) -> None:
        if source is not None:
            self.sfreq_hz = float(source.sfreq_hz)

    def refresh(self) -> None:
        src = self.source
        if src is None:
            return
        chunk = src.buffer.latest(seconds=float(self.window_spin.value()))
        if len(chunk) < int(self.sfreq_hz):
            return
        data = despike(chunk.data)
        freqs, psd = welch_psd(data, self.sfreq_hz)
        keep = freqs > 0
        freqs, psd = freqs[keep], np.maximum(psd[keep], 1e-6)
        bands = band_powers(freqs, psd)
        self.last_band_power = bands
        sel = self.selection.currentData()
        mean = psd.mean(axis=1)
        for i, curve in enumerate(self.psd_curves):
            show = sel == "all" or sel == self.channels[i]
            curve.setVisible(show)
            if show:
                curve.setData(freqs, psd[:, i])
        self.mean_curve.setVisible(sel in ("all", "average"))
        self.mean_curve.setData(freqs, mean)
        relative = self.band_mode.currentData() == "relative"
        if sel in ("all", "average"):
            heights = bands.mean(axis=1)
        else:
            heights = bands[:, self.channels.index(sel)]
        if relative:
            heights = 100.0 * heights / max(float(heights.sum()), 1e-12)
        self.bars.setOpts(height=heights)
        self.band_plot.getPlotItem().setLabel("left", "% of 1–45 Hz" if relative else "µV²")
        self.band_plot.getPlotItem().setYRange(0, float(heights.max()) * 1.1 + 1e-9, padding=0)
        rel = bands / np.maximum(bands.sum(axis=0, keepdims=True), 1e-12)
        self.heat.setImage(rel.T[::-1], levels=(0.0, max(0.05, float(rel.max()))))
        self.heat.setRect(0, 0, len(BANDS_HZ), len(self.channels))
