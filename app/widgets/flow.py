"""A layout that wraps its widgets onto further rows when the width runs out.

Toolbars of the views use it, so that a narrow window (1024 px with the source dock)
shows every control on two rows instead of demanding the width of one. Its minimum
width is that of its widest item; its height follows the width (``heightForWidth``).
"""

from __future__ import annotations

from PySide6.QtCore import QMargins, QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QSizePolicy, QSpacerItem, QWidget


class FlowLayout(QLayout):
    """Items left to right, wrapping to a new row (Qt's flow layout example, typed).

    ``addStretch`` is accepted (and ignored) and ``addSpacing`` adds a fixed gap, so a
    ``QHBoxLayout`` toolbar becomes a flow by changing its class.
    """

    def __init__(self, parent: QWidget | None = None, spacing: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._gap = spacing
        self._heights: dict[int, int] = {}  # heightForWidth, asked many times per relayout
        self.setContentsMargins(QMargins(0, 0, 0, 0))

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)
        self.invalidate()

    def invalidate(self) -> None:
        self._heights.clear()
        super().invalidate()

    def addStretch(self, _stretch: int = 0) -> None:
        """Rows are packed to the left; a stretch has no meaning here."""

    def addSpacing(self, size: int) -> None:
        self.addItem(QSpacerItem(size, 1, QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Minimum))

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        if not 0 <= index < len(self._items):
            return None
        self.invalidate()
        return self._items.pop(index)

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        if width not in self._heights:
            self._heights[width] = self._do_layout(QRect(0, 0, width, 0), test_only=True)
        return self._heights[width]

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._do_layout(rect, test_only=False)

    def sizeHint(self) -> QSize:
        width = sum(i.sizeHint().width() + self._gap for i in self._items)
        height = max((i.sizeHint().height() for i in self._items), default=0)
        return QSize(width, height)

    def minimumSize(self) -> QSize:
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _do_layout(self, rect: QRect, test_only: bool) -> int:
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, row_h = area.x(), area.y(), 0
        for item in self._items:
            widget, owner = item.widget(), self.parentWidget()
            if widget is not None and owner is not None and not widget.isVisibleTo(owner):
                continue
            hint = item.sizeHint()
            if x + hint.width() > area.right() + 1 and row_h > 0:  # wrap
                x, y = area.x(), y + row_h + self._gap
                row_h = 0
            if not test_only:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + self._gap
            row_h = max(row_h, hint.height())
        return y + row_h - rect.y() + m.bottom()
