"""Replay: play a recorded session (or a CSV/EDF file) through the same views, 1x or faster.

The replay becomes the app's current source (``replay:STORE#ID@SPEED``), so the signal,
spectrum, quality and live-prediction views all show it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.controller import SourceController
from app.state import AppState
from app.store_queries import list_sessions, session_trials
from app.widgets.flow import FlowLayout
from app.workers import Task

SPEEDS = (1.0, 2.0, 5.0, 10.0, 20.0)
COLUMNS = ("id", "participant", "protocol", "status", "trials", "labelled", "eeg_seconds", "start")


class ReplayView(QWidget):
    """Recorded sessions, speed, play/stop, and the replay's position."""

    def __init__(self, state: AppState, controller: SourceController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.controller = controller
        self.rows: list[dict[str, Any]] = []
        self.replay_spec: str | None = None

        bar = FlowLayout()  # wraps onto a second row in a narrow window
        self.refresh_button = QPushButton("Refresh")
        self.open_button = QPushButton("Open file…")
        self.open_button.setToolTip("Replay a CSV or EDF recording instead of a stored session")
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.open_button)
        bar.addStretch(1)
        bar.addWidget(QLabel("Speed"))
        self.speed = QComboBox()
        for s in SPEEDS:
            self.speed.addItem(f"{s:g}x", s)
        bar.addWidget(self.speed)
        self.export_bids_button = QPushButton("Export BIDS…")
        self.export_bids_button.setToolTip("Write the chosen session as a BIDS-EEG dataset (EDF)")
        self.export_csv_button = QPushButton("Export CSV…")
        bar.addWidget(self.export_bids_button)
        bar.addWidget(self.export_csv_button)
        bar.addSpacing(16)
        self.play_button = QPushButton("▶ Play")
        self.play_button.setObjectName("primary")
        self.stop_button = QPushButton("■ Stop")
        bar.addWidget(self.play_button)
        bar.addWidget(self.stop_button)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.trials = QTableWidget(0, 4)
        self.trials.setHorizontalHeaderLabels(["stimulus", "intended", "reported", "duration s"])
        self.trials.verticalHeader().setVisible(False)
        self.trials.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.trials.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        body = QHBoxLayout()
        body.addWidget(self.table, 3)
        body.addWidget(self.trials, 2)

        self.position = QProgressBar()
        self.position.setRange(0, 1000)
        self.position.setFormat("not playing")
        self.position.setTextVisible(True)
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addLayout(body, 1)
        lay.addWidget(self.position)

        self.refresh_button.clicked.connect(self.refresh_sessions)
        self.open_button.clicked.connect(self._open_file)
        self.play_button.clicked.connect(self.play_selected)
        self.export_bids_button.clicked.connect(lambda: self._export_dialog("bids"))
        self.export_csv_button.clicked.connect(lambda: self._export_dialog("csv"))
        self.stop_button.clicked.connect(self.stop)
        self.table.itemSelectionChanged.connect(self._load_trials)
        self.timer = QTimer(self)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self._update_position)
        self.timer.start()
        state.sessions_changed.connect(self.refresh_sessions)
        self.refresh_sessions()

    def refresh_sessions(self) -> Task:
        path = self.state.store_path

        def done(rows: list[dict[str, Any]]) -> None:
            self.rows = rows
            self.table.setRowCount(len(rows))
            for i, r in enumerate(rows):
                for j, key in enumerate(COLUMNS):
                    item = QTableWidgetItem(str(r.get(key, "")))
                    if key == "status":
                        colour = {"completed": "#15803d", "interrupted": "#b45309", "aborted": "#b91c1c",
                                  "running": "#1d4ed8"}.get(str(r.get(key)), "#111827")
                        item.setData(Qt.ItemDataRole.ForegroundRole, _qcolor(colour))
                    self.table.setItem(i, j, item)
            if rows and not self.table.selectionModel().hasSelection():
                self.table.selectRow(len(rows) - 1)

        return self.state.pool.submit("list sessions", lambda _t: list_sessions(path), on_result=done)

    def selected_session(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return int(self.rows[rows[0].row()]["id"])

    def _load_trials(self) -> None:
        sid = self.selected_session()
        if sid is None:
            return
        path = self.state.store_path

        def done(rows: list[dict[str, Any]]) -> None:
            self.trials.setRowCount(len(rows))
            for i, r in enumerate(rows):
                dur = ""
                if r.get("onset_t") is not None and r.get("offset_t") is not None:
                    dur = f"{float(r['offset_t']) - float(r['onset_t']):.1f}"
                for j, v in enumerate((r["stimulus_id"], r["intended"] or "—", r["label"] or "—", dur)):
                    self.trials.setItem(i, j, QTableWidgetItem(str(v)))

        self.state.pool.submit(f"trials of session {sid}", lambda _t: session_trials(path, sid), on_result=done)

    def play_selected(self) -> Task | None:
        sid = self.selected_session()
        if sid is None:
            self.state.notes.warning("choose a recorded session to replay (or open a file)")
            return None
        return self.play(f"{self.state.store_path}#{sid}")

    def play(self, target: str | Path) -> Task | None:
        """Replay a file or ``STORE#SESSION`` as the app's source."""
        speed = float(self.speed.currentData())
        self.replay_spec = f"replay:{target}@{speed:g}"
        self.position.setFormat("opening…")
        self.state.clear_session_context()  # the live views now show a recording, not a session
        return self.controller.connect_spec(self.replay_spec)

    def stop(self) -> None:
        src = self.controller.source
        if src is not None and src.kind == "replay":
            self.controller.disconnect()
        self.replay_spec = None

    def _export_dialog(self, fmt: str) -> None:
        from app.dirs import user_folder

        out = QFileDialog.getExistingDirectory(self, f"Export as {fmt.upper()} into", str(user_folder("exports")))
        if out:
            self.export(fmt, Path(out))

    def export(self, fmt: str, out_dir: Path) -> Task | None:
        """Export the chosen session (``bids`` or ``csv``) into ``out_dir`` in a worker."""
        sid = self.selected_session()
        if sid is None:
            self.state.notes.warning("choose a recorded session to export")
            return None
        store_path = self.state.store_path
        from app.dirs import unique_folder

        # a folder of its own per session and format: a second export never overwrites the first
        out_dir = unique_folder(Path(out_dir) / f"duygu-session-{sid}-{fmt}")

        def job(task: Task) -> Path:
            from app.procs import call_in_process

            # EDF writing holds the GIL for long stretches: a child process keeps the GUI fluid
            return Path(call_in_process("app.jobs:export_session", str(store_path), sid, fmt, str(out_dir),
                                        cancelled=lambda: task.cancelled))

        return self.state.pool.submit(
            f"export session {sid} as {fmt}", job,
            on_result=lambda p: self.state.notes.notify(f"session {sid} exported to {p}", "success"))

    def _open_file(self) -> None:
        from app.dirs import user_folder

        path, _ = QFileDialog.getOpenFileName(self, "Replay a recording", str(user_folder()),
                                              "Recordings (*.csv *.edf *.bdf);;All files (*)")
        if path:
            self.play(path)

    def _update_position(self) -> None:
        src = self.controller.source
        if src is None or src.kind != "replay":
            if self.replay_spec is None:
                self.position.setFormat("not playing")
                self.position.setValue(0)
            return
        rec = getattr(src, "recording", None)
        if rec is None:
            return
        total = len(rec.data)
        done = min(src.counters.received, total)
        self.position.setValue(int(1000 * done / max(total, 1)))
        speed = getattr(src, "speed", 1.0)
        self.position.setFormat(f"{src.info.name if src.info else ''} · {done / src.sfreq_hz:.0f} / "
                                f"{total / src.sfreq_hz:.0f} s at {speed:g}x · {src.status}")

    def shutdown(self) -> None:
        self.timer.stop()


def _qcolor(hex_colour: str) -> Any:
    from PySide6.QtGui import QBrush, QColor

    return QBrush(QColor(hex_colour))
