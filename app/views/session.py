"""The operator's session view: participant, protocol + preflight, progress, controls, log.

The session runner (:mod:`acquisition.session.runner`, no Qt) runs in its own thread; it reports
events through a listener (re-emitted here as a Qt signal, so the view only changes on
the GUI thread) and asks for labels through a prompt callback that opens the question
on the :class:`~app.widgets.label_screen.LabelPrompt` and waits for the participant.
The view publishes the session's events and live context on the
:class:`~app.state.AppState`, which the other views follow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from acquisition.sources.base import BaseSource
from app.state import AppState, is_simulated
from app.views.common import class_colour
from app.widgets.label_screen import LabelKeys, LabelPrompt, LabelScreen, LabelWindow
from app.workers import Task

PHASE_COLOURS = {"baseline": "#6b7280", "music": "#2563eb", "silence": "#0d9488", "label": "#7c3aed",
                 "paused": "#b45309", "done": "#15803d", "aborted": "#b91c1c", "interrupted": "#b91c1c",
                 "failed": "#7f1d1d", "idle": "#6b7280", "starting": "#b45309"}


class SessionView(QWidget):
    """Runs a listening session on the current source and shows its progress."""

    event_received = Signal(object)  # runner events, delivered on the GUI thread
    session_finished = Signal(object)  # result or error text

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.source: BaseSource | None = None
        self.runner: Any = None
        self.run_task: Task | None = None
        self.session_id: int | None = None
        self.protocol: Any = None
        self.prompt = LabelPrompt(parent=self)
        self.label_window: LabelWindow | None = None
        self.markers_enabled = True  # publish markers on an LSL outlet
        self.phase = "idle"
        self.phase_end: float | None = None
        self.trial_k = 0
        self.trial_n = 0
        self.events: list[Any] = []
        self.reports: list[tuple[str, str | None, str]] = []  # (stimulus id, intended, reported)
        self._interrupting = False
        self._current_intended: str | None = None
        self._current_stimulus: str | None = None
        self._current_title: str | None = None
        #: asks the operator ``(title, question)``, True to go ahead; tests replace it
        self.confirm: Callable[[str, str], bool] = self._ask_operator

        # -- set-up
        setup = QGroupBox("Session set-up")
        form = QFormLayout(setup)
        self.participant = QLineEdit()
        self.participant.setPlaceholderText("pseudonymous id, e.g. P01 (no names)")
        form.addRow("Participant", self.participant)
        prow = QHBoxLayout()
        self.protocol_path = QLineEdit(str(state.protocol_path))
        self.browse_button = browse = QPushButton("Browse")
        browse.clicked.connect(self._browse)
        self.check_button = QPushButton("Preflight")
        prow.addWidget(self.protocol_path, 1)
        prow.addWidget(browse)
        prow.addWidget(self.check_button)
        form.addRow("Protocol", prow)
        self.preflight_label = QLabel("not checked")
        self.preflight_label.setWordWrap(True)
        form.addRow("", self.preflight_label)
        self.labels_mode = QComboBox()
        self.labels_mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.labels_mode.setMinimumContentsLength(16)
        self.labels_mode.addItem("Participant answers on the label screen", "prompt")
        self.labels_mode.addItem("Automatic (intended emotion; demo)", "auto")
        form.addRow("Labels", self.labels_mode)
        self.time_scale = QDoubleSpinBox()
        self.time_scale.setRange(1.0, 1000.0)
        self.time_scale.setDecimals(1)
        self.time_scale.setValue(1.0)
        self.time_scale.setSuffix(" x")
        self.time_scale.setToolTip("Every duration is divided by this (1 = a real session; larger for demos "
                                   "and tests). The simulated headset runs at this speed too.")
        self.time_scale_note = QLabel("")
        self.time_scale_note.setWordWrap(True)
        timing = QHBoxLayout()  # one row: a low screen keeps room for the log
        timing.addWidget(self.time_scale)
        timing.addSpacing(12)
        timing.addWidget(QLabel("Max outage"))
        self.max_outage = QDoubleSpinBox()
        self.max_outage.setRange(5.0, 3600.0)
        self.max_outage.setDecimals(0)
        self.max_outage.setValue(float(state.settings.max_outage_s))
        self.max_outage.setSuffix(" s")
        self.max_outage.setToolTip("A fault (source lost, store not writable, audio output gone, stimulus "
                                   "unreadable) pauses the session, which resumes by itself when it clears; "
                                   "one lasting longer than this ends the session as failed")
        timing.addWidget(self.max_outage)
        timing.addStretch(1)
        form.addRow("Time scale", timing)
        form.addRow("", self.time_scale_note)
        self.audio = QCheckBox("Play the stimuli through the audio output")
        self.audio.setChecked(True)
        form.addRow("", self.audio)

        ctl = QHBoxLayout()
        self.start_button = QPushButton("Start session")
        self.start_button.setObjectName("primary")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Resume an operator pause; during a fault, check it again now "
                                      "(the session also resumes by itself when the fault clears)")
        self.abort_button = QPushButton("Abort")
        self.abort_button.setObjectName("danger")
        for b in (self.start_button, self.pause_button, self.resume_button, self.abort_button):
            ctl.addWidget(b)

        # -- progress
        prog = QGroupBox("Progress")
        pl = QVBoxLayout(prog)
        self.trial_label = QLabel("no session running")
        self.trial_label.setStyleSheet("font-size: 15pt; font-weight: bold;")
        pl.addWidget(self.trial_label)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        pl.addWidget(self.progress)
        row = QHBoxLayout()
        self.phase_label = QLabel("idle")
        self.countdown = QLabel("")
        self.countdown.setStyleSheet("font-size: 20pt; font-family: monospace;")
        row.addWidget(self.phase_label)
        row.addStretch(1)
        row.addWidget(self.countdown)
        pl.addLayout(row)
        self.fault_label = QLabel("")
        self.fault_label.setWordWrap(True)
        self.fault_label.setStyleSheet("color: #b45309; font-weight: bold;")
        self.fault_label.hide()
        pl.addWidget(self.fault_label)
        self.playing = QLabel("—")
        self.playing.setWordWrap(True)
        self.playing.setStyleSheet("color: #374151;")
        playing_row = QHBoxLayout()
        playing_row.addWidget(QLabel("Now playing (operator only):"))
        playing_row.addWidget(self.playing, 1)
        pl.addLayout(playing_row)

        self.log = QListWidget()
        self.log.setStyleSheet("font-family: monospace; font-size: 9.5pt;")
        log_box = QGroupBox("Event log")
        QVBoxLayout(log_box).addWidget(self.log)

        left = _ColumnLayout()
        left.addWidget(setup)
        left.addLayout(ctl)
        left.addWidget(prog)
        left.addWidget(log_box, 1)
        left_w = _Column()
        left_w.setLayout(left)
        self.log.setMinimumHeight(110)  # the log keeps a few lines; on a low screen the column scrolls
        left_scroll = _ColumnScroll()
        left_scroll.setWidgetResizable(True)
        left_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left_scroll.setWidget(left_w)

        label_box = QGroupBox("Participant's label screen")
        ll = QVBoxLayout(label_box)
        self.label_screen = LabelScreen(self.prompt)
        ll.addWidget(self.label_screen, 1)
        self.fullscreen_button = QPushButton("Full screen  [F11]")
        self.fullscreen_button.setToolTip("Open the label screen on its own (the last) monitor, full screen")
        ll.addWidget(self.fullscreen_button)

        split = QSplitter()
        split.setChildrenCollapsible(False)
        split.addWidget(left_scroll)
        split.addWidget(label_box)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.addWidget(split)

        self.check_button.clicked.connect(self.run_preflight)
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.abort_button.clicked.connect(self.abort)
        self.fullscreen_button.clicked.connect(self.open_label_window)
        self.prompt.answered.connect(self._on_answer)
        self.prompt.chosen.connect(self._on_chosen)
        self.prompt.undone.connect(
            lambda label: self.log_event(f"the participant took back {label!r}", PHASE_COLOURS["label"]))
        # keys 1-4 answer the prompt wherever the focus is, in this view's window and the label window
        self.label_keys = LabelKeys(self.prompt, self._label_screens, parent=self)
        self.label_keys.ignored_key.connect(
            lambda n: self.log_event(f"key {n} pressed with no question open: ignored", "#6b7280"))
        self.event_received.connect(self._on_event)
        self.timer = QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        self.protocol_path.textChanged.connect(self._protocol_edited)
        self.time_scale.valueChanged.connect(self._time_scale_edited)
        state.source_changed.connect(self.set_source)
        self._update_buttons()

    # -- set-up ------------------------------------------------------------------------
    def set_source(self, source: BaseSource | None) -> None:
        self.source = source
        if self.label_window is not None:
            self.label_window.set_simulated(is_simulated(source))
        self._update_buttons()
        self._time_scale_edited(self.time_scale.value())

    def _time_scale_edited(self, value: float) -> None:
        """One speed: the simulated headset follows the time scale; for any other source a
        time scale above 1 is a demo only, and says so."""
        self.state.set_time_scale(float(value))
        src = self.source
        if src is not None and src.kind == "simulated":
            self.time_scale_note.setText(f"<span style='color:#4b5563'>the simulated headset runs at {value:g}x "
                                         "(it follows this setting)</span>")
        elif value != 1.0:
            self.time_scale_note.setText("<span style='color:#b45309'><b>demo only:</b> a real source streams in "
                                         f"real time, so at {value:g}x each trial gets 1/{value:g} of its EEG</span>")
        else:
            self.time_scale_note.setText("")

    def _protocol_edited(self, text: str) -> None:
        if text.strip():
            self.state.set_protocol_path(Path(text.strip()))

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Protocol", str(Path(self.protocol_path.text()).parent),
                                              "Protocol (*.toml)")
        if path:
            self.protocol_path.setText(path)

    def _label_screens(self) -> list[LabelScreen]:
        screens = [self.label_screen]
        if self.label_window is not None:
            screens.append(self.label_window.screen_widget)
        return screens

    def _on_chosen(self, label: str) -> None:
        undo = self.prompt.undo_s
        self.log_event(f"the participant chose {label!r}" + (f" (committed in {undo:g} s unless undone)"
                                                               if self.prompt.pending else ""),
                       PHASE_COLOURS["label"])

    def open_label_window(self) -> LabelWindow:
        if self.label_window is None:
            self.label_window = LabelWindow(self.prompt, parent=self.window())
        self.label_window.set_simulated(is_simulated(self.source))
        self.label_window.open(full_screen=True)
        return self.label_window

    def log_event(self, text: str, colour: str | None = None) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.log.addItem(f"{stamp}  {text}")
        if colour:
            self.log.item(self.log.count() - 1).setForeground(_brush(colour))
        self.log.scrollToBottom()

    def run_preflight(self) -> Task:
        """Load the protocol and run the preflight check in a worker."""
        path = Path(self.protocol_path.text().strip())
        audio = self.audio.isChecked()
        store_dir = self.state.store_path.parent

        def job(_task: Task) -> tuple[Any, Any]:
            from acquisition.session.protocol import load_protocol, preflight

            protocol = load_protocol(path)
            from app.session_driver import audio_check

            check = audio_check() if audio else None
            report = preflight(protocol, audio_check=check, store_dir=store_dir, raise_on_error=False)
            return protocol, report

        def done(out: tuple[Any, Any]) -> None:
            protocol, report = out
            self.protocol = protocol
            self.prompt.labels = tuple(protocol.labels)
            self.prompt.changed.emit()
            if report.ok:
                audio_text = f", audio: {report.audio_output}" if report.audio_output else ""
                self.preflight_label.setText(
                    f"<span style='color:#15803d'><b>ready</b></span> — {protocol.name}: "
                    f"{len(protocol.stimuli)} stimuli, {protocol.expected_duration_s() / 60:.1f} min{audio_text}")
                self.log_event(f"preflight ok: {protocol.name}", "#15803d")
            else:
                self.preflight_label.setText("<span style='color:#b91c1c'><b>not ready</b></span><br>"
                                             + "<br>".join(report.problems[:6]))
                for p in report.problems:
                    self.log_event(f"preflight: {p}", "#b91c1c")
                self.state.notes.warning(f"preflight found {len(report.problems)} problem(s): {report.problems[0]}")

        def failed(msg: str) -> None:
            self.protocol = None
            self.preflight_label.setText(f"<span style='color:#b91c1c'><b>error</b></span> {msg}")

        self.preflight_label.setText("checking…")
        return self.state.pool.submit("preflight", job, on_result=done, on_error=failed)

    # -- running -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.run_task is not None and not self.run_task.is_done

    def _update_buttons(self) -> None:
        running = self.running
        paused = self.phase == "paused"
        self.start_button.setEnabled(not running and self.source is not None)
        self.start_button.setToolTip("" if self.source is not None else "connect a source first")
        self.pause_button.setEnabled(running and not paused)
        self.resume_button.setEnabled(running and paused)
        self.abort_button.setEnabled(running)
        faulted = bool(self.runner is not None and self.runner.faults)
        self.resume_button.setText("Resume now" if faulted else "Resume")
        self.abort_button.setText("End session" if faulted else "Abort")
        for w in (self.participant, self.protocol_path, self.browse_button, self.labels_mode, self.time_scale,
                  self.audio, self.check_button, self.max_outage):
            w.setEnabled(not running)

    def start(self) -> Task | None:
        """Start a session on the current source (the runner runs in a worker thread)."""
        notes = self.state.notes
        if self.running:
            notes.warning("a session is already running")
            return None
        if self.source is None:
            notes.warning("connect a source before starting a session")
            return None
        participant = self.participant.text().strip()
        if not participant:
            notes.warning("enter a participant id first")
            return None
        from acquisition.errors import StoreError
        from acquisition.store.sqlite import validate_participant

        try:  # before anything mentions the id: a refused one may be a name
            validate_participant(participant, self.state.settings.participant_pattern)
        except StoreError as exc:
            notes.warning(str(exc))
            return None
        scale = float(self.time_scale.value())
        speed = getattr(self.source, "speed", None)
        if self.source.kind == "simulated" and speed is not None and abs(float(speed) - scale) > 1e-9:
            notes.warning(f"the simulated headset runs at {float(speed):g}x, the session at {scale:g}x: it is "
                          "being reconnected at the session's speed; start again once it streams")
            self.state.set_time_scale(scale, resync=True)  # the source panel reconnects it at that speed
            return None
        path = Path(self.protocol_path.text().strip())
        options = {
            "participant": participant, "protocol_path": path, "time_scale": float(self.time_scale.value()),
            "labels": str(self.labels_mode.currentData()), "audio": self.audio.isChecked(),
            "store_path": self.state.store_path, "source": self.source, "spec": self.state.source_spec,
            "markers": self.markers_enabled, "marker_outlet": self.state.marker_outlet,
            "max_outage_s": float(self.max_outage.value()),
        }
        self._interrupting = False
        self.prompt.clear()
        self.label_keys.enable(True)  # keys 1-4 belong to the prompt while the session runs
        self.events.clear()
        self.reports.clear()
        self.trial_k, self.trial_n = 0, 0
        self.session_id = None
        self._set_phase("starting", None)
        self.state.clear_session_context()
        self.state.update_session_context(running=True)  # from now on nothing reconnects the source
        self.state.set_session_source(self.source, self.state.source_spec)  # but the operator's Connect
        self.log_event(f"starting session for {participant} with {path.name}")
        self.run_task = self.state.pool.submit(
            f"session {participant}", lambda task: self._run_session(task, options),
            on_result=self._on_finished, on_error=self._on_failed, on_done=self._update_buttons)
        self._update_buttons()
        return self.run_task

    def _run_session(self, task: Task, options: dict[str, Any]) -> Any:
        from app.session_driver import run_session

        return run_session(options, on_event=self.event_received.emit, set_runner=self._set_runner,
                           interrupted=lambda: self._interrupting)

    def _set_runner(self, runner: Any) -> None:
        self.runner = runner

    def _on_answer(self, label: str, valence: Any, arousal: Any) -> None:
        """The participant answered on a label screen: hand it to the runner."""
        from acquisition.errors import DuyguError

        runner = self.runner
        if runner is None:
            return
        try:
            runner.submit_label(label, valence, arousal)
        except DuyguError as exc:
            self.state.notes.error(f"label not accepted: {exc}")

    def _control(self, what: str, call: Callable[[], Any]) -> Task:
        """Run a runner control in a worker: pausing or aborting stops the player, and
        resuming re-checks faults (the audio device, the store), which may block."""
        return self.state.pool.submit(f"{what} the session", lambda _task: call())

    def pause(self) -> None:
        runner = self.runner
        if runner is not None:
            self._control("pause", runner.pause)  # its "paused" event is logged (once)

    def resume(self) -> None:
        runner = self.runner
        if runner is not None:
            self._control("resume", runner.resume)  # its "resumed" event is logged (once)

    def _ask_operator(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes
                                      | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def confirm_end(self, why: str = "abort") -> bool:
        """Ask before a running session ends (``why``: ``"abort"`` or ``"close"``); True
        when nothing runs or the operator agrees."""
        if not self.running:
            return True
        if why == "close":
            title, text = ("Quit during a session?", "A session is running. Quit and store it as "
                           "<b>interrupted</b> (everything recorded so far is kept)?")
        else:
            title, text = ("End the session?", "End the running session now? It is stored as "
                           "<b>aborted</b> (everything recorded so far is kept).")
        if self.confirm(title, text):
            return True
        self.log_event("the session goes on (ending it was cancelled)", "#6b7280")
        return False

    def abort(self) -> None:
        """Abort (or, during a fault, end) the running session, once the operator confirms."""
        if not self.confirm_end("abort"):
            return
        runner = self.runner
        if runner is not None:
            self._control("abort", runner.abort)
        self.prompt.close()
        self.log_event("abort requested", PHASE_COLOURS["aborted"])

    # -- events ------------------------------------------------------------------------
    def _set_phase(self, phase: str, duration_s: float | None) -> None:
        self.phase = phase
        self.phase_end = None if duration_s is None else time.monotonic() + duration_s
        colour = PHASE_COLOURS.get(phase, "#111827")
        self.phase_label.setText(phase)
        self.phase_label.setStyleSheet(f"QLabel {{ background: {colour}; color: white; border-radius: 8px;"
                                       " padding: 3px 12px; font-weight: bold; font-size: 12pt; }")
        self._update_buttons()

    def _phase_duration(self, state: str) -> float | None:
        runner, protocol = self.runner, self.protocol
        if runner is None or protocol is None:
            return None
        seconds = {"baseline": protocol.baseline_s, "stimulus": protocol.music_s,
                   "silence": protocol.silence_s}.get(state)
        return None if seconds is None else float(runner.scaled(seconds))

    def _on_event(self, event: Any) -> None:
        """Show one :class:`~acquisition.session.runner.RunnerEvent` (GUI thread)."""
        self.events.append(event)
        runner = self.runner
        if runner is not None:
            self.protocol = runner.protocol
            if runner.session_id is not None:
                self.session_id = int(runner.session_id)
        kind = event.kind
        self.trial_n = int(event.n_trials or self.trial_n)
        if event.trial is not None:
            self.trial_k = int(event.trial) + 1
        stim = None
        if event.stimulus_id and self.protocol is not None:
            try:
                stim = self.protocol.stimulus(event.stimulus_id)
            except Exception:  # an id the protocol does not know: show the id only
                stim = None
        if kind == "state":
            state = str(event.state)
            phase = {"stimulus": "music", "completed": "done"}.get(state, state)
            self._set_phase(phase, self._phase_duration(state))
            if state == "silence":
                self.state.update_session_context(playing="(silence)")
            self.state.publish_session_event(event)
            return
        colour: str | None = None
        text = event.message or kind.replace("_", " ")
        if kind == "trial_start":
            title = (stim.title or stim.id) if stim is not None else str(event.stimulus_id)
            detail = f"{title} · {stim.genre} · intended {stim.emotion}" if stim is not None else title
            self.playing.setText(detail)
            self._current_stimulus = event.stimulus_id
            self._current_title = title
            self._current_intended = stim.emotion if stim is not None else None
            # the last report stays until the next one (it names the piece it was for)
            self.state.update_session_context(session_id=self.session_id, running=True, playing=title,
                                              intended=self._current_intended)
            text = f"trial {self.trial_k}/{self.trial_n}: {detail}"
        elif kind == "stim_on":
            text = f"stimulus on: {event.stimulus_id}"
            colour = PHASE_COLOURS["music"]
        elif kind == "stim_off":
            text = f"stimulus off: {event.stimulus_id}"
        elif kind == "label_prompt":
            sam = bool(getattr(self.protocol, "sam", False))
            self.prompt.ask(labels=tuple(event.labels) or None, trial_text=f"piece {self.trial_k} of {self.trial_n}",
                            sam=sam)
            text = "waiting for the participant's answer"
            colour = PHASE_COLOURS["label"]
        elif kind == "label":
            label = str(event.label)
            intended = stim.emotion if stim is not None else None
            self.reports.append((str(event.stimulus_id), intended, label))
            self.prompt.close()
            self.state.update_session_context(reported=label, reported_for=self._current_title)
            text = f"label: {label}" + (f" (intended {intended})" if intended else "")
            colour = class_colour(label)
        elif kind == "trial_end":
            self.state.publish_session_event(event)
            return
        elif kind == "paused":
            colour = PHASE_COLOURS["paused"]
            text = f"paused: {event.message or 'operator'}"
        elif kind == "resumed":
            colour = PHASE_COLOURS["music"]
            self.fault_label.hide()
        elif kind == "fault":
            colour = PHASE_COLOURS["aborted"]
            self.state.notes.warning(f"session paused: {event.message}")
            limit = float(runner.max_outage_s) if runner is not None else float(self.max_outage.value())
            self.fault_label.setText(f"Paused by a fault: {event.message}. The session resumes by itself when "
                                     f"it clears, and fails after {limit:g} s. Resume now checks again; "
                                     "End session ends it.")
            self.fault_label.show()
        elif kind == "fault_cleared":
            text = event.message
        elif kind == "quality_error":  # the headset's contact-quality stream failed
            colour = PHASE_COLOURS["paused"]
            text = event.message
        elif kind in ("store_error", "source_lost"):
            return  # the same fault, already shown by its "fault" event
        elif kind == "trial_interrupted":
            colour = PHASE_COLOURS["paused"]
            text = f"trial {self.trial_k} interrupted ({event.message})" + (
                "; it will be repeated" if event.repeated else "")
        elif kind == "failed":
            colour = PHASE_COLOURS["failed"]
            text = f"session failed: {event.message}"
        elif kind == "session_start":
            colour = PHASE_COLOURS["done"]
            self.state.update_session_context(session_id=self.session_id, running=True)
        self.log_event(text, colour)
        self.progress.setValue(int(1000 * float(event.progress)))
        self._update_progress()
        self.state.publish_session_event(event)

    def _update_progress(self) -> None:
        if self.trial_n:
            self.trial_label.setText(f"Trial {min(max(self.trial_k, 1), self.trial_n)} of {self.trial_n}"
                                     + (f"  ·  session #{self.session_id}" if self.session_id else ""))

    def _tick(self) -> None:
        if self.phase_end is None or self.phase == "paused":
            self.countdown.setText("")
            return
        left = max(0.0, self.phase_end - time.monotonic())
        self.countdown.setText(f"{left:5.1f} s")

    def _on_finished(self, result: Any) -> None:
        self.state.set_session_source(None)
        status = str(result.status)
        self.fault_label.hide()
        self.session_id = int(result.session_id)
        labelled = sum(1 for t in result.trials if t.label)
        text = f"session #{result.session_id} {status}: {labelled} labelled trial(s)"
        self._set_phase({"completed": "done"}.get(status, status), None)
        if status == "completed":
            self.progress.setValue(1000)
        if status == "failed" and result.reason:
            text += f" — {result.reason}"
        self.log_event(text, PHASE_COLOURS.get({"completed": "done"}.get(status, status)))
        for msg in result.messages:
            self.log_event(msg, PHASE_COLOURS["aborted"])
        self.state.notes.notify(text, "success" if status == "completed" else "warning")
        self.prompt.close()
        self.label_keys.enable(False)
        self.runner = None
        self._update_progress()
        self.state.clear_session_context()
        self.state.publish_session_finished(result)
        self.session_finished.emit(result)

    def _on_failed(self, message: str) -> None:
        self.state.set_session_source(None)
        self._set_phase("aborted", None)
        self.log_event(message, PHASE_COLOURS["aborted"])
        self.prompt.close()
        self.label_keys.enable(False)
        self.runner = None
        self.state.clear_session_context()
        self.state.publish_session_finished(message)
        self.session_finished.emit(message)

    def shutdown(self) -> None:
        """Window closing: stop the session; it is stored as ``interrupted``."""
        self.timer.stop()
        self.label_keys.enable(False)
        if self.running:
            self._interrupting = True
            if self.runner is not None:
                self.runner.interrupt()
            self.prompt.close()
            if self.run_task is not None:
                self.run_task.wait(20.0)
        if self.label_window is not None:
            self.label_window.deleteLater()


class _Column(QWidget):
    """The left column: its scroll area fits it to the view's height (down to its minimum),
    not to the preferred height its word-wrapped labels would take at that width."""

    def hasHeightForWidth(self) -> bool:
        return False


class _ColumnLayout(QVBoxLayout):
    def hasHeightForWidth(self) -> bool:  # see _Column
        return False


class _ColumnScroll(QScrollArea):
    """A scroll area that scrolls only vertically: as wide as its content needs."""

    def minimumSizeHint(self) -> Any:
        hint = super().minimumSizeHint()
        inner = self.widget()
        if inner is not None:
            hint.setWidth(inner.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() + 2)
        return hint


def _brush(colour: str) -> Any:
    from PySide6.QtGui import QBrush, QColor

    return QBrush(QColor(colour))


__all__ = ["SessionView"]
