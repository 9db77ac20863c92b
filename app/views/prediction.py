"""Live prediction: smoothed class probabilities as bars and a timeline, decision and confidence.

A :class:`models.live.LivePredictor` runs in its own thread and calls back with each
prediction; the callback only appends to a queue, and a GUI timer drains it. The big
word, its confidence and the bars all show the same quantity, the exponentially
smoothed probabilities (the latest window's own figure is named beside them). During a
session the running session's context (now playing, intended emotion, the participant's
last report) is shown beside the decision; with no session running it is empty. When the
source stops, is lost or disconnects, or predictions stop, the decision is greyed out.
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from acquisition.sources.base import BaseSource
from app.state import AppState, SessionContext
from app.views.common import class_colour
from app.workers import Task


class PredictionView(QWidget):
    """Shows the predictions of a loaded bundle on the current source."""

    def __init__(self, state: AppState, timeline_s: float = 60.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.timeline_s = timeline_s
        self.bundle: Any = None
        self.bundle_name = ""
        self.classes: list[str] = []
        self.source: BaseSource | None = None
        self.predictor: Any = None
        self._queue: collections.deque[Any] = collections.deque(maxlen=2000)
        self._lock = threading.Lock()
        self.n_predictions = 0
        self.n_unclean = 0
        self.last: Any = None
        self.smoothed: np.ndarray | None = None
        self._hist_t: collections.deque[float] = collections.deque()
        self._hist_p: collections.deque[np.ndarray] = collections.deque()
        self._t0: float | None = None
        self._want_running = False
        self._start_token = 0  # bumped by every start and stop: a late-built predictor is dropped
        self.n_dropped_starts = 0  # predictors built after a stop, never started

        bar = QHBoxLayout()
        self.load_button = QPushButton("Load bundle…")
        self.bundle_label = QLabel("no model loaded")
        self.bundle_label.setStyleSheet("color: #4b5563;")
        self.bundle_label.setWordWrap(True)
        bar.addWidget(self.load_button)
        bar.addWidget(self.bundle_label, 1)
        bar.addWidget(QLabel("Smoothing"))
        self.smoothing = QDoubleSpinBox()
        self.smoothing.setRange(0.0, 30.0)
        self.smoothing.setValue(3.0)
        self.smoothing.setSuffix(" s")
        self.smoothing.setToolTip("Time constant of the exponential smoothing of the timeline and decision")
        bar.addWidget(self.smoothing)
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("primary")
        self.start_button.setEnabled(False)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        bar.addWidget(self.start_button)
        bar.addWidget(self.stop_button)

        # decision + session context
        self.decision = QLabel("—")
        self.decision.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.decision.setStyleSheet("font-size: 34pt; font-weight: bold; color: #6b7280;")
        self.confidence = QLabel("no prediction yet")
        self.confidence.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.confidence.setWordWrap(True)
        self.confidence.setStyleSheet("font-size: 12pt; color: #4b5563;")
        dec_box = QGroupBox("Decoded emotion")
        dl = QVBoxLayout(dec_box)
        dl.addWidget(self.decision)
        dl.addWidget(self.confidence)
        ctx_box = QGroupBox("Session")
        grid = QGridLayout(ctx_box)
        self.ctx_labels: dict[str, QLabel] = {}
        self.ctx_title = QLabel("no session running")
        self.ctx_title.setStyleSheet("color: #6b7280;")
        grid.addWidget(self.ctx_title, 0, 0, 1, 2)
        for i, (key, title) in enumerate((("playing", "Now playing"), ("intended", "Intended emotion"),
                                          ("reported", "Participant reported")), start=1):
            name = QLabel(title)
            name.setStyleSheet("color: #4b5563;")
            value = QLabel("—")
            value.setStyleSheet("font-size: 14pt; font-weight: bold;")
            grid.addWidget(name, i, 0)
            grid.addWidget(value, i, 1)
            self.ctx_labels[key] = value
        self.reported_for = QLabel("")
        self.reported_for.setStyleSheet("color: #6b7280;")
        grid.addWidget(self.reported_for, 4, 1)
        self.latency = QLabel("")
        self.latency.setStyleSheet("color: #6b7280;")
        grid.addWidget(self.latency, 5, 0, 1, 2)
        left = QVBoxLayout()
        left.addWidget(dec_box, 1)
        left.addWidget(ctx_box)

        self.bar_plot = pg.PlotWidget()
        self.bar_plot.setBackground("w")
        bp = self.bar_plot.getPlotItem()
        bp.setMouseEnabled(x=False, y=False)
        bp.hideButtons()
        bp.setYRange(0, 1, padding=0.02)
        bp.setLabel("left", "smoothed probability")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7)
        bp.addItem(self.bars)
        top = QHBoxLayout()
        top.addLayout(left, 2)
        top.addWidget(self.bar_plot, 3)

        self.timeline = pg.PlotWidget()
        self.timeline.setBackground("w")
        tp = self.timeline.getPlotItem()
        tp.setMouseEnabled(x=False, y=False)
        tp.hideButtons()
        tp.setYRange(0, 1, padding=0.02)
        tp.setLabel("bottom", "time", units="s")
        tp.setLabel("left", "smoothed probability")
        tp.showGrid(x=True, y=True, alpha=0.2)
        self.legend = tp.addLegend(offset=(10, 5), colCount=6)
        self.timeline.setMinimumHeight(170)  # never a strip under its own legend
        self.curves: list[pg.PlotDataItem] = []

        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addLayout(top, 3)
        lay.addWidget(self.timeline, 2)

        self.load_button.clicked.connect(self._load_dialog)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.user_stop)
        self.timer = QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self.drain)
        self.timer.start()
        state.source_changed.connect(self.set_source)
        state.bundle_chosen.connect(self.use_bundle)
        state.session_context_changed.connect(self.show_session_context)

    # -- bundle ------------------------------------------------------------------------
    def _load_dialog(self) -> None:
        self.state.settings.models_dir.mkdir(parents=True, exist_ok=True)
        start = str(self.state.settings.models_dir)
        path, _ = QFileDialog.getOpenFileName(self, "Load model bundle", start, "skops bundle (*.skops);;All (*)")
        if path:
            self.load_bundle(Path(path))

    def load_bundle(self, path: Path) -> Task:
        """Load and check a bundle against the current source, in a worker."""
        src = self.source

        def job(_task: Task) -> Any:
            from models.bundle import load_bundle

            if src is None:
                return load_bundle(path)
            return load_bundle(path, expect_channels=tuple(src.channels), expect_sfreq_hz=float(src.sfreq_hz))

        # through the app state, so every view knows the bundle in use (this view follows it)
        return self.state.pool.submit(f"load bundle {Path(path).name}", job,
                                       on_result=lambda b: self.state.choose_bundle(b, Path(path).name))

    def use_bundle(self, bundle: Any, name: str = "") -> None:
        self.user_stop()
        self.bundle = bundle
        self.bundle_name = name
        meta = getattr(bundle, "meta", None) or {}
        self.classes = list(bundle.classes)
        desc = ", ".join(self.classes)
        clf = meta.get("classifier", "")
        self.bundle_label.setText(f"<b>{name}</b> {clf} · classes: {desc}")
        self._setup_plots()
        self.start_button.setEnabled(True)
        if self.source is not None:
            self.start()

    def _setup_plots(self) -> None:
        n = len(self.classes)
        bp = self.bar_plot.getPlotItem()
        self.bars.setOpts(x=np.arange(n), height=np.zeros(n), width=0.7,
                          brushes=[pg.mkBrush(class_colour(c, i)) for i, c in enumerate(self.classes)],
                          pens=[pg.mkPen(None)] * n)
        bp.getAxis("bottom").setTicks([[(i, c) for i, c in enumerate(self.classes)]])
        bp.setXRange(-0.6, n - 0.4, padding=0)
        if [c.name() for c in self.curves] == self.classes:  # the same classes: keep the curves
            for c in self.curves:                             # (building them costs the GUI thread)
                c.setData([], [])
        else:
            tp = self.timeline.getPlotItem()
            for c in self.curves:
                tp.removeItem(c)
            self.legend.clear()
            self.curves = [tp.plot(pen=pg.mkPen(class_colour(c, i), width=2.5), name=c)
                           for i, c in enumerate(self.classes)]
        self._hist_t.clear()
        self._hist_p.clear()
        self.smoothed = None
        self._t0 = None

    # -- running -----------------------------------------------------------------------
    def set_source(self, source: BaseSource | None) -> None:
        """A new source (or none): predictions follow it if they were running."""
        keep = self._want_running
        self.stop()
        self._want_running = keep
        self.source = source
        if source is not None and self.bundle is not None and keep:
            self.start()

    def user_stop(self) -> None:
        """The operator pressed Stop: predictions stay off until Start."""
        self.stop()
        self._want_running = False

    def start(self) -> bool:
        """Start predicting; the predictor (feature filters, the compiled model, checked
        against the bundle) is built in a worker and starts when it is ready. Returns
        False if nothing can start (no bundle, no source)."""
        if self.bundle is None:
            self.state.notes.warning("load or train a model bundle first")
            return False
        if self.source is None:
            self.state.notes.warning("connect a source before starting live prediction")
            return False
        self._want_running = True
        self.stop()
        bundle, source, hop_s = self.bundle, self.source, self.state.settings.hop_s
        self._start_token += 1
        token = self._start_token

        def build(_task: Any) -> Any:
            from acquisition.errors import DuyguError
            from models.live import LivePredictor

            try:
                return LivePredictor(bundle, source, hop_s=hop_s)
            except DuyguError as exc:
                return exc  # reported on the GUI thread as "live prediction: ..."

        self.start_button.setEnabled(False)
        self.confidence.setText("starting…")
        self.state.pool.submit("start live prediction", build,
                               on_result=lambda result: self._started(result, token),
                               on_error=lambda _text: self._start_failed(token))
        return True

    def _start_failed(self, token: int) -> None:
        """An unexpected error while building the predictor (the pool logs it): nothing runs."""
        if token == self._start_token:
            self._want_running = False
            self.stop()

    def _started(self, result: Any, token: int) -> None:
        """The predictor built in the worker (or why it could not be): start it, unless a
        stop, another bundle or another source came in the meantime."""
        from acquisition.errors import DuyguError

        if token != self._start_token or not self._want_running:
            if not isinstance(result, BaseException):
                result.stop()  # never started: only releases what it holds
            self.n_dropped_starts += 1
            return
        if isinstance(result, BaseException):
            self._want_running = False
            self.state.notes.error(f"live prediction: {result}")
            self.stop()
            return
        predictor = result
        if predictor.domain_warning:
            self.state.notes.warning(f"live prediction: {predictor.domain_warning}")
        predictor.add_listener(self._on_prediction)
        try:
            predictor.start()
        except DuyguError as exc:
            self._want_running = False
            self.state.notes.error(f"live prediction: {exc}")
            self.stop()
            return
        self.predictor = predictor
        self.confidence.setText("waiting for the first window")
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)

    def stop(self) -> None:
        self._start_token += 1  # a predictor still being built is not started
        predictor, self.predictor = self.predictor, None
        if predictor is not None:
            try:
                predictor.stop()
            except Exception as exc:  # the error that ended the predictor thread
                self.state.notes.error(f"live prediction stopped: {exc}")
        self.start_button.setEnabled(self.bundle is not None)
        self.stop_button.setEnabled(False)
        self._queue.clear()
        self.grey_out("no source" if self.source is None else "predictions stopped")

    def grey_out(self, why: str) -> None:
        """Nothing is being decoded now: no decision stays on screen (``why`` says so)."""
        self.last = None
        self.smoothed = None  # the next start smooths afresh
        self.decision.setText("—")
        self.decision.setStyleSheet("font-size: 34pt; font-weight: bold; color: #9ca3af;")
        self.confidence.setText(why)
        if self.classes:
            self.bars.setOpts(height=np.zeros(len(self.classes)), brushes=[pg.mkBrush("#d1d5db")] * len(self.classes))

    def _on_prediction(self, prediction: Any) -> None:
        self._queue.append(prediction)  # predictor thread: only queue it

    def drain(self) -> None:
        """Take the queued predictions and update the display (GUI timer)."""
        predictor = self.predictor
        if predictor is not None and predictor.error is not None and not predictor.running:
            self.stop()  # reports the error
        src = self.source
        if predictor is not None and src is not None and str(src.status) != "streaming":
            if self.last is not None:  # the source stopped or is lost: what was decoded is stale
                self._queue.clear()
                self.grey_out(f"source {src.status}: nothing decoded")
            return
        if not self._queue:
            return
        items = []
        while self._queue:
            items.append(self._queue.popleft())
        for p in items:
            self._add(p)
        self._draw()

    def _add(self, p: Any) -> None:
        self.last = p
        self.n_predictions += 1
        if not getattr(p, "clean", True):
            self.n_unclean += 1
            return  # shown greyed, kept out of the smoothed decision and the timeline
        probs = np.array([float(p.probabilities.get(c, 0.0)) for c in self.classes])
        t = float(p.t)
        if self._t0 is None:
            self._t0 = t
        tau = float(self.smoothing.value())
        if self.smoothed is None or tau <= 0 or not self._hist_t:
            self.smoothed = probs
        else:
            dt = max(0.0, t - self._hist_t[-1])
            a = 1.0 - np.exp(-dt / tau)
            self.smoothed = self.smoothed + a * (probs - self.smoothed)
        self._hist_t.append(t)
        self._hist_p.append(self.smoothed.copy())
        while self._hist_t and t - self._hist_t[0] > self.timeline_s:
            self._hist_t.popleft()
            self._hist_p.popleft()

    def _draw(self) -> None:
        if self.last is None or not self.classes:
            return
        raw = np.array([float(self.last.probabilities.get(c, 0.0)) for c in self.classes])
        clean = bool(getattr(self.last, "clean", True))
        brushes = ([pg.mkBrush(class_colour(c, i)) for i, c in enumerate(self.classes)] if clean
                   else [pg.mkBrush("#d1d5db")] * len(self.classes))
        # the bars show what the big word shows: the smoothed probabilities
        self.bars.setOpts(height=raw if self.smoothed is None else self.smoothed, brushes=brushes)
        if not clean:  # an artefact in the window: say so, grey, never the big word
            reason = getattr(self.last, "reason", "") or "window not clean"
            self.decision.setStyleSheet("font-size: 34pt; font-weight: bold; color: #9ca3af;")
            self.confidence.setText(f"not clean: {reason} — this window is not used")
        if self.smoothed is None:
            return
        k = int(np.argmax(self.smoothed))
        label = self.classes[k]
        if clean:
            colour = class_colour(label, k)
            self.decision.setText(label)
            self.decision.setStyleSheet(f"font-size: 34pt; font-weight: bold; color: {colour};")
            tau = float(self.smoothing.value())
            self.confidence.setText(f"smoothed ({tau:g} s): confidence {100 * self.smoothed[k]:.0f}%  ·  "
                                    f"latest window alone: {self.last.label} {100 * raw.max():.0f}%")
        lat = getattr(self.last, "latency_ms", None)
        if lat is not None:
            unclean = f" ({self.n_unclean} not clean)" if self.n_unclean else ""
            self.latency.setText(f"{self.n_predictions} predictions{unclean} · latency {lat:.1f} ms")
        t = np.fromiter(self._hist_t, float) - float(self._hist_t[-1])
        hp = np.vstack(self._hist_p)
        for i, curve in enumerate(self.curves):
            curve.setData(t, hp[:, i])
        self.timeline.getPlotItem().setXRange(-self.timeline_s, 0, padding=0)

    # -- session context ---------------------------------------------------------------
    def show_session_context(self, context: SessionContext) -> None:
        """Show the running session's current stimulus, its intended emotion and the last
        report (empty with no session running)."""
        running = bool(context.running)
        self.ctx_title.setText(("session running" + (f" · #{context.session_id}" if context.session_id else ""))
                               if running else "no session running")
        self.reported_for.setText(f"for {context.reported_for}" if running and context.reported
                                  and context.reported_for else "")
        for key in ("playing", "intended", "reported"):
            value = getattr(context, key) if running else None
            lab = self.ctx_labels[key]
            lab.setText(value or "—")
            if key != "playing":
                lab.setStyleSheet(f"font-size: 14pt; font-weight: bold; color: {class_colour(value or '—')};")

    def shutdown(self) -> None:
        self.timer.stop()
        self.user_stop()
