"""Duygu's main window: builds the app state and the views and wires them, nothing more.

Source panel (dock), one tab per view, notifications, menus and shortcuts. The views
talk to each other only through the :class:`~app.state.AppState` built here.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from acquisition.settings import Settings, load_settings
from acquisition.sources.base import BaseSource
from app import qt_compat  # noqa: F401  (PySide6 6.12 refcount work-around)
from app.controller import SourceController
from app.notifications import NotificationArea, NotificationCenter
from app.state import AppState, is_simulated
from app.views.common import LiveView, warm_up
from app.views.headmap import HeadMapView
from app.views.signals import SignalsView
from app.views.source_panel import SourcePanel
from app.views.spectrum import SpectrumView
from app.workers import WorkerPool

log = logging.getLogger(__name__)

APP_STYLE = """
QWidget { font-size: 10.5pt; }
QGroupBox { font-weight: bold; border: 1px solid #d1d5db; border-radius: 6px; margin-top: 10px; padding-top: 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; }
QPushButton { padding: 5px 12px; border-radius: 5px; border: 1px solid #9ca3af; background: #f9fafb; }
QPushButton:hover { background: #eef2ff; }
QPushButton:disabled { color: #9ca3af; border-color: #d1d5db; }
QPushButton#primary { background: #2563eb; color: white; border-color: #1d4ed8; font-weight: bold; }
QPushButton#primary:disabled { background: #93c5fd; color: #eff6ff; }
QPushButton#danger { background: #dc2626; color: white; border-color: #b91c1c; font-weight: bold; }
QPushButton#danger:disabled { background: #fca5a5; color: #fef2f2; border-color: #fecaca; }
QTabBar::tab { padding: 7px 16px; }
QTabBar::tab:selected { font-weight: bold; }
"""

DEFAULT_PROTOCOL = Path(__file__).resolve().parents[1] / "assets" / "demo" / "protocol.toml"


class MainWindow(QMainWindow):
    """The desktop app.

    Parameters
    ----------
    settings : Settings, optional
        Duygu settings (``load_settings()`` by default).
    qsettings : QSettings, optional
        Where the window layout is remembered; default ``<config dir>/gui-layout.ini``
        (``DUYGU_CONFIG_DIR`` moves it, as tests do).
    store_path : Path, optional
        Session store (``settings.store_path`` by default).
    protocol_path : Path, optional
        Protocol preselected in the session view.
    contact_quality : bool
        Follow the headset's own contact-quality stream (EmotivPRO) in the quality view.
    markers : bool
        Publish session markers on an LSL outlet made at launch (``duygu-markers``).
    """

    _engine_loaded = Signal(list)

    def __init__(self, settings: Settings | None = None, qsettings: QSettings | None = None,
                 store_path: Path | None = None, protocol_path: Path | None = None,
                 contact_quality: bool = True, markers: bool = True) -> None:
        super().__init__()
        self.settings = settings or load_settings()
        self.qsettings = qsettings or QSettings(str(self.settings.config_dir / "gui-layout.ini"),
                                                QSettings.Format.IniFormat)
        store_path = Path(store_path) if store_path else self.settings.store_path
        protocol_path = Path(protocol_path) if protocol_path else DEFAULT_PROTOCOL
        self.setWindowTitle("Duygu — EEG emotion lab")
        self.setObjectName("duygu-main")
        self.setStyleSheet(APP_STYLE)
        self._closing = False

        self.notes = NotificationCenter(self)
        self.pool = WorkerPool(notify=self.notes.notify, parent=self)
        self.controller = SourceController(self.pool, self.notes, self)
        self.state = AppState(self.settings, store_path, protocol_path, self.pool, self.notes, self)
        self.controller.session_source = lambda: (self.state.session_source, self.state.session_spec)
        if markers:  # at launch, so LabRecorder can select it before any session
            try:
                from acquisition.session.markers import MarkerOutlet

                self.state.marker_outlet = MarkerOutlet()
            except Exception as exc:  # LSL markers are a courtesy: sessions store them anyway
                log.warning("no LSL marker outlet: %s", exc)

        self.source_panel = SourcePanel(self.controller, self.state)
        dock = QDockWidget("Source", self)
        dock.setObjectName("source-dock")
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.source_panel)
        dock.setWidget(scroll)
        scroll.setMinimumWidth(250)
        # closable, so View → Source hides it on a small screen and brings it back
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.source_dock = dock

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.signals_view = SignalsView(window_s=self.settings.display_seconds,
                                        interval_ms=self.settings.gui_refresh_ms, state=self.state)
        self.spectrum_view = SpectrumView(state=self.state)
        self.headmap_view = HeadMapView(contact_quality=contact_quality, state=self.state)
        self.tabs.addTab(self.signals_view, "Signals")
        self.tabs.addTab(self.spectrum_view, "Spectrum")
        self.tabs.addTab(self.headmap_view, "Signal quality")
        self.live_views: list[LiveView] = [self.signals_view, self.spectrum_view, self.headmap_view]
        self.session_view: Any = None
        self.training_view: Any = None
        self.prediction_view: Any = None
        self.replay_view: Any = None
        self.stimulus_view: Any = None
        self._add_engine_views()

        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(4, 4, 4, 0)
        lay.addWidget(self.tabs, 1)
        self.notification_area = NotificationArea(self.notes)
        lay.addWidget(self.notification_area)
        self.setCentralWidget(central)

        # a simulated source is never mistaken for EEG: a badge beside the tabs, on every view
        self.simulated_badge = QLabel("SIMULATED")
        self.simulated_badge.setObjectName("simulated-badge")
        self.simulated_badge.setToolTip("The signals come from Duygu's simulated participant, not from a headset")
        self.simulated_badge.setStyleSheet("QLabel { background: #7c3aed; color: white; font-weight: bold;"
                                           " border-radius: 8px; padding: 3px 12px; margin: 2px 6px; }")
        self.simulated_badge.hide()
        self.tabs.setCornerWidget(self.simulated_badge, Qt.Corner.TopRightCorner)
        self.status_text = QLabel("no source")
        self.statusBar().addPermanentWidget(self.status_text)
        self.controller.source_changed.connect(self._on_source)
        self.controller.connect_failed.connect(lambda msg: self.statusBar().showMessage(msg, 10000))
        self._make_actions()
        self.restore_layout()
        self.engine_ready = False
        self._engine_loaded.connect(self._on_engine_ready)
        # a daemon thread, not the pool: imports cannot be cancelled, and closing the window
        # right after start must not wait for scikit-learn to finish loading
        threading.Thread(target=self._warm_up, name="duygu-engine-warm-up", daemon=True).start()

    # -- construction ------------------------------------------------------------------
    def _add_engine_views(self) -> None:
        """Views that drive engine pieces (session runner, training, live prediction, replay)."""
        from app.views.prediction import PredictionView
        from app.views.replay import ReplayView
        from app.views.session import SessionView
        from app.views.stimuli import StimulusView
        from app.views.training import TrainingView

        self.session_view = SessionView(self.state)
        self.tabs.addTab(self.session_view, "Session")
        self.training_view = TrainingView(self.state)
        self.tabs.addTab(self.training_view, "Training")
        self.prediction_view = PredictionView(self.state)
        self.tabs.addTab(self.prediction_view, "Live prediction")
        self.replay_view = ReplayView(self.state, self.controller)
        self.tabs.addTab(self.replay_view, "Replay")
        self.stimulus_view = StimulusView(self.state)
        self.tabs.addTab(self.stimulus_view, "Stimuli")
        # a bundle chosen for live prediction brings its tab to the front once the event loop
        # has caught up (a 0 ms timer object runs after the timers already due, unlike a queued
        # call): the click that chose it and the tab's first paint never add up to one stall
        self._front_timer = QTimer(self)
        self._front_timer.setSingleShot(True)
        self._front_timer.setInterval(0)
        self._front_timer.timeout.connect(lambda: self.tabs.setCurrentWidget(self.prediction_view))
        self.state.bundle_chosen.connect(self._front_timer.start)

    def _make_actions(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        connect = QAction("&Connect source", self)
        connect.setShortcut(QKeySequence("Ctrl+K"))
        connect.triggered.connect(self.source_panel.connect_selected)
        file_menu.addAction(connect)
        disconnect = QAction("&Disconnect source", self)
        disconnect.setShortcut(QKeySequence("Ctrl+D"))
        disconnect.triggered.connect(self.controller.disconnect)
        file_menu.addAction(disconnect)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))  # StandardKey.Quit is empty on some platforms
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        view_menu = menu.addMenu("&View")
        for i in range(self.tabs.count()):
            action = QAction(self.tabs.tabText(i), self)
            action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            action.triggered.connect(lambda _c=False, i=i: self.tabs.setCurrentIndex(i))
            view_menu.addAction(action)
        view_menu.addSeparator()
        self.source_action = self.source_dock.toggleViewAction()
        self.source_action.setText("&Source panel")
        self.source_action.setShortcut(QKeySequence("Ctrl+0"))
        view_menu.addAction(self.source_action)
        if self.session_view is not None and hasattr(self.session_view, "open_label_window"):
            labels = QAction("Participant &label screen (full screen)", self)
            labels.setShortcut(QKeySequence("F11"))
            labels.triggered.connect(self.session_view.open_label_window)
            view_menu.addAction(labels)
        help_menu = menu.addMenu("&Help")
        keys = QAction("&Keyboard shortcuts", self)
        keys.setShortcut(QKeySequence("F1"))
        keys.triggered.connect(self._show_shortcuts)
        help_menu.addAction(keys)

    def _show_shortcuts(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setText(SHORTCUTS_HTML)
        box.setModal(False)
        box.show()

    def _warm_up(self) -> None:
        try:
            names = warm_up()
        except Exception as exc:  # a broken engine install: say so, the live views still work
            log.exception("loading the engine failed")
            self.notes.error(f"loading the engine failed: {type(exc).__name__}: {exc}")
            return
        if self._closing:
            return
        try:
            self._engine_loaded.emit(names)
        except RuntimeError:  # the window was deleted meanwhile
            log.debug("engine loaded after the window closed")

    def _on_engine_ready(self, classifier_names: list[str]) -> None:
        self.engine_ready = True
        self.state.set_classifier_names(classifier_names)

    # -- source ------------------------------------------------------------------------
    def _on_source(self, source: BaseSource | None) -> None:
        self.state.set_source(source, self.controller.spec)
        simulated = is_simulated(source)
        self.simulated_badge.setVisible(simulated)
        self.status_text.setText((f"source: {self.controller.spec}" + ("  (SIMULATED)" if simulated else ""))
                                 if source is not None else "no source")

    def connect_default(self, spec: str, **kwargs: Any) -> None:
        """Connect ``spec`` in the background (used at start-up)."""
        self.controller.connect_spec(spec, **kwargs)

    # -- layout persistence -------------------------------------------------------------
    def restore_layout(self) -> None:
        geometry = self.qsettings.value("window/geometry")
        state = self.qsettings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        size = self.qsettings.value("window/size")
        if isinstance(size, QSize) and size.isValid():
            self.resize(size)  # restoreGeometry clamps to the screen it finds; the size is what was chosen
        elif not isinstance(geometry, QByteArray):
            self.resize(1400, 860)
        if isinstance(state, QByteArray):
            self.restoreState(state)
        tab = self.qsettings.value("window/tab")
        if tab is not None:
            self.tabs.setCurrentIndex(int(tab))  # type: ignore[call-overload]
        self.signals_view.restore_settings(self.qsettings)

    def save_layout(self) -> None:
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.qsettings.setValue("window/size", self.size())
        self.qsettings.setValue("window/state", self.saveState())
        self.qsettings.setValue("window/tab", self.tabs.currentIndex())
        self.signals_view.save_settings(self.qsettings)
        self.qsettings.sync()

    # -- shutdown ----------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop every thread: session (saved as interrupted), predictor, source, workers."""
        if self._closing:
            return
        self._closing = True
        for view in self.live_views:
            view.timer.stop()
        for view in (self.session_view, self.prediction_view, self.training_view, self.replay_view,
                     self.stimulus_view, self.headmap_view):
            if view is not None and hasattr(view, "shutdown"):
                try:
                    view.shutdown()
                except Exception:
                    log.exception("shutting down %s", type(view).__name__)
        self.pool.shutdown(timeout_ms=15000)
        self.controller.shutdown()
        if self.state.marker_outlet is not None:
            self.state.marker_outlet.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Close (window button, Ctrl+Q): a running session ends only if the operator agrees."""
        if not self._closing and self.session_view is not None and not self.session_view.confirm_end("close"):
            event.ignore()
            return
        self.save_layout()
        self.shutdown()
        super().closeEvent(event)


SHORTCUTS_HTML = """<table cellpadding=3>
<tr><td><b>Ctrl+K</b></td><td>connect the source chosen in the source panel</td></tr>
<tr><td><b>Ctrl+D</b></td><td>disconnect the source</td></tr>
<tr><td><b>Ctrl+1 … Ctrl+8</b></td><td>switch view (signals, spectrum, quality, session, training, prediction, replay, stimuli)</td></tr>
<tr><td><b>F11</b></td><td>open the participant's label screen in its own full-screen window</td></tr>
<tr><td><b>1 – 4</b></td><td>while the participant is asked: choose the label shown on that button (any window, any focus; keypad too)</td></tr>
<tr><td><b>Esc</b></td><td>leave the full-screen label window</td></tr>
<tr><td><b>Backspace</b></td><td>on the label screen: take back the answer just given (within 1.5 s)</td></tr>
<tr><td><b>Ctrl+Q</b></td><td>quit (asks first during a session, which is then saved as interrupted)</td></tr>
<tr><td><b>F1</b></td><td>this list</td></tr></table>"""
