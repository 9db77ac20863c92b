"""Non-blocking notifications: errors from workers and engine threads reach the user here.

:class:`NotificationCenter` is a QObject any thread may call :meth:`NotificationCenter.notify`
on (the signal is delivered on the GUI thread); :class:`NotificationArea` shows the
latest messages as coloured banners that fade after a few seconds, and keeps a history.
Nothing here opens a modal dialog.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QStyle, QVBoxLayout, QWidget

from app import qt_compat  # noqa: F401  (PySide6 6.12 refcount work-around)

log = logging.getLogger(__name__)

LEVEL_COLOURS = {
    "info": ("#1f4e79", "#dbe9f7"),
    "success": ("#1d5e2b", "#d9f2df"),
    "warning": ("#7a4b00", "#fcefd2"),
    "error": ("#8a1c1c", "#f9dcdc"),
}


@dataclass(frozen=True)
class Notification:
    """One message shown to the user."""

    level: str
    text: str
    t: float


class NotificationCenter(QObject):
    """Collects notifications from any thread and re-emits them on the GUI thread."""

    notified = Signal(object)  # Notification
    _posted = Signal(str, str)

    def __init__(self, parent: QObject | None = None, history: int = 200) -> None:
        super().__init__(parent)
        self.history: list[Notification] = []
        self._max = history
        self._posted.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def notify(self, text: str, level: str = "info") -> None:
        """Show ``text``; safe to call from any thread."""
        if level not in LEVEL_COLOURS:
            level = "info"
        self._posted.emit(level, str(text))

    def error(self, text: str) -> None:
        self.notify(text, "error")

    def warning(self, text: str) -> None:
        self.notify(text, "warning")

    def _deliver(self, level: str, text: str) -> None:
        note = Notification(level, text, time.time())
        (log.warning if level in ("warning", "error") else log.info)("%s: %s", level, text)
        self.history.append(note)
        del self.history[: -self._max]
        self.notified.emit(note)

    def messages(self, level: str | None = None) -> list[str]:
        """Texts shown so far (optionally of one level)."""
        return [n.text for n in self.history if level is None or n.level == level]


class _Banner(QFrame):
    def __init__(self, note: Notification, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        fg, bg = LEVEL_COLOURS[note.level]
        self.setObjectName("banner")
        self.setStyleSheet(
            f"QFrame#banner {{ background: {bg}; border: 1px solid {fg}; border-radius: 6px; }}"
            f"QLabel {{ color: {fg}; }}"
        )
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 4, 4)
        self.label = QLabel(f"<b>{note.level.upper()}</b>  {note.text}")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.label, 1)
        close = QPushButton()
        close.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_TitleBarCloseButton))
        close.setFlat(True)
        close.setFixedWidth(28)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.deleteLater)
        lay.addWidget(close)


class NotificationArea(QWidget):
    """A stack of the latest notifications; each fades out after ``timeout_ms``."""

    def __init__(self, center: NotificationCenter, parent: QWidget | None = None,
                 timeout_ms: int = 8000, max_visible: int = 3) -> None:
        super().__init__(parent)
        self._timeout_ms = timeout_ms
        self._max_visible = max_visible
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(6, 2, 6, 2)
        self._layout.setSpacing(3)
        center.notified.connect(self.show_notification)

    def banners(self) -> list[_Banner]:
        return [w for w in self.findChildren(_Banner) if not w.isHidden()]

    def show_notification(self, note: Notification) -> None:
        banner = _Banner(note, self)
        self._layout.addWidget(banner)
        banner.show()
        visible = self.banners()
        for old in visible[: max(0, len(visible) - self._max_visible)]:
            old.hide()
            old.deleteLater()
        timeout = self._timeout_ms * (2 if note.level == "error" else 1)
        QTimer.singleShot(timeout, banner, banner.deleteLater)
