"""The GUI's views: each a QWidget over engine objects, redrawn from GUI-thread timers."""

from app import qt_compat  # noqa: F401  (PySide6 6.12 refcount work-around)
