"""Pieces shared by the views: colours, the live-view base class, filter lookup."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

from acquisition.sources.base import BaseSource
from app.state import AppState

#: One colour per EPOC channel (left hemisphere warm, right cool), readable on white.
CHANNEL_COLOURS: tuple[str, ...] = (
    "#b91c1c", "#c2410c", "#b45309", "#a16207", "#4d7c0f", "#15803d", "#047857",
    "#0f766e", "#0e7490", "#0369a1", "#1d4ed8", "#4338ca", "#6d28d9", "#a21caf",
)  # fmt: skip

#: Colours of the emotion classes (others get a neutral grey-blue).
CLASS_COLOURS: dict[str, str] = {
    "happy": "#f59e0b", "sad": "#3b82f6", "relaxing": "#10b981", "tense": "#ef4444",
    "neutral": "#6b7280",
    "HVHA": "#f59e0b", "LVLA": "#3b82f6", "HVLA": "#10b981", "LVHA": "#ef4444",
}  # fmt: skip

QUALITY_COLOURS: dict[str, str] = {
    "good": "#16a34a", "fair": "#eab308", "poor": "#f97316", "bad": "#dc2626", "no data": "#9ca3af",
}  # fmt: skip


def class_colour(label: str, index: int = 0) -> str:
    fallback = ("#8b5cf6", "#ec4899", "#14b8a6", "#84cc16", "#f97316", "#64748b")
    return CLASS_COLOURS.get(label, fallback[index % len(fallback)])


#: Imported by :func:`warm_up` at start-up, in a worker (importing a compiled module holds the
#: GIL while it loads: better at start-up than in a running session). Exports and training run
#: in child processes, which import MNE and the classifiers' extras themselves.
ENGINE_MODULES = ("processing.filters", "processing.pipeline", "models.registry", "models.evaluation",
                  "models.bundle", "models.live", "models.inference", "acquisition.session.runner",
                  "acquisition.store.sqlite", "acquisition.session.protocol", "skops.io")


def filters_available() -> bool:
    """True if :mod:`processing.filters` exists (without importing scipy on the GUI thread)."""
    return importlib.util.find_spec("processing.filters") is not None


def warm_up() -> list[str]:
    """Import the engine (scipy, scikit-learn…) in a worker; returns the classifier names."""
    for name in ENGINE_MODULES:
        importlib.import_module(name)
    from models.registry import classifier_names

    return classifier_names()


def make_causal_filter(sfreq_hz: float, n_channels: int, band_hz: tuple[float, float] = (1.0, 50.0),
                       notch_hz: float | None = None) -> Any | None:
    """A :class:`processing.filters.CausalFilter`, or ``None`` while its module is not loaded.

    The module (and scipy) is imported by :func:`warm_up` in a worker, never here.
    """
    module = sys.modules.get("processing.filters")
    if module is None:
        return None
    return module.CausalFilter(sfreq_hz, n_channels, band_hz=band_hz, notch_hz=notch_hz)


#: a sample further than this from its channel's level is a glitch, not EEG (µV)
GLITCH_UV = 1000.0


def despike(data: NDArray[np.float64], limit_uv: float = GLITCH_UV) -> NDArray[np.float64]:
    """Replace samples further than ``limit_uv`` from the channel median by the median."""
    if len(data) == 0:
        return data
    med = np.median(data, axis=0)
    bad = ~np.isfinite(data) | (np.abs(data - med) > limit_uv)
    return np.where(bad, med, data) if bad.any() else data


class LiveView(QWidget):
    """A view that redraws from the current source on its own timer while visible.

    Subclasses implement :meth:`refresh` (pull from ``self.source.buffer`` and update
    existing plot items) and may override :meth:`on_source`.
    """

    def __init__(self, interval_ms: int, parent: QWidget | None = None, state: AppState | None = None) -> None:
        super().__init__(parent)
        self.source: BaseSource | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.refresh)
        if state is not None:  # in the app; benchmarks and tests may drive set_source directly
            state.source_changed.connect(self.set_source)

    def set_source(self, source: BaseSource | None) -> None:
        self.source = source
        self.on_source(source)
        if self.isVisible():
            self.refresh()

    def on_source(self, source: BaseSource | None) -> None:
        """Reset per-source state (filters, cursors)."""

    def refresh(self) -> None:
        raise NotImplementedError

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.timer.start()

    def hideEvent(self, event: Any) -> None:
        super().hideEvent(event)
        self.timer.stop()
