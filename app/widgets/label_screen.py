"""The participant's label screen: large buttons for the label set, keys 1-4, optional SAM.

One :class:`LabelPrompt` holds the state of the current question; any number of
:class:`LabelScreen` widgets show it (the one embedded in the operator's session view and
the full-screen :class:`LabelWindow` on a second monitor). The first answer wins and
every screen locks, so a double click or a second key press is ignored. An answer is
acknowledged at once ("Recorded: Sad") and committed after a short undo window
(:attr:`LabelPrompt.undo_s`; Backspace or *Undo* reopens the question). While a question
is open, :class:`LabelKeys` gives the number keys (and the keypad's) to the prompt in
every window of the app, wherever the focus is. The screen names no stimulus, genre or
intended emotion, and every button looks the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QFontMetrics, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSlider,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from acquisition.store.sqlite import SAM_MAX, SAM_MIN

DEFAULT_LABELS = ("happy", "sad", "relaxing", "tense")


class LabelPrompt(QObject):
    """The current question to the participant; thread-safe entry through signals.

    ``ask`` may be called from the session runner's thread (it is re-emitted on the GUI
    thread); ``answer`` is called by the screens; the first answer per question wins. An
    answer is :attr:`pending` for ``undo_s`` seconds (:meth:`undo` reopens the question),
    then committed: :attr:`answered` is emitted (at once when ``undo_s`` is 0).
    """

    changed = Signal()
    answered = Signal(str, object, object)  # label, valence or None, arousal or None (committed)
    chosen = Signal(str)  # an answer was given; it is pending until the undo window ends
    undone = Signal(str)  # the pending answer was taken back
    _ask = Signal(object, object, object, bool)
    _close = Signal()

    def __init__(self, labels: tuple[str, ...] = DEFAULT_LABELS, parent: QObject | None = None,
                 min_delay_s: float = 0.3, undo_s: float = 1.5) -> None:
        super().__init__(parent)
        self.labels: tuple[str, ...] = tuple(labels)
        self.sam = False
        self.active = False
        self.question = ""
        self.trial_text = ""
        self.min_delay_s = min_delay_s
        self._asked_at = 0.0
        self.n_ignored = 0
        self.undo_s = float(undo_s)
        self.pending: tuple[str, int | None, int | None] | None = None
        self.last_recorded: str | None = None  # the last committed answer (shown until the next question)
        self._commit_timer = QTimer(self)
        self._commit_timer.setSingleShot(True)
        self._commit_timer.timeout.connect(self._commit)
        self._ask.connect(self._do_ask, Qt.ConnectionType.QueuedConnection)
        self._close.connect(self._do_close, Qt.ConnectionType.QueuedConnection)

    def ask(self, labels: tuple[str, ...] | list[str] | None = None, trial_text: str = "",
            question: str = "How did the music make you feel?", sam: bool = False) -> None:
        """Open a question (from any thread)."""
        self._ask.emit(tuple(labels) if labels else None, trial_text, question, sam)

    def close(self) -> None:
        """Withdraw the question (from any thread), e.g. when the session is aborted."""
        self._close.emit()

    def _do_ask(self, labels: tuple[str, ...] | None, trial_text: str, question: str, sam: bool) -> None:
        if labels:
            self.labels = labels
        self.trial_text = str(trial_text)
        self.question = str(question)
        self.sam = bool(sam)
        self._commit_timer.stop()
        self.pending = None
        self.last_recorded = None
        self.active = True
        self._asked_at = time.monotonic()
        self.changed.emit()

    def _do_close(self) -> None:
        self._commit_timer.stop()
        self.pending = None  # withdrawn (session ended): an answer still in its undo window is dropped
        self.active = False
        self.changed.emit()

    def clear(self) -> None:
        """Forget the last recorded answer (a new session starts)."""
        self.last_recorded = None
        self.changed.emit()

    def answer(self, label: str, valence: int | None = None, arousal: int | None = None) -> bool:
        """Give the answer; returns False (and counts it) if no question is open."""
        if not self.active or label not in self.labels:
            self.n_ignored += 1
            return False
        if time.monotonic() - self._asked_at < self.min_delay_s:
            self.n_ignored += 1  # a press left over from before the question appeared
            return False
        self.active = False
        response = (label, valence if self.sam else None, arousal if self.sam else None)
        if self.undo_s <= 0:
            self.last_recorded = label
            self.changed.emit()
            self.chosen.emit(label)
            self.answered.emit(*response)
            return True
        self.pending = response
        self._commit_timer.start(max(1, round(1000 * self.undo_s)))
        self.changed.emit()
        self.chosen.emit(label)
        return True

    def undo(self) -> bool:
        """Take back the pending answer and reopen the question; False if none is pending."""
        if self.pending is None:
            return False
        self._commit_timer.stop()
        label = self.pending[0]
        self.pending = None
        self.active = True
        self.changed.emit()
        self.undone.emit(label)
        return True

    def commit_now(self) -> None:
        """End the undo window at once (the answer goes to the session)."""
        if self.pending is not None:
            self._commit_timer.stop()
            self._commit()

    def _commit(self) -> None:
        if self.pending is None:
            return
        response, self.pending = self.pending, None
        self.last_recorded = response[0]
        self.changed.emit()
        self.answered.emit(*response)


#: Widgets where a digit is typing, not an answer (when no question is open).
_TEXT_INPUTS = (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit)


class LabelKeys(QObject):
    """Number keys 1-9 (main row or keypad) answer the prompt in every window of the app.

    An application event filter, installed while a session runs (:meth:`enable`): while
    a question is open (or an answer is in its undo window) a number key pressed anywhere in one of ``screens``' windows goes to the
    prompt, whatever has the focus, and Backspace undoes a pending answer. With no
    question open, a number key is swallowed and :attr:`ignored_key` says so, except
    where the focus is typing text or a number (a line edit, a spin box).

    Parameters
    ----------
    prompt : LabelPrompt
        The question the keys answer.
    screens : callable
        The label screens shown now; a key answers through the screen in its window (so
        that screen's SAM sliders go along), else through the first.
    """

    ignored_key = Signal(int)  # a number key with no question open

    def __init__(self, prompt: LabelPrompt, screens: Callable[[], Sequence[LabelScreen]],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.prompt = prompt
        self.screens = screens
        self.enabled = False

    def enable(self, on: bool = True) -> None:
        """Filter the app's key presses (``on``: while a session runs; off, the app's
        events never pass through Python here)."""
        app = QApplication.instance()
        if app is None or on == self.enabled:
            return
        if on:
            app.installEventFilter(self)
        else:
            app.removeEventFilter(self)
        self.enabled = on

    def _screen_for(self, widget: QWidget) -> LabelScreen | None:
        screens = [s for s in self.screens() if s is not None]
        window = widget.window()
        for screen in screens:
            if screen.window() is window:
                return screen
        return None

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.KeyPress or not isinstance(obj, QWidget):
            return False
        assert isinstance(event, QKeyEvent)
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if mods != Qt.KeyboardModifier.NoModifier:
            return False  # Ctrl+1 … switch views
        key = event.key()
        is_number = Qt.Key.Key_1 <= key <= Qt.Key.Key_9
        if not is_number and key != Qt.Key.Key_Backspace:
            return False
        screen = self._screen_for(obj)
        if screen is None:
            return False  # not one of the app's windows with a label screen
        prompt = self.prompt
        if key == Qt.Key.Key_Backspace:
            if prompt.pending is None:
                return False
            if not event.isAutoRepeat():
                prompt.undo()
            return True
        number = int(key - Qt.Key.Key_0)
        if prompt.active or prompt.pending is not None:
            if event.isAutoRepeat():
                return True
            if prompt.active:
                screen.press(number)
            else:
                prompt.answer("")  # a second key during the undo window: counted as ignored
            return True
        focus = QApplication.focusWidget()
        if isinstance(focus, _TEXT_INPUTS) or (isinstance(focus, QComboBox) and focus.isEditable()):
            return False  # typing a number
        if not event.isAutoRepeat():
            prompt.n_ignored += 1
            self.ignored_key.emit(number)
        return True


class _SamSlider(QWidget):
    def __init__(self, title: str, low: str, high: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QGridLayout(self)
        head = QLabel(title)
        head.setAlignment(Qt.AlignmentFlag.AlignCenter)
        head.setStyleSheet("font-size: 14pt; font-weight: bold;")
        lay.addWidget(head, 0, 0, 1, 3)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(SAM_MIN, SAM_MAX)
        self.slider.setValue((SAM_MIN + SAM_MAX) // 2)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(1)
        self.slider.setPageStep(1)
        self.slider.setMinimumHeight(36)
        lay.addWidget(QLabel(low), 1, 0)
        lay.addWidget(self.slider, 1, 1)
        lay.addWidget(QLabel(high), 1, 2)
        lay.setColumnStretch(1, 1)

    def value(self) -> int:
        return int(self.slider.value())


class LabelScreen(QWidget):
    """Large, identical buttons for the labels; keys 1..n choose them."""

    BUTTON_CSS = (
        "QPushButton { font-size: %dpt; font-weight: bold; padding: 10px; border-radius: 14px;"
        " background: #eef2ff; color: #1e1b4b; border: 2px solid #6366f1; }"
        "QPushButton:hover { background: #e0e7ff; }"
        "QPushButton:disabled { background: #f3f4f6; color: #9ca3af; border-color: #d1d5db; }"
    )

    def __init__(self, prompt: LabelPrompt, large: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt = prompt
        self.large = large
        self.setObjectName("label-screen")
        self.setStyleSheet("QWidget#label-screen { background: #ffffff; }")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)  # white also when embedded
        lay = QVBoxLayout(self)
        margin = 16 if large else 6
        lay.setContentsMargins(margin, margin, margin, margin)
        lay.addStretch(1)
        self.question = QLabel()
        self.question.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.question.setWordWrap(True)
        self.question.setStyleSheet(f"font-size: {30 if large else 18}pt; color: #111827;")
        lay.addWidget(self.question)
        self.sub = QLabel()
        self.sub.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sub.setWordWrap(True)
        self.sub.setStyleSheet(f"font-size: {16 if large else 11}pt; color: #6b7280;")
        lay.addWidget(self.sub)
        self.sam_box = QWidget()
        sam = QHBoxLayout(self.sam_box)
        self.valence = _SamSlider("Pleasantness", "unpleasant", "pleasant")
        self.arousal = _SamSlider("Energy", "calm", "excited")
        sam.addWidget(self.valence)
        sam.addWidget(self.arousal)
        lay.addWidget(self.sam_box)
        # one row on the participant's screen; two columns in the operator's (narrow) preview
        self.button_row = QGridLayout()
        self.button_row.setSpacing(14 if large else 8)
        lay.addSpacing(12)
        lay.addLayout(self.button_row, 3)
        undo_row = QHBoxLayout()
        undo_row.addStretch(1)
        self.undo_button = QPushButton("Undo  [Backspace]")
        self.undo_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.undo_button.setStyleSheet(f"font-size: {16 if large else 11}pt; padding: 6px 18px;")
        self.undo_button.clicked.connect(self.prompt.undo)
        undo_row.addWidget(self.undo_button)
        undo_row.addStretch(1)
        lay.addSpacing(8)
        lay.addLayout(undo_row)
        lay.addStretch(1)
        self.buttons: list[QPushButton] = []
        # number keys: the app's LabelKeys filter (any focus), or keyPressEvent here
        self._asked_at = -1.0
        prompt.changed.connect(self.sync)
        self.sync()

    def _rebuild(self) -> None:
        for b in self.buttons:
            self.button_row.removeWidget(b)
            b.deleteLater()
        self.buttons = []
        n = len(self.prompt.labels)
        columns = n if self.large or n <= 3 else (n + 1) // 2
        point_size = 22 if self.large else 13
        for i, label in enumerate(self.prompt.labels):
            b = QPushButton(f"{label.capitalize()}\n[{i + 1}]")
            b.setStyleSheet(self.BUTTON_CSS % point_size)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
            b.setMinimumHeight(120 if self.large else 64)
            font = b.font()
            font.setPointSize(point_size)
            font.setBold(True)
            widest = max(QFontMetrics(font).horizontalAdvance(text.capitalize()) for text in self.prompt.labels)
            b.setMinimumWidth(widest + (28 if self.large else 20))  # every button as wide as the widest label needs
            b.setMaximumHeight(420 if self.large else 260)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # no key focus: Enter/Space cannot repeat
            b.setProperty("label", label)
            b.clicked.connect(lambda _c=False, label=label: self.choose(label))
            self.button_row.addWidget(b, i // columns, i % columns)
            self.button_row.setColumnStretch(i % columns, 1)
            self.buttons.append(b)

    def sync(self) -> None:
        """Show the prompt's state."""
        if [b.property("label") for b in self.buttons] != list(self.prompt.labels):
            self._rebuild()
        active = self.prompt.active
        pending = self.prompt.pending
        for b in self.buttons:
            b.setEnabled(active)
        self.undo_button.setVisible(pending is not None)
        # the size the undo button takes stays reserved, so the buttons never jump
        policy = self.undo_button.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.undo_button.setSizePolicy(policy)
        self.sam_box.setVisible(self.prompt.sam)
        self.valence.setEnabled(active)
        self.arousal.setEnabled(active)
        if pending is not None:
            self.question.setText(f"Recorded: {pending[0].capitalize()}")
            self.sub.setText(f"Changed your mind? Undo within {self.prompt.undo_s:g} s (Backspace)")
        elif active:
            if self._asked_at != self.prompt._asked_at:  # a new question: sliders back to the middle
                self._asked_at = self.prompt._asked_at
                self.valence.slider.setValue(5)
                self.arousal.slider.setValue(5)
            self.question.setText(self.prompt.question)
            self.sub.setText(self.prompt.trial_text + ("  ·  rate, then choose" if self.prompt.sam else ""))
        else:
            self.question.setText("Please listen")
            recorded = self.prompt.last_recorded
            self.sub.setText((f"Recorded: {recorded.capitalize()}  ·  " if recorded else "")
                             + "the buttons will light up when it is time to answer")

    def press(self, number: int) -> None:
        if 1 <= number <= len(self.prompt.labels):
            self.choose(self.prompt.labels[number - 1])

    def choose(self, label: str) -> bool:
        return self.prompt.answer(label, self.valence.value(), self.arousal.value())

    def keyPressEvent(self, event: QKeyEvent) -> None:
        text = event.text()
        if text.isdigit() and not event.isAutoRepeat():
            self.press(int(text))
            return
        if event.key() == Qt.Key.Key_Backspace and not event.isAutoRepeat():
            self.prompt.undo()
            return
        super().keyPressEvent(event)


class LabelWindow(QWidget):
    """The label screen as its own top-level window (full screen on a second monitor)."""

    def __init__(self, prompt: LabelPrompt, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Duygu — your answer")
        self.setObjectName("label-window")
        self.setStyleSheet("QWidget#label-window { background: #ffffff; }")
        self.screen_widget = LabelScreen(prompt, large=True, parent=self)
        # the participant's screen says so too when the signals are simulated (a rehearsal)
        self.simulated_badge = QLabel("SIMULATED", self)
        self.simulated_badge.setObjectName("simulated-badge")
        self.simulated_badge.setToolTip("A rehearsal: the signals come from a simulated participant")
        self.simulated_badge.setStyleSheet("QLabel { background: #7c3aed; color: white; font-weight: bold;"
                                           " border-radius: 8px; padding: 3px 12px; }")
        self.simulated_badge.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.setContentsMargins(8, 8, 8, 0)
        top.addStretch(1)
        top.addWidget(self.simulated_badge)
        lay.addLayout(top)
        lay.addWidget(self.screen_widget)
        esc = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        esc.activated.connect(self.showNormal)

    def set_simulated(self, simulated: bool) -> None:
        """Show the SIMULATED badge while the source is simulated."""
        self.simulated_badge.setVisible(bool(simulated))

    def open(self, full_screen: bool = True, screen_index: int | None = None) -> None:
        from PySide6.QtGui import QGuiApplication

        screens = QGuiApplication.screens()
        if screen_index is None:
            screen_index = len(screens) - 1  # the last screen: usually the participant's
        if 0 <= screen_index < len(screens):
            self.setGeometry(screens[screen_index].geometry())
        if full_screen:
            self.showFullScreen()
        else:
            self.show()
        self.raise_()
        self.activateWindow()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        self.screen_widget.keyPressEvent(event)

    def closeEvent(self, event: Any) -> None:
        self.hide()
        event.ignore()
