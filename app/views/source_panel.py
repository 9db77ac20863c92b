"""Source panel: pick a source, connect or disconnect it, watch its status and counters."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.controller import SourceController
from app.state import AppState
from app.workers import Task

STATUS_COLOURS = {
    "idle": "#6b7280",
    "connecting": "#b7791f",
    "streaming": "#15803d",
    "lost": "#b91c1c",
    "stopped": "#6b7280",
    "disconnected": "#6b7280",
}

KIND_LABELS = (("simulated", "Simulated EPOC+"), ("lsl", "LSL stream"), ("brainflow", "BrainFlow board"),
               ("replay", "Replay file"))


def discover_lsl_streams(wait_time_s: float = 1.0) -> list[dict[str, object]]:
    """Streams visible on the network (runs in a worker: it blocks for ``wait_time_s``)."""
    import pylsl

    out = []
    for info in pylsl.resolve_streams(wait_time=wait_time_s):
        out.append({
            "name": info.name(), "type": info.type(), "channels": info.channel_count(),
            "sfreq_hz": info.nominal_srate(), "source_id": info.source_id(), "host": info.hostname(),
        })
    return out


def _board_names() -> list[str]:
    from acquisition.sources.brainflow import board_ids

    first = ["SYNTHETIC_BOARD", "PLAYBACK_FILE_BOARD", "STREAMING_BOARD"]
    return first + sorted(n for n in board_ids() if n not in first)


def status_badge_css(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#6b7280")
    return (f"QLabel {{ background: {colour}; color: white; border-radius: 9px; padding: 3px 10px;"
            " font-weight: bold; }")


class SourcePanel(QWidget):
    """Choose and connect a source; shows status, rate and counters (refreshed by a timer)."""

    streams_found = Signal(list)

    def __init__(self, controller: SourceController, state: AppState | None = None, refresh_ms: int = 250,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.state = state
        self._streams: list[dict[str, object]] = []
        self._discover_task: Task | None = None
        self._rate_hist: list[tuple[float, int]] = []
        self._counters_grey = False

        lay = QVBoxLayout(self)
        box = QGroupBox("Source")
        form = QVBoxLayout(box)
        self.kind = QComboBox()
        for key, label in KIND_LABELS:
            self.kind.addItem(label, key)
        form.addWidget(self.kind)

        self.pages = QStackedWidget()
        # simulated
        sim = QWidget()
        f = QFormLayout(sim)
        self.sim_seed = QSpinBox()
        self.sim_seed.setRange(0, 99999)
        self.sim_speed = QDoubleSpinBox()
        self.sim_speed.setRange(0.1, 50.0)
        self.sim_speed.setValue(1.0)
        self.sim_speed.setSuffix(" x")
        # shown, not a second control: the session's time scale sets it
        self.sim_speed.setReadOnly(True)
        self.sim_speed.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)
        self.sim_speed.setToolTip("The simulated headset runs at the Session tab's time scale")
        f.addRow("Seed", self.sim_seed)
        f.addRow("Speed", self.sim_speed)
        speed_note = QLabel("= the session's time scale")
        speed_note.setStyleSheet("color: #6b7280;")
        f.addRow("", speed_note)
        self.pages.addWidget(sim)
        # lsl
        lsl = QWidget()
        f = QFormLayout(lsl)
        row = QHBoxLayout()
        self.lsl_streams = QComboBox()
        self.lsl_streams.setEditable(True)
        self.lsl_streams.setToolTip("An EEG stream name, or type=EEG for the first EEG stream")
        self.lsl_streams.setEditText("type=EEG")
        self.lsl_refresh = QPushButton("Find")
        self.lsl_refresh.setToolTip("Look for LSL streams on the network (in the background)")
        row.addWidget(self.lsl_streams, 1)
        row.addWidget(self.lsl_refresh)
        f.addRow("Stream", row)
        self.pages.addWidget(lsl)
        # brainflow: the board by name, and the BrainFlowInputParams it may need
        bf = QWidget()
        f = QFormLayout(bf)
        self.bf_board = QComboBox()
        self.bf_board.setEditable(True)
        self.bf_board.setToolTip("A BrainFlow board (BoardIds name, or an id)")
        for name in ("SYNTHETIC_BOARD", "PLAYBACK_FILE_BOARD", "STREAMING_BOARD"):
            self.bf_board.addItem(name)
        f.addRow("Board", self.bf_board)
        self.bf_params: dict[str, QLineEdit] = {}
        hints = {"serial_port": "/dev/ttyUSB0", "ip_address": "192.168.4.1", "ip_port": "6677",
                 "mac_address": "", "serial_number": "", "file": "a BrainFlow recording (playback board)",
                 "master_board": "SYNTHETIC_BOARD (playback and streaming boards)", "timeout": "s",
                 "other_info": ""}
        for key, hint in hints.items():
            edit = QLineEdit()
            edit.setPlaceholderText(hint)
            self.bf_params[key] = edit
            f.addRow(key.replace("_", " "), edit)
        self.pages.addWidget(bf)
        # replay
        rp = QWidget()
        f = QFormLayout(rp)
        row = QHBoxLayout()
        self.replay_path = QLineEdit()
        self.replay_path.setPlaceholderText("CSV, EDF or a recorded session")
        browse = QPushButton("Browse")
        browse.clicked.connect(self._browse)
        row.addWidget(self.replay_path, 1)
        row.addWidget(browse)
        f.addRow("File", row)
        self.replay_speed = QDoubleSpinBox()
        self.replay_speed.setRange(0.1, 100.0)
        self.replay_speed.setValue(1.0)
        self.replay_speed.setSuffix(" x")
        f.addRow("Speed", self.replay_speed)
        self.pages.addWidget(rp)
        form.addWidget(self.pages)

        buttons = QHBoxLayout()
        self.connect_button = QPushButton("Connect")
        self.connect_button.setObjectName("primary")
        self.disconnect_button = QPushButton("Disconnect")
        buttons.addWidget(self.connect_button)
        buttons.addWidget(self.disconnect_button)
        form.addLayout(buttons)
        lay.addWidget(box)

        stat = QGroupBox("Status")
        grid = QGridLayout(stat)
        self.status_label = QLabel("disconnected")
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.status_label.setStyleSheet(status_badge_css("disconnected"))
        grid.addWidget(self.status_label, 0, 0, 1, 2)
        self.device_label = QLabel("—")
        self.device_label.setWordWrap(True)
        grid.addWidget(self.device_label, 1, 0, 1, 2)
        self.counter_labels: dict[str, QLabel] = {}
        for i, key in enumerate(("rate", "received", "lost", "interpolated", "reconnects", "gaps")):
            name = QLabel(key.capitalize())
            name.setStyleSheet("color: #4b5563;")
            value = QLabel("—")
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            value.setStyleSheet("font-family: monospace;")
            grid.addWidget(name, 2 + i, 0)
            grid.addWidget(value, 2 + i, 1)
            self.counter_labels[key] = value
        lay.addWidget(stat)
        lay.addStretch(1)

        self.kind.currentIndexChanged.connect(self.pages.setCurrentIndex)
        self.connect_button.clicked.connect(self.connect_selected)
        self.disconnect_button.clicked.connect(controller.disconnect)
        self.lsl_refresh.clicked.connect(self.discover)
        controller.busy_changed.connect(self._update_buttons)
        controller.source_changed.connect(lambda _s: self._update_buttons())
        controller.source_changed.connect(self._show_connected_kind)
        self._update_buttons()

        self.timer = QTimer(self)
        self.timer.setInterval(refresh_ms)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self._speed_timer = QTimer(self)
        self._speed_timer.setSingleShot(True)
        self._speed_timer.setInterval(600)  # typing 20 passes 2: reconnect once, when it settles
        self._speed_timer.timeout.connect(self.follow_time_scale)
        if state is not None:
            state.time_scale_changed.connect(self._time_scale_changed)
        controller.pool.submit("brainflow boards", lambda _t: _board_names(), on_result=self._fill_boards)

    def _fill_boards(self, names: list[str]) -> None:
        """Every board BrainFlow knows, by name (listed in a worker: loading BrainFlow's
        library takes a moment)."""
        current = self.bf_board.currentText()
        self.bf_board.clear()
        self.bf_board.addItems(names)
        self.bf_board.setCurrentText(current)

    # -- actions ------------------------------------------------------------------------
    def spec(self) -> str:
        """The source spec the panel describes."""
        kind = self.kind.currentData()
        if kind == "simulated":
            return f"simulated:{self.sim_seed.value()}"
        if kind == "lsl":
            text = self.lsl_streams.currentText().strip()
            name = text.split("  (")[0].strip() if text else "type=EEG"
            return f"lsl:{name}"
        if kind == "brainflow":
            board = self.bf_board.currentText().strip() or "SYNTHETIC_BOARD"
            params = "&".join(f"{k}={e.text().strip()}" for k, e in self.bf_params.items() if e.text().strip())
            return f"brainflow:{board}" + (f"?{params}" if params else "")
        speed = self.replay_speed.value()
        return f"replay:{self.replay_path.text().strip()}@{speed:g}"

    def set_kind(self, kind: str) -> None:
        for i in range(self.kind.count()):
            if self.kind.itemData(i) == kind:
                self.kind.setCurrentIndex(i)

    # -- one speed control: the session's time scale is the simulated headset's speed -------
    def _time_scale_changed(self, scale: float) -> None:
        self.sim_speed.setValue(scale)
        self._speed_timer.start()

    def follow_time_scale(self) -> None:
        """Reconnect the simulated headset at the session's time scale (never mid-session)."""
        if self.state is None:
            return
        src, scale = self.controller.source, self.state.time_scale
        if src is None or src.kind != "simulated" or self.controller.busy:
            return
        if abs(float(getattr(src, "speed", scale)) - scale) < 1e-9:
            return
        if self.state.session_context.running:
            return
        self.controller.notes.notify(f"the simulated headset now runs at {scale:g}x (the session's time scale)",
                                     "info")
        self.controller.connect_spec(self.controller.spec, speed=scale)

    def connect_selected(self) -> Task | None:
        kind = self.kind.currentData()
        if kind == "replay" and not self.replay_path.text().strip():
            self.controller.notes.warning("choose a file to replay first")
            return None
        kwargs: dict[str, object] = {}
        if kind == "simulated":
            kwargs["speed"] = self.sim_speed.value()
        return self.controller.connect_spec(self.spec(), **kwargs)

    def discover(self) -> Task:
        """Look for LSL streams in a worker; the combo box fills when it is done."""
        self.lsl_refresh.setEnabled(False)
        self.lsl_refresh.setText("…")

        def done(streams: list[dict[str, object]]) -> None:
            self._streams = streams
            current = self.lsl_streams.currentText()
            self.lsl_streams.clear()
            for s in streams:
                self.lsl_streams.addItem(f"{s['name']}  ({s['type']}, {s['channels']} ch, {s['sfreq_hz']:g} Hz)",
                                         s["name"])
            if not streams:
                self.controller.notes.notify("no LSL streams found on the network", "warning")
                self.lsl_streams.setEditText(current)
            self.streams_found.emit(streams)

        def finish() -> None:
            self.lsl_refresh.setEnabled(True)
            self.lsl_refresh.setText("Find")

        self._discover_task = self.controller.pool.submit(
            "find LSL streams", lambda _t: discover_lsl_streams(1.0), on_result=done, on_done=finish)
        return self._discover_task

    def _browse(self) -> None:
        from app.dirs import user_folder

        path, _ = QFileDialog.getOpenFileName(self, "Replay a recording", str(user_folder()),
                                              "Recordings (*.csv *.edf *.bdf *.sqlite *.fif);;All files (*)")
        if path:
            self.replay_path.setText(path)

    def _show_connected_kind(self, source: object) -> None:
        """The panel names the source that is connected (a replay started from the Replay
        tab is a replay here too, not the simulated headset chosen before)."""
        kind = getattr(source, "kind", None)
        if kind is None:
            return
        self.set_kind(str(kind))
        spec = self.controller.spec
        if kind == "replay" and spec.startswith("replay:"):
            target, _, speed = spec[len("replay:"):].rpartition("@")
            self.replay_path.setText(target or speed)
            try:
                self.replay_speed.setValue(float(speed))
            except ValueError:
                pass

    # -- display ------------------------------------------------------------------------
    def _update_buttons(self, *_args: object) -> None:
        busy = self.controller.busy
        has = self.controller.source is not None
        self.connect_button.setEnabled(not busy)
        self.connect_button.setText("Connecting…" if busy and not has else ("Reconnect" if has else "Connect"))
        self.disconnect_button.setEnabled(has and not busy)

    def refresh(self) -> None:
        src = self.controller.source
        if src is None:
            status = "connecting" if self.controller.busy else "disconnected"
            self.status_label.setText(status)
            self.status_label.setStyleSheet(status_badge_css(status))
            self._rate_hist.clear()
            if not self.controller.busy:
                self.device_label.setText("—")
            for label in self.counter_labels.values():  # nothing is measured: no figure stays
                label.setText("—")
            self._grey_counters(True)
            return
        stats = src.stats()
        status = str(stats["status"])
        if status == "connecting" and int(stats["reconnects"]) > 0:  # type: ignore[call-overload]
            status_text = "reconnecting"
        else:
            status_text = status
        self.status_label.setText(status_text)
        self.status_label.setStyleSheet(status_badge_css(status))
        dev = src.info
        if dev is not None:
            mapping = ""
            if dev.channel_map:  # the device's own electrodes stand in for the EPOC ones
                pairs = ", ".join(f"{epoc}←{own}" for epoc, own in dev.channel_map.items())
                mapping = f"<br><span style='color:#b45309'>channels used as EPOC+: {pairs}</span>"
            self.device_label.setText(f"<b>{dev.name}</b><br>{self.controller.spec}<br>"
                                      f"native {dev.native_sfreq_hz:g} Hz → {src.sfreq_hz:g} Hz{mapping}")
        now = time.monotonic()
        received = int(stats["received"])  # type: ignore[call-overload]
        self._rate_hist.append((now, received))
        self._rate_hist = [(t, n) for t, n in self._rate_hist if now - t <= 2.0]
        t0, n0 = self._rate_hist[0]
        rate = (received - n0) / (now - t0) if now - t0 > 0.2 else float("nan")
        live = status == "streaming"
        self.counter_labels["rate"].setText("—" if rate != rate or not live else f"{rate:.1f} Hz")
        for key in ("received", "lost", "interpolated", "reconnects", "gaps"):
            self.counter_labels[key].setText(f"{int(stats[key]):,}")  # type: ignore[call-overload]
        self._grey_counters(not live)  # the totals stay, greyed, once nothing arrives

    def _grey_counters(self, grey: bool) -> None:
        if grey == self._counters_grey:
            return  # a style sheet change re-polishes the widget: only when it changes
        self._counters_grey = grey
        for label in self.counter_labels.values():
            label.setStyleSheet("font-family: monospace;" + (" color: #9ca3af;" if grey else ""))
