"""The participant's label screen: large buttons for the label set, keys 1-4, optional SAM.

One :class:`LabelPrompt` holds the state of the current question; any number of
:class:`LabelScreen` widgets show it (the one embedded in the operator's session view and
the full-screen :class:`LabelWindow` on a second monitor). The first answer wins and
every screen locks, so a double click or a second key press is ignored. The screen
names no stimulus, genre or intended emotion, and every button looks the same.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QFontMetrics, QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

DEFAULT_LABELS = ("happy", "sad", "relaxing", "tense")


class LabelPrompt(QObject):
    """The current question to the participant; thread-safe entry through signals.

    ``ask`` may be called from the session runner's thread (it is re-emitted on the GUI
    thread); ``answer`` is called by the screens; the first answer per question wins.
    """

    changed = Signal()
    answered = Signal(str, object, object)  # label, valence or None, arousal or None
    _ask = Signal(object, object, object, bool)
    _close = Signal()

    def __init__(self, labels: tuple[str, ...] = DEFAULT_LABELS, parent: QObject | None = None,
                 min_delay_s: float = 0.3) -> None:
        super().__init__(parent)
        self.labels: tuple[str, ...] = tuple(labels)
        self.sam = False
        self.active = False
        self.question = ""
        self.trial_text = ""
        self.min_delay_s = min_delay_s
        self._asked_at = 0.0
        self.n_ignored = 0
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
        self.active = True
        self._asked_at = time.monotonic()
        self.changed.emit()

    def _do_close(self) -> None:
        self.active = False
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
        self.changed.emit()
        self.answered.emit(label, valence if self.sam else None, arousal if self.sam else None)
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
        self.slider.setRange(1, 9)
        self.slider.setValue(5)
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
        lay = QVBoxLayout(self)
        margin = 24 if large else 8
        lay.setContentsMargins(margin, margin, margin, margin)
        lay.addStretch(1)
        self.question = QLabel()
        self.question.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.question.setWordWrap(True)
        self.question.setStyleSheet(f"font-size: {30 if large else 18}pt; color: #111827;")
        lay.addWidget(self.question)
        self.sub = QLabel()
        self.sub.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sub.setStyleSheet(f"font-size: {16 if large else 11}pt; color: #6b7280;")
        lay.addWidget(self.sub)
        self.sam_box = QWidget()
        sam = QHBoxLayout(self.sam_box)
        self.valence = _SamSlider("Pleasantness", "unpleasant", "pleasant")
        self.arousal = _SamSlider("Energy", "calm", "excited")
        sam.addWidget(self.valence)
        sam.addWidget(self.arousal)
        lay.addWidget(self.sam_box)
        self.button_row = QHBoxLayout()
        self.button_row.setSpacing(18 if large else 10)
        lay.addSpacing(12)
        lay.addLayout(self.button_row, 3)
        lay.addStretch(1)
        self.buttons: list[QPushButton] = []
        self._shortcuts: list[QShortcut] = []
        for n in range(1, 10):
            sc = QShortcut(QKeySequence(str(n)), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(lambda n=n: self.press(n))
            self._shortcuts.append(sc)
        self._asked_at = -1.0
        prompt.changed.connect(self.sync)
        self.sync()

    def _rebuild(self) -> None:
        for b in self.buttons:
            self.button_row.removeWidget(b)
            b.deleteLater()
        self.buttons = []
        for i, label in enumerate(self.prompt.labels):
            b = QPushButton(f"{label.capitalize()}\n[{i + 1}]")
            b.setStyleSheet(self.BUTTON_CSS % (28 if self.large else 14))
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
            b.setMinimumHeight(140 if self.large else 80)
            font = b.font()
            font.setPointSize(28 if self.large else 14)
            font.setBold(True)
            widest = max(QFontMetrics(font).horizontalAdvance(text.capitalize()) for text in self.prompt.labels)
            b.setMinimumWidth(widest + (36 if self.large else 20))  # every button as wide as the widest label needs
            b.setMaximumHeight(420 if self.large else 260)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # no key focus: Enter/Space cannot repeat
            b.setProperty("label", label)
            b.clicked.connect(lambda _c=False, label=label: self.choose(label))
            self.button_row.addWidget(b, 1)
            self.buttons.append(b)

    def sync(self) -> None:
        """Show the prompt's state."""
        if [b.property("label") for b in self.buttons] != list(self.prompt.labels):
            self._rebuild()
        active = self.prompt.active
        for b in self.buttons:
            b.setEnabled(active)
        self.sam_box.setVisible(self.prompt.sam)
        self.valence.setEnabled(active)
        self.arousal.setEnabled(active)
        if active:
            if self._asked_at != self.prompt._asked_at:  # a new question: sliders back to the middle
                self._asked_at = self.prompt._asked_at
                self.valence.slider.setValue(5)
                self.arousal.slider.setValue(5)
            self.question.setText(self.prompt.question)
            self.sub.setText(self.prompt.trial_text + ("  ·  rate, then choose" if self.prompt.sam else ""))
        else:
            self.question.setText("Please listen")
            self.sub.setText("the buttons will light up when it is time to answer")

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
        super().keyPressEvent(event)


class LabelWindow(QWidget):
    """The label screen as its own top-level window (full screen on a second monitor)."""

    def __init__(self, prompt: LabelPrompt, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Duygu — your answer")
        self.screen_widget = LabelScreen(prompt, large=True, parent=self)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.screen_widget)
        esc = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        esc.activated.connect(self.showNormal)

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
